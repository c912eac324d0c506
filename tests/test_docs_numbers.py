"""Every number the README and the docs quote from a run is that run's recorded output.

The recorded outputs: the main job's study, answer cache and stage times in ``notebooks/replay/``;
the other measurements the docs quote in ``docs/recorded/`` (each written by the script the page
names). Each test renders what a page must say from those files (or, for runs of a few seconds, runs
them) and looks for it in the page, whitespace folded.
"""
import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDED = os.path.join(ROOT, "docs", "recorded")
REPLAY = os.path.join(ROOT, "notebooks", "replay")

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "docs", "recorded")),
                                reason="needs the source tree")


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def _fold(text):
    return " ".join(text.split())


def _assert_says(page, claims):
    text = _fold(_read(page))
    missing = [c for c in claims if _fold(c) not in text]
    assert not missing, f"{page} does not say (or says otherwise): {missing}"


def _lines_in(page, lines):
    """Every line (right-stripped) stands as a whole line in the page."""
    have = {line.rstrip() for line in _read(page).splitlines()}
    missing = [line.rstrip() for line in lines if line.strip() and line.rstrip() not in have]
    assert not missing, f"{page} lacks the recorded lines {missing}"


def _pct(x, digits=1):
    return f"{100 * x:.{digits}f}"


# -- the main job (README, docs/reproducing.md, docs/abduction.md, docs/benchmarks.md) -----------------

def _main_job():
    with open(os.path.join(REPLAY, "icews14_main_study.json"), encoding="utf-8") as f:
        study = json.load(f)
    with open(os.path.join(REPLAY, "icews14_main_timings.json"), encoding="utf-8") as f:
        seconds = json.load(f)["seconds"]
    with open(os.path.join(ROOT, "lamp", "configs", "icews14_main.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)["LAMP_icews14_main"]
    with sqlite3.connect(os.path.join(REPLAY, "icews14_main_smollm2.sqlite")) as db:
        prompts, prompt_tokens, completion_tokens = db.execute(
            "SELECT count(*), sum(prompt_tokens), sum(completion_tokens) FROM answers").fetchone()
    rows = {(r["run"], r["method"]): r for r in study["rows"]}
    return {"study": study, "seconds": seconds, "config": config, "rows": rows, "prompts": prompts,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}


def _minutes(seconds):
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def _ci(row_or_metrics):
    m = row_or_metrics.get("vs_base", row_or_metrics)
    return f"{m['delta_mr']:+.2f} [{m['low']:+.2f}, {m['high']:+.2f}]"


def _main_plan():
    """The recorded `lamp plan` of the main job: per split the candidates asked and the prompts (one per event
    type)."""
    plan = _read("docs", "recorded", "main_job_plan.txt")
    rows = re.findall(r"^  (\w+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$", plan, re.M)
    return {"asked": sum(int(r[2]) for r in rows), "prompts": sum(int(r[3]) for r in rows)}


def test_readme_quotes_the_recorded_main_job():
    job = _main_job()
    study, rows, cfg = job["study"], job["rows"], job["config"]
    lamp_cfg = cfg["lamp"]
    lit = study["literature"]
    kg, rc, pub = lit["measured"]["kg_hawkes"], lit["measured"]["recurrency"], lit["published"]
    head = study["runs"]["headroom"]["metrics"]["object"]
    smol = study["runs"]["smollm2"]["metrics"]["object"]
    rules = study["runs"]["rules"]["metrics"]["object"]
    base, oracle, no_llm = rows["headroom", "base"], rows["headroom", "oracle_ceiling"], rows["headroom", "no_llm"]
    sel = head["no_llm"]["selection"]
    grounding, oracle_grounding = smol["lamp"]["cause_grounding"], head["oracle_ceiling"]["cause_grounding"]
    versus = study["comparisons"][0]
    plan = _main_plan()
    sec = job["seconds"]
    queries = lamp_cfg["query_limit"] + lamp_cfg["train_query_limit"] + lamp_cfg["valid_query_limit"]
    claims = [
        f"ICEWS14 object task with M = {lamp_cfg['num_candidates']} proposals",
        f"every run on the same {head['base']['n_queries']:,} test queries ({base['n']:,} of them with the truth among "
        f"the proposals), the ranker trained on {lamp_cfg['train_query_limit']:,} queries and selected on "
        f"{lamp_cfg['valid_query_limit']}",
        f"object and subject queries ({kg['n']:,})",
        f"asked once per event type among the candidates ({job['prompts']} prompts for all {queries:,} queries, "
        f"where asking per candidate would take {plan['asked']:,})",
        f"filtered MRR {_pct(kg['mrr'])} / Hits@10 {_pct(kg['hits@10'])} on the whole ICEWS14 test split "
        f"(TLogic {_pct(pub['TLogic']['mrr'])} / {_pct(pub['TLogic']['hits@10'])}, TiRGN "
        f"{_pct(pub['TiRGN']['mrr'])} / {_pct(pub['TiRGN']['hits@10'])})",
        f"({_pct(rc['mrr'])} / {_pct(rc['hits@10'])} vs {_pct(pub['RecurrencyBaseline']['mrr'])} / "
        f"{_pct(pub['RecurrencyBaseline']['hits@10'])})",
        f"falls from {base['mr']:.2f} to {oracle['mr']:.2f} on {base['n']:,} test queries "
        f"({oracle['delta_mr']:+.2f} [{oracle['low']:+.2f}, {oracle['high']:+.2f}])",
        f"(its ranker's validation MR {sel['valid_mr_ranker']:.2f} vs {sel['valid_mr_proposer']:.2f}, "
        f"p {sel['p_not_better']:.2f})",
        f"the rules' evidence gains {_ci(rules['lamp']['ranker_order'])} — about what each candidate's own text "
        f"gives ({_ci(head['no_llm']['ranker_order'])}) — and SmolLM2's {_ci(smol['lamp']['ranker_order'])}",
        f"SmolLM2 minus rules {_ci(versus['rankers'])}",
        f"{grounding['rate_true'] * 100:.0f}% of SmolLM2's causes for the true candidate",
        f"so do {grounding['rate_other'] * 100:.0f}% of its causes for the wrong candidates (the oracle: "
        f"{oracle_grounding['rate_true'] * 100:.0f}% and {oracle_grounding['rate_other'] * 100:.1f}%)",
        f"`bash scripts/main.sh` took {_minutes(sec['setup'] + sec['total'])} in all: {_minutes(sec['setup'])} of "
        f"set-up, {sec['literature']:.0f} s for the literature rows, {sec['headroom']['total']:.0f} s for the "
        f"headroom run, {sec['rules']['total']:.0f} s for the rules run and {_minutes(sec['smollm2']['total'])} for "
        f"the SmolLM2 run ({sec['smollm2']['abduce']:.0f} s of it the {job['prompts']} prompts, about "
        f"{sec['smollm2']['abduce'] / job['prompts']:.1f} s each",
    ]
    # "neither ... beat the proposer on validation, so both runs keep its order"; "LAMP keeps the proposer's order"
    assert rules["lamp"]["selection"]["used"] == smol["lamp"]["selection"]["used"] == "proposer"
    assert no_llm["used"] == "proposer" and no_llm["delta_mr"] == 0.0
    assert plan["prompts"] == job["prompts"]  # one prompt per event type: the plan's count is the cache's
    _assert_says("README.md", claims)
    _assert_says("docs/quickstart.md", [
        f"without an LLM on {head['base']['n_queries']:,} test queries",
        f"SmolLM2-135M-Instruct asked once per event type ({job['prompts']} prompts)"])
    _assert_says("lamp/configs/icews14_main.yaml", [
        f"the same {head['base']['n_queries']:,} test queries ({base['n']:,} with the truth among the M = "
        f"{lamp_cfg['num_candidates']} proposals"])
    _assert_says("docs/abduction.md", [
        f"main job asks {job['prompts']} prompts for its {lamp_cfg['query_limit']:,} test, "
        f"{lamp_cfg['train_query_limit']:,} training and {lamp_cfg['valid_query_limit']} validation queries, where "
        f"asking per candidate would be {plan['asked']:,}"])


def test_reproducing_and_abduction_quote_the_recorded_main_job():
    job = _main_job()
    rows, sec = job["rows"], job["seconds"]
    spp = sec["smollm2"]["abduce"] / job["prompts"]
    _assert_says("docs/reproducing.md", [
        f"the main job's base MR is {rows['headroom', 'base']['mr']:.2f} among "
        f"{job['config']['lamp']['num_candidates']} proposals over the {rows['headroom', 'base']['n']:,} "
        f"headroom queries whose truth is proposed",
        f"time-aware filtered MRR {job['study']['literature']['measured']['kg_hawkes']['mrr']:.3f}",
        f"the recorded main job's SmolLM2 run asked {job['prompts']} prompts, one per event type, in "
        f"{sec['smollm2']['abduce']:.0f} s ({spp:.1f} s per prompt)",
    ])
    _assert_says("docs/abduction.md", [
        f"the main job's SmolLM2 run sent {job['prompts']} prompts (one per event type), "
        f"{job['prompt_tokens']:,} prompt tokens and {job['completion_tokens']:,} completion tokens (about "
        f"{job['prompt_tokens'] / job['prompts']:,.0f} and {job['completion_tokens'] / job['prompts']:.0f} per "
        f"prompt) and took {sec['smollm2']['abduce']:.1f} s for them, {spp:.1f} s per prompt",
    ])


def test_benchmarks_main_job_section_is_the_recorded_timings():
    sec = _main_job()["seconds"]
    text = _read("docs", "benchmarks.md")
    section = text[text.index("## The main job"):]
    for value in (sec["setup"], sec["data"], sec["literature"], sec["headroom"]["propose"], sec["headroom"]["abduce"],
                  sec["headroom"]["match"], sec["headroom"]["rank"] + sec["headroom"]["evaluate"],
                  sec["rules"]["propose"], sec["rules"]["abduce"],
                  sec["rules"]["match"] + sec["rules"]["rank"] + sec["rules"]["evaluate"],
                  sec["smollm2"]["propose"], sec["smollm2"]["abduce"],
                  sec["smollm2"]["match"] + sec["smollm2"]["rank"] + sec["smollm2"]["evaluate"]):
        cell = f"| {value:.1f} |" if not isinstance(value, int) else f"| {value} |"
        assert cell in section, (cell, "docs/benchmarks.md, The main job")
    job = _main_job()
    for claim in (f"**{_minutes(sec['setup'] + sec['total'])}** in all",
                  f"| smollm2 run: {job['prompts']} prompts to SmolLM2-135M",
                  f"The prompts took {sec['smollm2']['abduce'] / job['prompts']:.1f} s each here"):
        assert _fold(claim) in _fold(section), claim


def test_reproducing_cost_is_the_recorded_plan():
    """The cost section is `lamp plan` of the page's own YAML, as recorded: per candidate, per event type
    (`--set lamp.abduction.unit=event_type`) and as a batch job (`--set lamp.abduction.batch=true`)."""
    page = _read("docs", "reproducing.md")
    config = re.search(r"```yaml\n(.*?)```", page, re.S).group(1)
    blocks = re.findall(r"```text\n(plan: .*?)```", page, re.S)
    names = ["reproducing_plan.txt", "reproducing_plan_event_type.txt", "reproducing_plan_batch.txt"]
    assert len(blocks) == len(names)
    for name, block, option in zip(names, blocks, ["", "--set lamp.abduction.unit=event_type",
                                                   "--set lamp.abduction.batch=true"]):
        recorded = _read("docs", "recorded", name)
        assert recorded.startswith(f"# lamp plan my_icews14.yaml {option}".rstrip())
        assert _fold(config) in _fold(recorded)  # the plan was made from the YAML the page shows
        _lines_in(f"docs/recorded/{name}", block.splitlines())
    event_type, batch = (_read("docs", "recorded", n) for n in names[1:])
    prompts = int(re.search(r"(\d+) prompts for every candidate", page)[1])
    assert prompts == sum(int(x) for x in re.findall(r"^  \w+ +\d+ +\d+ +\d+ +\d+ +(\d+)$", event_type, re.M))
    assert prompts <= 500 and float(re.search(r"cost: ~\$([\d.]+)", event_type)[1]) <= 0.50  # issue 22's targets
    with_batch, without = (float(x.replace(",", "")) for x in re.search(r"cost: ~\$([\d,.]+) .* ~\$([\d,.]+) without",
                                                                       batch).groups())
    assert with_batch <= 0.5 * without


# -- docs/ranker.md -----------------------------------------------------------------------------------

def _study_table(folder):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import study_table
    finally:
        sys.path.pop(0)
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        study_table.main(folder)
    return out.getvalue().splitlines()


def test_ranker_study_table_is_the_recorded_runs():
    folder = os.path.join(RECORDED, "ranker_study")
    table = _study_table(folder)
    assert len(table) == 2 + 26 and not any("(not run)" in line for line in table)
    _lines_in("docs/ranker.md", table)

    def load(name):
        with open(os.path.join(folder, name, "metrics.json"), encoding="utf-8") as f:
            return next(iter(json.load(f).values()))

    icews, actors, rec = load("oracle_icews14"), load("actors_oracle"), load("nollm_icews14_recurrency")
    _assert_says("docs/ranker.md", [
        f"LAMP's MR on ICEWS14 falls from {icews['base']['mr']:.3f} to {icews['oracle_ceiling']['mr']:.3f} "
        f"({icews['oracle_ceiling']['mr'] / icews['base']['mr']:.2f} x base); on the typed ICEWS14 actors data "
        f"from {actors['base']['mr']:.3f} to {actors['oracle_ceiling']['mr']:.3f}",
        "the ranker is chosen and moves the MR by "
        f"{rec['lamp']['vs_base']['delta_mr']:+.3f} [{rec['lamp']['vs_base']['low']:+.3f}, "
        f"{rec['lamp']['vs_base']['high']:+.3f}]",
    ])
    # "every run's interval against the base has its upper end at or below 0" (without an LLM)
    for name in ("nollm_icews14_kg", "nollm_icews14_recurrency", "nollm_gdelt_kg", "actors_no_llm"):
        for method, m in load(name).items():
            if method != "base":
                assert m["vs_base"]["high"] <= 0.0, (name, method)


def test_pretraining_table_is_the_recorded_run():
    recorded = [line for line in _read("docs", "recorded", "pretrain_study.md").splitlines() if line.startswith("|")]
    assert sum(line.startswith("| 40 |") or line.startswith("| 200 |") for line in recorded) == 2
    _lines_in("docs/ranker.md", recorded)
    took = re.search(r"(\d+ min \d+ s) on this 2-core machine", _read("docs", "recorded", "pretrain_study.md"))[1]
    _assert_says("docs/ranker.md", [f"took {took} on 2 cores"])


# -- docs/abduction.md: structured output --------------------------------------------------------------

def test_response_format_table_is_the_recorded_measurement():
    recorded = _read("docs", "recorded", "response_format.txt")
    page = _read("docs", "abduction.md")
    first = recorded.splitlines()[0]
    assert first.startswith("# python scripts/measure_response_format.py") and first[2:] in page
    labels = {"text": "| text (lamp's numbered format, tolerant parser) |",
              "json_object + schema": "| `json_object` + schema (grammar) |"}
    for line in recorded.splitlines()[1:]:
        mode, rest = line[:22].strip(), line[22:]
        v = {k: float(x) for k, x in (item.strip().rsplit(" ", 1) for item in rest.split(","))}
        row = (f"{labels[mode]} {v['with_a_cause'] * 100:.0f}% | {v['causes_per_reply']:.2f} | "
               f"{v['resolved_share'] * 100:.0f}% | {v['resolved_per_reply']:.2f} | {v['seconds_per_reply']:.1f} |")
        assert row in page, row


# -- docs/proposer.md -----------------------------------------------------------------------------------

def test_proposer_results_are_the_recorded_run():
    recorded = _read("docs", "recorded", "proposer_results.txt").splitlines()
    _lines_in("docs/proposer.md", [line for line in recorded if line.startswith("|")])
    pair = next(line for line in recorded if line.startswith("pair task"))
    numbers = re.search(r"MRR (\S+), Hits@1/3/10 (\S+) / (\S+) / (\S+), truth in the top 100 for (\S+)% of", pair)
    _assert_says("docs/proposer.md", [
        f"MRR {numbers[1]}, Hits@1/3/10 {numbers[2]} / {numbers[3]} / {numbers[4]}, truth in the top 100 for "
        f"{numbers[5]}% of queries"])
    # the main job's literature rows are the same evaluation (MRR and Hits in %)
    with open(os.path.join(REPLAY, "icews14_main_study.json"), encoding="utf-8") as f:
        measured = json.load(f)["literature"]["measured"]
    rows = {("kg_hawkes" if line.startswith("| `KGHawkes`") else "recurrency"): line for line in recorded
            if line.startswith(("| `KGHawkes`", "| `RecurrencyBaseline`"))}
    assert len(rows) == 2
    for name, row in rows.items():
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:5] == [f"{measured[name][k]:.3f}" for k in ("mrr", "hits@1", "hits@3", "hits@10")], name


# -- docs/typed.md: runs of a few seconds, run here -----------------------------------------------------

@pytest.mark.slow
def test_typed_results_are_what_the_commands_print(tmp_path):
    page = _read("docs", "typed.md")
    blocks = re.findall(r"```text\n(.*?)```", page, re.S)
    everything, metrics = "", {}
    for experiment in ("LAMP_easytpp_next_type", "LAMP_easytpp_next_time"):
        out = tmp_path / experiment
        result = subprocess.run([sys.executable, "-m", "lamp", "run", "lamp/configs/easytpp_amazon_hawkes.yaml",
                                 "--experiment", experiment, "--out", str(out)],
                                cwd=ROOT, capture_output=True, text=True, timeout=600,
                                env=dict(os.environ, PYTHONPATH=ROOT))
        assert result.returncode == 0, result.stderr[-3000:]
        printed = [line.rstrip() for line in result.stdout.splitlines()
                   if line.strip() and not line.startswith("[lamp]")]
        block = next(b for b in blocks if b.startswith(printed[0] + "\n"))
        assert [line.rstrip() for line in block.strip().splitlines()] == printed, experiment
        everything += result.stdout + result.stderr
        with open(out / "metrics.json", encoding="utf-8") as f:
            metrics.update(json.load(f))
    # the prose quotes the same numbers
    section = page[page.index("## Results on the bundled Amazon sample"):]
    prose = re.sub(r"```.*?```", "", section, flags=re.S)
    for number in re.findall(r"\d+\.\d+", prose):
        assert number in everything, number
    next_type = metrics["next_type"]
    _assert_says("docs/typed.md", [
        f"the top-5 proposals hold the truth for {next_type['base']['n']} of them",
        f"on the {next_type['lamp']['selection']['valid_n']} validation queries whose truth is proposed"])


# -- docs/abduction.md: abduction per event type ---------------------------------------------------------

def _abduction_table():
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import record_abduction_table
    finally:
        sys.path.pop(0)
    return record_abduction_table


def test_abduction_event_type_table_is_the_recorded_studies():
    """The table is rendered from docs/recorded/abduction_event_types/ (the live studies), and the prose
    quotes its numbers."""
    module = _abduction_table()
    page = _read("docs", "abduction.md")
    table = page.split(module.START, 1)[1].split(module.END, 1)[0]
    assert table.strip() == module.render().strip()
    studies = {}
    for name in module.EXPERIMENTS:
        with open(os.path.join(RECORDED, "abduction_event_types", f"{name}.json"), encoding="utf-8") as f:
            studies[name] = json.load(f)

    def ci(study, run, method, own=False):
        m = next(iter(studies[study]["runs"][run]["metrics"].values()))[method]
        c = (m["ranker_order"] if own else m)["vs_base"]
        return f"{c['delta_mr']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}]"

    def rankers(study):
        r = studies[study]["comparisons"][0]["rankers"]
        return f"{r['delta_mr']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]"

    m10, m20 = "LAMP_icews14_m10", "LAMP_icews14_m20"
    head10 = next(iter(studies[m10]["runs"]["headroom"]["metrics"].values()))
    _assert_says("docs/abduction.md", [
        f"rules ranker's own order gains {ci(m10, 'rules', 'lamp', True)} (M = 10) and "
        f"{ci(m20, 'rules', 'lamp', True)} (M = 20)",
        f"no_llm's own order gains {ci(m10, 'headroom', 'no_llm', True)} and {ci(m20, 'headroom', 'no_llm', True)}",
        f"SmolLM2 minus rules {rankers(m10)} at M = 10, {rankers(m20)} at M = 20",
        f"no better than rules on the knowledge graphs ({ci(m20, 'type_oracle', 'oracle_ceiling', True)} at M = 20",
        f"takes MR from {head10['base']['mr']:.3f} to {head10['oracle_ceiling']['mr']:.3f} (M = 10)",
        f"the event-type oracle does rerank ({ci('LAMP_icews14_actors_next_type', 'type_oracle', 'oracle_ceiling')})",
        f"rules ranker's own order gains {ci('LAMP_icews14_actors_next_type', 'rules', 'lamp', True)}."])
    for study in (m10, m20, "LAMP_gdelt_m20"):  # "nothing beats the proposer at the selection's bar"
        for run, method in (("rules", "lamp"), ("smollm2", "lamp"), ("type_oracle", "oracle_ceiling")):
            metrics = next(iter(studies[study]["runs"][run]["metrics"].values()))[method]
            assert metrics["selection"]["used"] == "proposer", (study, run)


def test_readme_test_tiers_are_the_recorded_ones():
    lines = _read("docs", "recorded", "test_tiers.txt").splitlines()
    total = re.search(r"^bash \.ci/run: (\d+) s in all", lines[1])[1]
    full = re.search(r"(\d+) passed, (\d+) skipped, \d+ warnings in ([\d.]+)s", lines[2]).groups()
    fast = re.search(r"(\d+) passed, (\d+) skipped, (\d+) deselected in ([\d.]+)s", lines[3]).groups()
    _assert_says("README.md", [f"{total} s in all, the pytest part {full[0]} passed, {full[1]} skipped in {full[2]}s",
                               f"{fast[0]} passed, {fast[1]} skipped, {fast[2]} deselected in {fast[3]}s"])
    assert float(fast[3]) < 180  # issue 23: the fast tier under 3 minutes here



def test_easytpp_example_is_the_recorded_run():
    """docs/easytpp.md's `lamp run` on an EasyTPP experiment config: the table between its markers is the one
    docs/recorded/easytpp_example.txt recorded (scripts/easytpp_example.py --record), and the run it shows
    trained the experiment's model and warned once of the key EasyTPP ignores."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import easytpp_example

    page = _read("docs", "easytpp.md")
    block = page.split(easytpp_example.START, 1)[1].split(easytpp_example.END, 1)[0].strip()
    with open(easytpp_example.RECORDED, encoding="utf-8") as f:
        recorded = f.read()
    assert block == "```text\n" + easytpp_example.table(recorded) + "\n```"
    assert "[lamp] proposer: easytpp (fitted)" in recorded
    assert recorded.count("lamp: warning:") == 1 and "NHP_train.model_config.dropout" in recorded
    for method in ("base", "oracle_ceiling", "no_llm"):
        assert f"\n  {method} " in block


def test_scores_example_is_the_recorded_run():
    """docs/proposer.md's worked example: the table between its markers is the recorded `scores` run's, and the
    recorded `recurrency` run printed the same table."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import scores_example

    page = _read("docs", "proposer.md")
    block = page.split(scores_example.START, 1)[1].split(scores_example.END, 1)[0].strip()
    with open(scores_example.RECORDED, encoding="utf-8") as f:
        recorded = f.read()
    first, second = recorded.split("$ lamp export-scores", 1)
    assert "--set lamp.proposer.model=recurrency" in first and "--set lamp.proposer.model=scores" in second
    assert block == "```text\n" + scores_example.table(second) + "\n```"
    assert scores_example.table(first) == scores_example.table(second)
    assert "over all 1000 test queries" in block

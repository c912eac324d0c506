"""The pipeline end to end on the bundled ICEWS14 data with the LLM test server: metrics, resume, invalidation."""
import json
import textwrap

import pytest

from lamp.llm.testserver import TestServer
from lamp.pipeline import Pipeline

CONFIG = textwrap.dedent("""
    data:
      icews14: {{data_format: tkg, data_dir: lamp://icews14}}
    E:
      base_config: {{dataset_id: icews14}}
      lamp:
        task: object
        num_candidates: {m}
        query_limit: 30
        train_query_limit: 30
        valid_query_limit: 10
        proposer: {{model: kg_hawkes, params: {{half_lives: [1, 30, 365]}}}}
        abduction: {{backend: openai, base_url: "{url}", model: test, num_shots: 2}}
        ranker: {{epochs: 3, width: 16}}
        evaluation: {{bootstrap: 200}}
""")


@pytest.fixture(scope="module")
def server():
    with TestServer() as s:
        yield s


def _run(tmp_path, server, m=10):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=m, url=server.base_url))
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    return pipe, pipe.run()


def test_run_writes_metrics_and_resumes(tmp_path, capsys, server):
    pipe, metrics = _run(tmp_path, server)
    base = metrics["object"]["base"]
    assert base["n_queries"] == 30 and 0 < base["coverage"] <= 1
    assert 1 <= base["mr"] <= 10 and base["random_mr"] == 5.5
    assert {"base", "lamp", "no_llm", "random_evidence", "recent_evidence"} <= set(metrics["object"])
    assert metrics["object"]["lamp"]["n"] == base["n"]
    sent = server.total
    assert sent == 70 * 10  # every candidate of every query was asked once
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["object"]["base"]["mr"] == pytest.approx(base["mr"])
    assert (tmp_path / "run" / "metrics.png").exists() and (tmp_path / "run" / "metrics.csv").exists()
    assert "task: object" in capsys.readouterr().out
    log = (tmp_path / "run" / "run.log").read_text()
    assert log.count("stage proposer: computing") == 1
    # a rerun reuses every finished stage and sends nothing
    _, again = _run(tmp_path, server)
    assert again["object"]["lamp"]["mr"] == pytest.approx(metrics["object"]["lamp"]["mr"])
    log = (tmp_path / "run" / "run.log").read_text()
    assert "stage proposer: reusing" in log and "stage abduction: reusing" in log
    assert server.total == sent
    # an unfinished abduction stage (killed run) resumes from the LLM cache without re-sending
    (tmp_path / "run" / "abduction" / "DONE").unlink()
    _run(tmp_path, server)
    assert server.total == sent
    # changing M recomputes the proposals but not the proposer
    _, smaller = _run(tmp_path, server, m=5)
    log = (tmp_path / "run" / "run.log").read_text()
    assert log.count("stage proposer: computing") == 1 and log.count("stage proposals: computing") == 2
    assert smaller["object"]["base"]["random_mr"] == 3.0


def test_bad_settings(tmp_path, server):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=1, url=server.base_url))
    with pytest.raises(ValueError, match="num_candidates must be at least 2"):
        Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    path.write_text(CONFIG.format(m=20, url=server.base_url))
    with pytest.raises(ValueError, match="limit must be a positive"):
        Pipeline.from_yaml(path, out=str(tmp_path / "run"), limit=0)


def test_entity_scope_keeps_evidence_on_the_candidates_entities(tmp_path, server):
    import numpy as np

    path = tmp_path / "c.yaml"
    text = CONFIG.format(m=5, url=server.base_url).replace(
        "ranker: {epochs: 3, width: 16}",
        "ranker: {epochs: 1, width: 8}\n    matching: {scope: entity}").replace(
        "evaluation: {bootstrap: 200}", "evaluation: {bootstrap: 50, ablations: [no_llm]}")
    path.write_text(text)
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    pipe.run()
    from lamp.pipeline.queries import select_queries

    subjects = select_queries(pipe.context)["test"].events[:, 0]
    cands = np.load(tmp_path / "run" / "proposals" / "arrays.npz")["test_candidates"]
    for method in ("lamp", "no_llm"):
        ev = np.load(tmp_path / "run" / f"ranker_{method}" / "arrays.npz")["test_evidence"]  # (Q, M, L, 4)
        assert (ev[..., 0] >= 0).sum() > ev.shape[0]
        # object task: the effect is (s, r, candidate); every evidence event shares s or the candidate
        for qi in range(ev.shape[0]):
            for mi in range(ev.shape[1]):
                rows = ev[qi, mi][ev[qi, mi, :, 0] >= 0]
                ents = {int(subjects[qi]), int(cands[qi, mi])}
                assert all(int(r[0]) in ents or int(r[2]) in ents for r in rows), (qi, mi, rows, ents)


def test_bad_matching_settings(tmp_path, server):
    from lamp.config import ConfigError

    for matching, message in [("{method: faiss}", "matching.method"), ("{scope: sequence}", "matching.scope"),
                              ("{method: dense, scope: entity}", "scope 'entity' needs")]:
        path = tmp_path / "c.yaml"
        path.write_text(CONFIG.format(m=5, url=server.base_url).replace(
            "ranker: {epochs: 3, width: 16}", f"ranker: {{epochs: 1}}\n    matching: {matching}"))
        with pytest.raises(ConfigError, match=message):
            Pipeline.from_yaml(path, out=str(tmp_path / "run"))


def test_bad_ranker_settings(tmp_path, server):
    from lamp.config import ConfigError

    for ranker, message in [("{loss: hinge}", "lamp.ranker.loss must be 'softmax' or 'binary'"),
                            ("{width: 16, heads: 3}", "lamp.ranker.heads=3 must divide lamp.ranker.width=16"),
                            ("{layers: -1}", "lamp.ranker.layers must be an integer >= 0"),
                            ("{heads: 0}", "lamp.ranker.heads must be an integer >= 1")]:
        path = tmp_path / "c.yaml"
        path.write_text(CONFIG.format(m=5, url=server.base_url).replace("ranker: {epochs: 3, width: 16}",
                                                                        f"ranker: {ranker}"))
        with pytest.raises(ConfigError, match=message):
            Pipeline.from_yaml(path, out=str(tmp_path / "run"))


def test_binary_loss_with_layers_and_heads_runs(tmp_path, server):
    import numpy as np

    from lamp.rank import EnergyRanker

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=5, url=server.base_url).replace(
        "ranker: {epochs: 3, width: 16}", "ranker: {epochs: 1, width: 8, heads: 4, layers: 1, loss: binary}").replace(
        "evaluation: {bootstrap: 200}", "evaluation: {bootstrap: 50, ablations: []}"))
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    metrics = pipe.run()
    assert "lamp" in metrics["object"]
    params = np.load(tmp_path / "run" / "ranker_lamp" / "arrays.npz")["params"]
    store = pipe.load_data()
    expected = EnergyRanker(store.num_entities, store.num_relations, width=8, heads=4, layers=1, loss="binary")
    assert params.shape == expected.params.shape  # the model had one layer of four heads

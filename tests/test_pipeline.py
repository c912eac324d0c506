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


def test_small_run_end_to_end_then_resumes(tmp_path):
    """Every stage on small data, fast: the recurrency proposer (nothing to fit) on 30 test queries, the LLM
    test server (its own: the module's server counts requests for the tests below), a small ranker; the
    metrics, the prompts sent, the files and a rerun that sends nothing.  (The slow tests below run the
    fitted kg_hawkes proposer.)"""
    import numpy as np

    with TestServer() as server:
        path = tmp_path / "c.yaml"
        path.write_text(CONFIG.format(m=5, url=server.base_url).replace(
            "proposer: {model: kg_hawkes, params: {half_lives: [1, 30, 365]}}", "proposer: {model: recurrency}").replace(
            "ranker: {epochs: 3, width: 16}", "ranker: {epochs: 2, width: 8}").replace(
            "evaluation: {bootstrap: 200}", "evaluation: {bootstrap: 50, ablations: [no_llm]}"))
        metrics = Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()["object"]
        sent = server.total
        again = Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()["object"]
        assert server.total == sent  # the rerun reuses every stage and sends nothing
    assert set(metrics) == {"base", "lamp", "no_llm"}
    base = metrics["base"]
    assert base["n_queries"] == 30 and base["random_mr"] == 3.0 and 1 <= base["mr"] <= 5
    assert metrics["lamp"]["n"] == metrics["no_llm"]["n"] == base["n"] > 0
    props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
    assert props["test_candidates"].shape == (30, 5)
    covered, inserted = int((props["test_truth"] >= 0).sum()), int(props["train_inserted"].sum())
    assert 0 < covered < 30 and base["n"] == covered
    # asked: every candidate of the training queries whose truth was proposed, of every valid query and of
    # every covered test query
    assert sent == (30 - inserted + 10 + covered) * 5
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["object"]["lamp"]["mr"] == pytest.approx(metrics["lamp"]["mr"])
    assert (tmp_path / "run" / "metrics.csv").exists()
    assert again["lamp"]["mr"] == pytest.approx(metrics["lamp"]["mr"])
    log = (tmp_path / "run" / "run.log").read_text()
    assert "stage proposer: reusing" in log and "stage abduction: reusing" in log


@pytest.mark.slow
def test_run_writes_metrics_and_resumes(tmp_path, capsys, server):
    pipe, metrics = _run(tmp_path, server)
    base = metrics["object"]["base"]
    assert base["n_queries"] == 30 and 0 < base["coverage"] <= 1
    assert 1 <= base["mr"] <= 10 and base["random_mr"] == 5.5
    assert {"base", "lamp", "no_llm", "random_evidence", "recent_evidence"} <= set(metrics["object"])
    assert metrics["object"]["lamp"]["n"] == base["n"]
    sent = server.total
    import numpy as np

    props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
    covered, inserted = int((props["test_truth"] >= 0).sum()), int(props["train_inserted"].sum())
    # every candidate of every valid query, of every training query the ranker trains on, and of every covered
    # test query was asked once (evaluation.skip_uncovered: a test query whose truth is not proposed cannot
    # change a metric; ranker.train_on_inserted: false leaves training queries without a proposed truth out)
    assert sent == (30 - inserted + 10 + covered) * 10 and covered < 30 and 0 < inserted < 30
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    from lamp.pipeline.match import AUX_FEATURES

    expected = EnergyRanker(store.num_entities, store.num_relations, width=8, heads=4, layers=1, loss="binary",
                            aux=len(AUX_FEATURES))  # the pipeline gives the ranker the retrieval features
    assert params.shape == expected.params.shape  # the model had one layer of four heads


# ---------------------------------------------------------------- never worse than the proposer


def test_selection_keeps_the_proposer_unless_the_ranker_is_better_on_validation():
    import numpy as np

    from lamp.pipeline.rank import select_against_proposer

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=200)
    good = np.tile(np.arange(5.0), (200, 1))
    good[np.arange(200), labels] = -1.0  # the truth first everywhere
    sel = select_against_proposer(good, labels, "bootstrap", 0.05, 500, 0)
    assert sel["used"] == "ranker" and sel["valid_mr_ranker"] == 1.0 and sel["delta_mr"] < 0
    assert sel["valid_n"] == 200 and sel["p_not_better"] == 0.0
    same = np.tile(np.arange(5.0), (200, 1))  # the proposer's own order: not better
    assert select_against_proposer(same, labels, "bootstrap", 0.05, 500, 0)["used"] == "proposer"
    bad = -same  # the reverse order: worse
    assert select_against_proposer(bad, labels, "bootstrap", 0.05, 500, 0)["used"] == "proposer"
    assert select_against_proposer(bad, labels, "ranker", 0.05, 500, 0)["used"] == "ranker"  # the paper's rule
    # a small gain on a few queries is not enough
    few = np.tile(np.arange(5.0), (4, 1))
    few[0, [0, 1]] = few[0, [1, 0]]
    sel = select_against_proposer(few, np.array([1, 0, 2, 3]), "bootstrap", 0.05, 500, 0)
    assert sel["delta_mr"] < 0 and sel["used"] == "proposer"
    none = select_against_proposer(same, -np.ones(200, dtype=np.int64), "bootstrap", 0.05, 500, 0)
    assert none["used"] == "proposer" and none["valid_n"] == 0


@pytest.mark.slow
def test_oracle_backend_is_a_labelled_ceiling_through_the_normal_path(tmp_path):
    import numpy as np

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=5, url="http://unused").replace(
        'abduction: {backend: openai, base_url: "http://unused", model: test, num_shots: 2}',
        "abduction: {backend: oracle, num_shots: 2}").replace(
        "evaluation: {bootstrap: 200}", "evaluation: {bootstrap: 200, ablations: [no_llm]}"))
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    metrics = pipe.run()["object"]
    assert set(metrics) == {"base", "oracle_ceiling", "no_llm"}
    assert "ceiling" in metrics["oracle_ceiling"]["note"]
    assert metrics["oracle_ceiling"]["selection"]["used"] in ("ranker", "proposer")
    # the replies went through the parser: the true candidate's causes are real events sharing its entities,
    # the others' are invented; the retrieved evidence shows it
    props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
    ev = np.load(tmp_path / "run" / "ranker_lamp" / "arrays.npz")["test_evidence"]  # (Q, M, L, 4)
    from lamp.pipeline.queries import select_queries

    q = select_queries(pipe.context)["test"].events
    truth, cands = props["test_truth"], props["test_candidates"]
    shares = {True: [], False: []}
    for qi in range(len(q)):
        for mi in range(cands.shape[1]):
            rows = ev[qi, mi][ev[qi, mi, :, 0] >= 0]
            pair = {int(q[qi, 0]), int(cands[qi, mi])}
            shares[bool(truth[qi] == mi)].append(np.mean([{int(r[0]), int(r[2])} == pair for r in rows])
                                                 if len(rows) else 0.0)
    assert np.mean(shares[True]) > 0.3 > np.mean(shares[False])
    causes = json.loads((tmp_path / "run" / "abduction" / "result.json").read_text())["test_causes"]
    covered = np.repeat(truth >= 0, cands.shape[1])  # uncovered queries are not asked (skip_uncovered)
    assert all(len(c) > 0 for c, asked in zip(causes, covered) if asked)
    assert not any(c for c, asked in zip(causes, covered) if not asked)
    grounding = metrics["oracle_ceiling"]["cause_grounding"]  # real events for the truth, invented otherwise
    assert grounding["rate_true"] > 0.5 > grounding["rate_other"] and grounding["causes"] == sum(map(len, causes))
    table = (tmp_path / "run" / "metrics.csv").read_text()
    assert "oracle_ceiling" in table and ",lamp," not in table


# ---------------------------------------------------------------- a failed stage is never kept


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_outage_then_fix_sends_every_request_and_never_keeps_a_failed_stage(tmp_path, server):
    """An unreachable base_url: the run fails with a clear LLMError and keeps no abduction stage; after the
    URL is fixed the rerun asks the server for every prompt (none was recorded as done) and reports real
    metrics."""
    from lamp.cli import main
    from lamp.errors import LLMError

    dead = f"http://127.0.0.1:{_free_port()}/v1"
    text = CONFIG.format(m=5, url=dead).replace("abduction: {", "abduction: {max_retries: 0, timeout: 5, ")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(LLMError, match=r"of \d+ LLM requests failed .*rerun to send only the failed"):
        Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()
    assert not (tmp_path / "run" / "abduction" / "DONE").exists()
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2  # the CLI: one line, exit 2
    before = server.total
    path.write_text(CONFIG.format(m=5, url=server.base_url))
    metrics = Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()["object"]
    stats = json.loads((tmp_path / "run" / "abduction" / "result.json").read_text())["stats"]
    asked = sum(1 for c in json.loads((tmp_path / "run" / "abduction" / "result.json").read_text())["test_causes"]
                if c) + 5 * (30 + 10)
    assert stats["failed_requests"] == 0 and stats["replies"] > 0
    assert server.total - before == stats["replies"] <= asked
    assert metrics["lamp"]["n"] == metrics["base"]["n"] > 0


@pytest.mark.slow
def test_partly_failed_abduction_is_retried_and_never_recorded_as_done(tmp_path, capsys):
    """Some prompts fail (HTTP 400 for a fixed share of them): with abduction.max_failed_fraction 0 the run
    stops, naming the failed count per split; with a tolerance it goes on, but the stage is not recorded as
    finished either way; once the server answers, the next run sends exactly the failed prompts, once each."""
    import re

    from lamp.errors import LLMError

    def failed_prompts(server):
        return {k for k in server.counts if not server.answered.get(k)}

    def rerun_sends_only(server, path, out):
        failed, before = failed_prompts(server), dict(server.counts)
        assert failed
        server.httpd.faults = {}
        metrics = Pipeline.from_yaml(path, out=out).run()["object"]
        resent = {k: n - before.get(k, 0) for k, n in server.counts.items() if n != before.get(k, 0)}
        assert resent == {k: 1 for k in failed}
        assert (tmp_path / out / "abduction" / "DONE").exists()
        return metrics

    for tolerance in (0.0, 0.9):
        with TestServer(faults={"status_400_share": 0.2}) as server:
            path = tmp_path / f"c{tolerance}.yaml"
            path.write_text(CONFIG.format(m=5, url=server.base_url).replace(
                "abduction: {", f"abduction: {{max_retries: 0, max_failed_fraction: {tolerance}, "))
            out = str(tmp_path / f"run{tolerance}")
            if tolerance == 0.0:
                with pytest.raises(LLMError) as info:
                    Pipeline.from_yaml(path, out=out).run()
                counts = re.search(r"abduction: (\d+) of (\d+) LLM requests failed \(train (\d+), valid (\d+), "
                                   r"test (\d+)\); the stage is not kept", str(info.value))
                assert counts, str(info.value)
                assert int(counts[1]) == sum(int(counts[i]) for i in (3, 4, 5)) and 0 < int(counts[1]) < int(counts[2])
            else:
                partial = Pipeline.from_yaml(path, out=out).run()["object"]
                assert partial["lamp"]["n"] == partial["base"]["n"] > 0
                stats = json.loads((tmp_path / out / "abduction" / "result.json").read_text())["stats"]
                assert stats["failed_requests"] == sum(stats["failed_by_split"].values()) > 0
                said = capsys.readouterr()
                assert "within abduction.max_failed_fraction 0.9" in said.out + said.err
            assert not (tmp_path / out / "abduction" / "DONE").exists()
            metrics = rerun_sends_only(server, path, out)
            stats = json.loads((tmp_path / out / "abduction" / "result.json").read_text())["stats"]
            assert stats["failed_requests"] == 0 and metrics["lamp"]["n"] > 0


@pytest.mark.slow
def test_uncovered_test_queries_are_not_sent(tmp_path, server):
    """evaluation.skip_uncovered (default): a test query whose truth is not among the proposals asks nothing,
    and the metrics on covered queries are those of the run that asked everything."""
    import numpy as np

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=5, url=server.base_url))
    before = server.total
    skipping = Pipeline.from_yaml(path, out=str(tmp_path / "a")).run()["object"]
    sent_skipping = server.total - before
    truth = np.load(tmp_path / "a" / "proposals" / "arrays.npz")["test_truth"]
    uncovered = int((truth < 0).sum())
    assert uncovered > 0
    stats = json.loads((tmp_path / "a" / "abduction" / "result.json").read_text())["stats"]
    assert stats["skipped_uncovered"] == 5 * uncovered
    path.write_text(CONFIG.format(m=5, url=server.base_url).replace(
        "evaluation: {bootstrap: 200}", "evaluation: {bootstrap: 200, skip_uncovered: false}"))
    everything = Pipeline.from_yaml(path, out=str(tmp_path / "b")).run()["object"]
    # the server answers from the prompt alone, so the second run's extra prompts are exactly the skipped ones
    causes_a = json.loads((tmp_path / "a" / "abduction" / "result.json").read_text())["test_causes"]
    causes_b = json.loads((tmp_path / "b" / "abduction" / "result.json").read_text())["test_causes"]
    assert sum(1 for c in causes_b if c) - sum(1 for c in causes_a if c) == 5 * uncovered
    assert sent_skipping > 0
    for method in ("base", "lamp", "no_llm"):
        assert skipping[method]["mr"] == pytest.approx(everything[method]["mr"]), method


@pytest.mark.slow
def test_plan_counts_what_the_run_then_sends(tmp_path, server, capsys):
    """`lamp plan` asks no LLM; its prompt counts are what the run then sends, and a rerun's plan sends nothing."""
    from lamp.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=5, url=server.base_url).replace(
        "abduction: {", "abduction: {price_per_mtok: {prompt: 0.15, completion: 0.6}, "))
    before = server.total
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 0
    assert server.total == before  # the plan sent nothing
    text = capsys.readouterr().out
    assert "to send" in text and "cost: ~$" in text and "wall time" in text
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    planned = pipe.plan()
    assert planned["to_send"] == sum(s["to_send"] for s in planned["splits"].values()) > 0
    assert planned["splits"]["test"]["to_ask"] < planned["splits"]["test"]["candidates"]  # skip_uncovered
    pipe.run()
    assert server.total - before == planned["to_send"]
    again = Pipeline.from_yaml(path, out=str(tmp_path / "run")).plan()
    assert again["to_send"] == 0 and again["splits"]["test"]["cached"] == planned["splits"]["test"]["unique"]
    assert "calibrated on" in again["tokens"]["prompt_method"]


@pytest.mark.slow
def test_structured_output_through_the_pipeline(tmp_path, server):
    """abduction.response_format: json_schema sends the cause list's schema (the test server validates it and
    answers conforming JSON), the replies parse into causes, and the plan's cache keys are the client's."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(m=5, url=server.base_url).replace("abduction: {", "abduction: {response_format: json_schema, "))
    pipe = Pipeline.from_yaml(path, out=str(tmp_path / "run"))
    metrics = pipe.run()["object"]
    stats = json.loads((tmp_path / "run" / "abduction" / "result.json").read_text())["stats"]
    assert stats["failed_requests"] == 0 and stats["zero_cause_replies"] == 0 and stats["causes"] > 0
    assert metrics["lamp"]["n"] == metrics["base"]["n"]
    assert Pipeline.from_yaml(path, out=str(tmp_path / "run")).plan()["to_send"] == 0  # all cached, same keys


def test_every_setting_that_changes_answers_is_in_the_abduction_fingerprint():
    """Each abduction key either changes what the LLM answers (then it is part of the stage's fingerprint,
    beside the seed and every prompt's effect event) or only how the answers are fetched (then a change reuses
    the stage); a new key must be put on one side."""
    from lamp.pipeline.abduce import ANSWER_SETTINGS
    from lamp.config.schema import Abduction

    changes_answers = {"backend", "base_url", "model", "model_path", "num_shots", "temperature", "max_tokens",
                       "response_format", "unit", "domain", "max_causes", "window_steps", "min_support"}
    fetching_only = {"api_key_env", "concurrency", "max_retries", "timeout", "cache", "verify_tls",
                     "max_failed_fraction", "price_per_mtok", "seconds_per_request", "batch", "batch_poll_seconds",
                     "requests_per_minute", "tokens_per_minute"}
    assert set(Abduction.model_fields) == changes_answers | fetching_only
    assert set(ANSWER_SETTINGS) == changes_answers

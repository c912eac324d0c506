"""Typed sequences through the pipeline: the Hawkes proposer's batched proposals (against the NumPy oracle),
next-type and next-time runs on the bundled Amazon sample, no look-ahead in the evidence, resume."""
import json
import os
import textwrap

import numpy as np
import pytest

import lamp
import lamp.config
from lamp._reference import hawkes as ref
from lamp.data import EventSequences, load_easytpp, save_easytpp_json
from lamp.datasets import load_amazon_sample
from lamp.easytpp import next_event_queries
from lamp.llm.testserver import TestServer
from lamp.pipeline import Pipeline
from lamp.tpp import HawkesProcess


@pytest.fixture(scope="module")
def amazon():
    return load_amazon_sample()


@pytest.fixture(scope="module")
def fitted(amazon):
    return HawkesProcess(amazon.num_types, relative_time=True, l2=1e-3).fit(amazon.train)


@pytest.mark.slow
def test_relative_time_is_a_shift_of_every_sequence(amazon):
    seqs = amazon.train
    shifted = [(seqs.times[b:e] - seqs.times[b], seqs.marks[b:e]) for b, e in zip(seqs.offsets[:-1], seqs.offsets[1:])]
    a = HawkesProcess(amazon.num_types, decay=0.5, relative_time=True).fit(seqs)
    b = HawkesProcess(amazon.num_types, decay=0.5).fit(shifted)
    np.testing.assert_allclose(a.mu, b.mu, rtol=1e-6)
    np.testing.assert_allclose(a.alpha, b.alpha, rtol=1e-6, atol=1e-9)
    assert a.loglik(seqs) == pytest.approx(b.loglik(shifted))
    with pytest.raises(ValueError, match="relative_time"):
        HawkesProcess(amazon.num_types, relative_time=True).fit(seqs, end_times=np.ones(seqs.num_sequences))


@pytest.mark.slow
def test_propose_batch_ranks_types_by_the_intensity_at_the_event_time(amazon, fitted):
    seqs = amazon.test
    q = next_event_queries(seqs)[:20]
    types, scores, next_times = fitted.propose_batch(seqs, q, 4)
    assert types.shape == scores.shape == (20, 4) and next_times.shape == (20,)
    for row, (s, i) in enumerate(q):
        b = seqs.offsets[s]
        t = seqs.times[b:b + i] - seqs.times[b]
        lam = ref.intensity(t, seqs.marks[b:b + i], fitted.mu, fitted.alpha, fitted.beta,
                            np.array([seqs.times[b + i] - seqs.times[b]]))[0]
        probs = lam / lam.sum()
        np.testing.assert_array_equal(types[row], np.argsort(-probs, kind="stable")[:4])
        np.testing.assert_allclose(scores[row], probs[types[row]], rtol=1e-9)
        assert next_times[row] > seqs.times[b + i - 1]  # after the last history event
    assert np.all(np.diff(scores, axis=1) <= 0)
    with pytest.raises(ValueError, match="m must be in"):
        fitted.propose_batch(seqs, q, amazon.num_types + 1)
    with pytest.raises(ValueError, match="fewer than 1 earlier"):
        fitted.propose_batch(seqs, np.array([[0, 0]]), 2)


@pytest.mark.slow
def test_propose_times_densities_match_the_oracle(amazon, fitted):
    seqs = amazon.test
    q = next_event_queries(seqs)[:6]
    times, types, dens = fitted.propose_times(seqs, q, 5, seed=3)
    assert times.shape == types.shape == dens.shape == (6, 5)
    assert np.all(np.diff(dens, axis=1) <= 0)  # most probable first
    for row, (s, i) in enumerate(q):
        b = seqs.offsets[s]
        origin = seqs.times[b]
        hist, marks = seqs.times[b:b + i] - origin, seqs.marks[b:b + i]
        assert np.all(times[row] > seqs.times[b + i - 1])
        for t, d in zip(times[row] - origin, dens[row]):
            lam = ref.intensity(hist, marks, fitted.mu, fitted.alpha, fitted.beta, np.array([t]))[0].sum()
            comp = ref.loglik(hist, marks, fitted.mu, fitted.alpha, fitted.beta, hist[-1]) - \
                ref.loglik(hist, marks, fitted.mu, fitted.alpha, fitted.beta, t)
            assert d == pytest.approx(np.log(lam) - comp, rel=1e-7, abs=1e-9)
    again = fitted.propose_times(seqs, q, 5, seed=3)
    np.testing.assert_array_equal(again[0], times)  # seeded


def _cyclic_sequences(rng, num_sequences, k=3):
    """Type j is followed by type j + 1 (mod k) four times in five: history that a Hawkes process learns."""
    times, marks = [], []
    for _ in range(num_sequences):
        t, mark, ts, ms = 0.0, int(rng.integers(k)), [], []
        for _ in range(int(rng.integers(6, 14))):
            t += rng.exponential(1.0)
            ts.append(t)
            ms.append(mark)
            mark = (mark + 1) % k if rng.random() < 0.8 else int(rng.integers(k))
        times.append(ts)
        marks.append(ms)
    return EventSequences.from_lists(times, marks, num_types=k)


def test_small_typed_run_end_to_end(tmp_path):
    """The typed path on small data, fast: EasyTPP json files of 3 types, the fitted Hawkes proposer, no
    LLM.  The proposer must have learned the cycle from the history before each test event, and the
    truth's position among the proposals must be the one the metrics count."""
    rng = np.random.default_rng(11)
    for name, n in (("train", 60), ("dev", 20), ("test", 30)):
        save_easytpp_json(_cyclic_sequences(rng, n), str(tmp_path / f"{name}.json"))
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(f"""
        data:
          toy:
            data_format: json
            train_dir: {tmp_path}/train.json
            valid_dir: {tmp_path}/dev.json
            test_dir: {tmp_path}/test.json
            data_specs: {{num_event_types: 3, pad_token_id: 3}}
        E:
          base_config: {{dataset_id: toy}}
          lamp:
            task: next_type
            num_candidates: 2
            proposer: {{model: hawkes, params: {{l2: 0.001}}}}
            abduction: {{backend: none}}
            ranker: {{epochs: 2, width: 8}}
            evaluation: {{bootstrap: 50}}
    """))
    metrics = Pipeline.from_yaml(path, out=str(tmp_path / "run")).run()["next_type"]
    assert {"base", "lamp", "no_llm"} <= set(metrics)
    base = metrics["base"]
    assert base["n_queries"] == 30 and base["random_mr"] == 1.5  # one query per test sequence: its last event
    test = load_easytpp(str(tmp_path / "test.json"))
    last, before_last = test.marks[test.offsets[1:] - 1], test.marks[test.offsets[1:] - 2]
    props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
    cands, truth = props["test_candidates"], props["test_truth"]
    assert cands.shape == (30, 2)
    assert np.mean(cands[:, 0] == (before_last + 1) % 3) >= 0.75  # learned: after type j comes j + 1
    for row in range(30):  # test_truth: where the real type is among the proposals, -1 when absent
        assert (cands[row, truth[row]] == last[row]) if truth[row] >= 0 else (last[row] not in cands[row])
    assert base["n"] == int((truth >= 0).sum()) and base["mr"] < 1.35  # random order: 1.5


CONFIG = textwrap.dedent("""
    data:
      amazon: {{data_format: amazon_jsonl, data_dir: lamp://amazon_reviews_sample}}
    E:
      base_config: {{dataset_id: amazon}}
      lamp:
        task: {task}
        num_candidates: 4
        train_query_limit: 80
        valid_query_limit: 30
        proposer: {{model: hawkes, params: {{l2: 0.001}}}}
        abduction: {abduction}
        matching: {{causes_top_k: 3, evidence_length: 6}}
        ranker: {{epochs: 3, width: 16}}
        evaluation: {{bootstrap: 200}}
""")


def _pipe(tmp_path, task="next_type", abduction="{backend: none}"):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(task=task, abduction=abduction))
    return Pipeline.from_yaml(path, out=str(tmp_path / "run"))


@pytest.mark.slow
def test_next_type_with_an_llm_resumes_and_never_looks_ahead(tmp_path, amazon):
    reply = "1. category: Books\n   title: A gift\n   time: 2020-01-02\n   summary: nice"
    with TestServer(reply=reply) as server:
        abduction = f'{{backend: openai, base_url: "{server.base_url}", model: test, num_shots: 2}}'
        pipe = _pipe(tmp_path, abduction=abduction)
        metrics = pipe.run()
        sent = server.total
        # every candidate of every query asked once (test: of the covered queries, evaluation.skip_uncovered);
        # identical prompts (same candidate category on the same day for two customers) are sent once
        props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
        covered, trained = int((props["test_truth"] >= 0).sum()), int((~props["train_inserted"]).sum())
        assert 0.9 * (trained + 30 + covered) * 4 < sent <= (trained + 30 + covered) * 4
        _pipe(tmp_path, abduction=abduction).run()
        assert server.total == sent  # the rerun reuses every stage and sends nothing
    result = metrics["next_type"]
    assert {"base", "lamp", "no_llm", "random_evidence", "recent_evidence"} <= set(result)
    assert result["base"]["n_queries"] == 23 and result["base"]["random_mr"] == 2.5
    assert len({m["n"] for m in result.values()}) == 1
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["next_type"]["lamp"]["mr"] == pytest.approx(result["lamp"]["mr"])
    # the evidence of a test query comes from its own customer's earlier reviews only
    evidence = np.load(tmp_path / "run" / "ranker_lamp" / "arrays.npz")["test_evidence"]
    test = amazon.test
    for row in range(evidence.shape[0]):
        b, e = test.offsets[row], test.offsets[row + 1]
        used = evidence[row][evidence[row][..., 0] >= 0]
        assert np.all(used[:, 1] < test.times[e - 1])
        assert set(map(float, used[:, 1])) <= set(map(float, test.times[b:e - 1]))


@pytest.mark.slow
def test_next_time_base_is_the_most_probable_sample(tmp_path):
    pipe = _pipe(tmp_path, task="next_time")
    metrics = pipe.run()["next_time"]
    assert {"base", "lamp", "no_llm", "best_of_m"} <= set(metrics)
    assert metrics["best_of_m"]["rmse"] <= min(m["rmse"] for m in metrics.values())
    props = np.load(tmp_path / "run" / "proposals" / "arrays.npz")
    truth = np.array([pipe.store.test.times[pipe.store.test.offsets[s + 1] - 1]
                      for s in range(pipe.store.test.num_sequences)])
    err = props["test_times"][:, 0] - truth
    assert metrics["base"]["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)))
    assert np.all(props["test_truth"] == -1) and np.all(props["train_truth"] == 3)  # truth only in training
    from lamp.pipeline.queries import select_queries

    train = select_queries(pipe.context)["train"]  # the real event replaces the last sample in training
    np.testing.assert_array_equal(props["train_candidates"][:, -1], train.truth)
    np.testing.assert_array_equal(props["train_times"][:, -1], train.times)
    assert np.all(props["test_times"] > 0)


@pytest.mark.slow
def test_shipped_typed_configs_run(tmp_path):
    folder = os.path.join(os.path.dirname(lamp.__file__), "configs")
    for experiment in ("LAMP_easytpp_next_type", "LAMP_easytpp_next_time"):
        cfg = lamp.config.load(os.path.join(folder, "easytpp_amazon_hawkes.yaml"), experiment,
                               overrides=["lamp.ranker.epochs=2"])
        pipe = Pipeline(cfg, out=str(tmp_path / experiment))
        metrics = pipe.run()
        assert pipe.store.num_types == 31 and len(pipe.store.test) == 115
        assert list(metrics) == [pipe.task]

"""The ``scores`` proposer (lamp.tpp.scores): another model's saved scores, in three formats, validated against
the data set, ranked as the community's evaluator ranks; ``lamp export-scores``; the pipeline on top of it."""
import json
import os
import pickle
import textwrap

import numpy as np
import pytest

from lamp.cli import main
from lamp.datasets import load_icews14
from lamp.errors import ConfigError, DataError
from lamp.tpp import RecurrencyBaseline
from lamp.tpp.scores import (ScoresProposer, load_pickle, save_scores, sidecar_path, write_pickle,
                             write_sidecar)

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def store():
    return load_icews14()


@pytest.fixture(scope="module")
def rec(store):
    return RecurrencyBaseline().fit(store)


@pytest.fixture(scope="module")
def queries(store):
    test = store.test.quadruples()
    rng = np.random.default_rng(1)
    return test[np.sort(rng.choice(len(test), 120, replace=False))]


def _full(proposer, q, n):
    ids, sc = proposer.propose(q, "object", m=n)
    full = np.empty((len(q), n))
    np.put_along_axis(full, ids, sc, axis=1)
    return full


@pytest.fixture(scope="module")
def rec_scores(store, rec, queries):
    return _full(rec, queries, store.num_entities)


def _write(fmt, folder, q, scores, store, direction="object"):
    if fmt == "npz":
        path = str(folder / "s.npz")
        save_scores(path, q, direction, scores=scores)
    elif fmt == "pkl":
        path = str(folder / "s.pkl")
        write_pickle(path, q, scores, store.num_relations, direction)
    else:
        path = str(folder / "s.npy")
        np.save(path, scores)
        write_sidecar(path, q, direction)
    return path


# ------------------------------------------------------------------ the three formats read back as recurrency


@pytest.mark.parametrize("fmt", ["npz", "pkl", "npy"])
def test_each_format_gives_recurrencys_own_proposals_and_quality(tmp_path, store, rec, queries, rec_scores, fmt):
    path = _write(fmt, tmp_path, queries, rec_scores, store)
    p = ScoresProposer(path, store, "object")
    ids, sc = p.propose(queries, "object", 20)
    rid, rsc = rec.propose(queries, "object", 20)
    np.testing.assert_array_equal(ids, rid)
    np.testing.assert_array_equal(sc, rsc)
    mine, theirs = p.quality(queries, "object", 20), rec.quality(queries, "object", 20)
    for k in theirs:
        assert mine[k] == theirs[k], k
    assert mine["mrr_optimistic"] >= mine["mrr"] >= mine["mrr_pessimistic"]


def test_the_pickle_is_the_gastinger_layout_and_reads_without_torch_rebuilds(tmp_path, store, queries, rec_scores,
                                                                              monkeypatch):
    path = _write("pkl", tmp_path, queries[:3], rec_scores[:3], store)
    with open(path, "rb") as f:
        raw = f.read()
    assert b"_rebuild_tensor_v2" in raw and b"_load_from_bytes" in raw  # real torch tensors, as the reference writes
    s, r, o, t = (int(v) for v in queries[0])
    # torch's own loaders are never called: make them explode
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    data = load_pickle(path)
    row, quad = data[f"{s}_{r}_xxx{o}_{t}"]
    assert row.dtype == np.float64 and row.shape == (store.num_entities,)
    np.testing.assert_array_equal(row, rec_scores[0])
    assert quad.dtype == np.int32 and quad.tolist() == [s, r, o, t]


def test_subject_direction_rows_are_inverse_queries(tmp_path, store, rec, queries):
    R = store.num_relations
    inverse = np.stack([queries[:, 2], queries[:, 1] + R, queries[:, 0], queries[:, 3]], axis=1)
    subject_scores = _full(rec, inverse, store.num_entities)  # scores of the subject candidates of (?, r, o, t)
    path = _write("npz", tmp_path, queries, subject_scores, store, direction="subject")
    p = ScoresProposer(path, store, "object")
    assert p.quality(inverse, "object", 20) == pytest.approx(
        {**rec.quality(inverse, "object", 20), "mrr_optimistic": pytest.approx(0, abs=1),
         "mrr_pessimistic": pytest.approx(0, abs=1)})
    np.testing.assert_array_equal(p.propose(inverse, "object", 5)[0], rec.propose(inverse, "object", 5)[0])
    # the same file in the pkl layout: keys carry r + R
    pk = _write("pkl", tmp_path, queries, subject_scores, store, direction="subject")
    assert f"{inverse[0, 0]}_{inverse[0, 1]}_xxx{inverse[0, 2]}_{inverse[0, 3]}" in load_pickle(pk)
    assert ScoresProposer(pk, store, "object").quality(inverse, "object", 20)["mrr"] == \
        rec.quality(inverse, "object", 20)["mrr"]


def test_topk_file(tmp_path, store, rec, queries):
    ids, sc = rec.propose(queries, "object", 30)
    shuffle = np.random.default_rng(0).permutation(30)  # the file need not be sorted
    path = str(tmp_path / "k.npz")
    save_scores(path, queries, "object", topk_ids=ids[:, shuffle], topk_scores=sc[:, shuffle])
    p = ScoresProposer(path, store, "object")
    got = p.propose(queries, "object", 20)
    np.testing.assert_array_equal(got[0], ids[:, :20])
    theirs = rec.quality(queries, "object", 20)
    mine = p.quality(queries, "object", 20)
    for k in ("hits@1", "hits@3", "hits@10", "coverage@20"):
        assert mine[k] == theirs[k]
    assert mine["mrr"] <= theirs["mrr"] <= mine["mrr_optimistic"]  # unlisted truths: bounds
    with pytest.raises(DataError, match="top 30 candidates.*40 proposals"):
        p.propose(queries, "object", 40)


# ------------------------------------------------------------------ metrics as the community evaluator computes them


def _reference(q, scores, num_entities):
    """The RE-GCN / Gastinger et al. evaluation: the other true objects of the same (s, r, t) are filtered
    (their score set very low), the scores sorted descending, the truth's position + 1 is its rank."""
    ranks = []
    for i, (s, r, o, t) in enumerate(q):
        row = scores[i].astype(np.float64).copy()
        same = (q[:, 0] == s) & (q[:, 1] == r) & (q[:, 3] == t) & (q[:, 2] != o)
        row[q[same, 2]] = -1e7
        order = np.argsort(-row, kind="stable")
        ranks.append(int(np.flatnonzero(order == o)[0]) + 1)
    ranks = np.array(ranks, dtype=np.float64)
    return {"mrr": np.mean(1 / ranks), "hits@1": np.mean(ranks <= 1), "hits@3": np.mean(ranks <= 3),
            "hits@10": np.mean(ranks <= 10)}


def _strict_reference(q, scores):
    """1 + the number of unfiltered entities with a strictly greater score (the optimistic rank)."""
    ranks = []
    for i, (s, r, o, t) in enumerate(q):
        same = (q[:, 0] == s) & (q[:, 1] == r) & (q[:, 3] == t) & (q[:, 2] != o)
        keep = np.ones(scores.shape[1], bool)
        keep[q[same, 2]] = False
        keep[o] = False
        ranks.append(1 + np.count_nonzero(scores[i][keep] > scores[i, o]))
    return np.mean(1 / np.array(ranks, dtype=np.float64))


@pytest.fixture(scope="module")
def crowded(store):
    """Test events of a few timestamps: many share (s, r, t) with other objects (the time-aware filter matters)."""
    test = store.test.quadruples()
    q = test[np.isin(test[:, 3], np.unique(test[:, 3])[:3])]
    key = q[:, 0] * 10 ** 6 + q[:, 1] * 10 ** 4 + q[:, 3]
    _, counts = np.unique(key, return_counts=True)
    assert counts.max() > 1  # the filter is exercised
    return q


def test_metrics_match_the_reference_evaluator_on_a_hand_built_file(tmp_path, store, crowded):
    rng = np.random.default_rng(7)
    scores = rng.random((len(crowded), store.num_entities))  # continuous: no ties
    # make the truth rank near the top often, and put the other true objects above it (the filter must act)
    for i, (s, r, o, t) in enumerate(crowded):
        scores[i, o] = 0.999 + 0.001 * rng.random()
        same = (crowded[:, 0] == s) & (crowded[:, 1] == r) & (crowded[:, 3] == t) & (crowded[:, 2] != o)
        scores[i, crowded[same, 2]] = 1.5
    path = _write("npz", tmp_path, crowded, scores, store)
    got = ScoresProposer(path, store, "object").quality(crowded, "object", 10)
    ref = _reference(crowded, scores, store.num_entities)
    for k, v in ref.items():
        assert abs(got[k] - v) < 1e-4, k
    assert got["mrr"] == got["mrr_optimistic"] == got["mrr_pessimistic"]  # no ties
    unfiltered = np.mean([1 / (1 + np.count_nonzero(row > row[o])) for row, o in zip(scores, crowded[:, 2])])
    assert got["mrr"] > unfiltered + 0.01  # the filter did something


def test_tied_scores_report_the_spread(tmp_path, store, crowded):
    rng = np.random.default_rng(3)
    scores = np.round(rng.random((len(crowded), store.num_entities)), 1)  # eleven values: heavy ties
    path = _write("pkl", tmp_path, crowded, scores, store)
    got = ScoresProposer(path, store, "object").quality(crowded, "object", 10)
    assert got["mrr_optimistic"] == pytest.approx(_strict_reference(crowded, scores), abs=1e-12)
    assert got["mrr_optimistic"] > got["mrr"] > got["mrr_pessimistic"]
    ref = _reference(crowded, scores, store.num_entities)  # a tie order: inside the spread
    assert got["mrr_pessimistic"] <= ref["mrr"] <= got["mrr_optimistic"]


def test_a_file_misaligned_with_its_queries_gives_the_reference_metrics_of_what_it_says(tmp_path, store, crowded):
    rng = np.random.default_rng(5)
    scores = rng.random((len(crowded), store.num_entities))
    scores[np.arange(len(crowded)), crowded[:, 2]] = 2.0  # the truth first: MRR 1
    good = ScoresProposer(_write("npz", tmp_path, crowded, scores, store), store, "object")
    assert good.quality(crowded, "object", 10)["mrr"] == 1.0
    perm = rng.permutation(len(crowded))
    shuffled = scores[perm]  # rows no longer belong to their queries
    got = ScoresProposer(_write("npy", tmp_path, crowded, shuffled, store), store, "object").quality(crowded, "object",
                                                                                                     10)
    assert got["mrr"] < 0.5
    assert got["mrr"] == pytest.approx(_reference(crowded, shuffled, store.num_entities)["mrr"], abs=1e-4)


def test_log_scores_propose_positive_scores_in_the_same_order(tmp_path, store, queries, rec_scores):
    logits = np.log(rec_scores) - 3.0  # negative: read as logarithms
    p = ScoresProposer(_write("npz", tmp_path, queries, logits, store), store, "object")
    assert p.log_scores
    ids, sc = p.propose(queries, "object", 20)
    plain = ScoresProposer(_write("npy", tmp_path, queries, rec_scores, store), store, "object")
    np.testing.assert_array_equal(ids, plain.propose(queries, "object", 20)[0])
    assert np.all(sc > 0) and np.all(sc[:, 0] == 1.0)
    np.testing.assert_allclose(np.log(sc), logits[np.arange(len(ids))[:, None], ids] - logits.max(axis=1)[:, None],
                               atol=1e-9)
    with pytest.raises(DataError, match="negative scores.*log_scores is false"):
        ScoresProposer(p.path, store, "object", log_scores=False)


def test_fingerprint_follows_the_file(tmp_path, store, queries, rec_scores):
    path = _write("npz", tmp_path, queries, rec_scores, store)
    first = ScoresProposer(path, store, "object").fingerprint
    assert ScoresProposer(path, store, "object").fingerprint == first
    changed = rec_scores.copy()
    changed[0, 0] += 1.0
    _write("npz", tmp_path, queries, changed, store)
    assert ScoresProposer(path, store, "object").fingerprint != first


# ------------------------------------------------------------------ validation: each problem named


def _error(tmp_path, store, queries, scores, fmt="npz", match=None, **kw):
    path = _write(fmt, tmp_path, queries, scores, store)
    with pytest.raises(DataError, match=match) as info:
        ScoresProposer(path, store, "object", **kw)
    assert os.path.basename(path) in str(info.value)
    return str(info.value)


def test_bad_files_are_named_errors(tmp_path, store, queries, rec_scores):
    q, sc = queries[:10].copy(), rec_scores[:10].copy()
    bad = q.copy()
    bad[3, 0] = store.num_entities
    _error(tmp_path, store, bad, sc, match=rf"row 3, query \(s={store.num_entities}.*subject id .* out of range")
    bad = q.copy()
    bad[2, 1] = 2 * store.num_relations
    _error(tmp_path, store, bad, sc, match=r"row 2.*relation id .*out of range")
    days = q.copy()
    days[:, 3] //= 24  # days where the data set counts hours
    text = _error(tmp_path, store, days, sc, match=r"row 0, query .*time .* is not a time of the data set")
    assert "time unit" in text and "x 24 would match" in text
    extra = q.copy()
    extra[4, 2] = (extra[4, 2] + 1) % store.num_entities  # not an event
    while any((store.test.quadruples() == extra[4]).all(axis=1)):
        extra[4, 2] = (extra[4, 2] + 1) % store.num_entities
    _error(tmp_path, store, extra, sc, match=r"row 4, query .*is not an event of the data set")
    dup = q.copy()
    dup[5] = dup[1]
    _error(tmp_path, store, dup, sc, match=r"appears twice \(rows 1 and 5\)")
    nan = sc.copy()
    nan[6, 9] = np.nan
    for fmt in ("npz", "pkl", "npy"):
        _error(tmp_path, store, q, nan, fmt=fmt, match=r"row 6, query .*NaN or infinite")
    inf = sc.copy()
    inf[7, 0] = np.inf
    _error(tmp_path, store, q, inf, match=r"row 7.*NaN or infinite")
    _error(tmp_path, store, q, sc[:, :100], match=r"shape \(10, 100\).*one per candidate")
    _error(tmp_path, store, q, sc[:, :100], fmt="pkl", match=r"row 0.*has 100 scores")


def test_bad_containers(tmp_path, store, queries, rec_scores):
    path = str(tmp_path / "x.npz")
    np.savez(path, queries=queries, direction=np.array("object"), scores=rec_scores, extra=np.zeros(1))
    with pytest.raises(DataError, match=r"x.npz: unknown array\(s\) \['extra'\]"):
        ScoresProposer(path, store, "object")
    np.savez(path, queries=queries, direction=np.array("sideways"), scores=rec_scores)
    with pytest.raises(DataError, match="direction must be one of"):
        ScoresProposer(path, store, "object")
    np.savez(path, queries=queries.astype(float), direction=np.array("object"), scores=rec_scores)
    with pytest.raises(DataError, match="queries must be integers"):
        ScoresProposer(path, store, "object")
    save_scores(path, queries, "relation", scores=rec_scores[:, :store.num_relations])
    with pytest.raises(DataError, match="relation-direction scores, but lamp.task is 'object'"):
        ScoresProposer(path, store, "object")
    (tmp_path / "y.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="y.npz: not a readable .npz"):
        ScoresProposer(str(tmp_path / "y.npz"), store, "object")
    np.save(tmp_path / "m.npy", rec_scores)
    with pytest.raises(DataError, match=r"m.npy: a .npy score matrix needs its query list beside it"):
        ScoresProposer(str(tmp_path / "m.npy"), store, "object")
    write_sidecar(str(tmp_path / "m.npy"), queries[:5])
    with pytest.raises(DataError, match=r"lists 5 queries"):
        ScoresProposer(str(tmp_path / "m.npy"), store, "object")
    with open(sidecar_path(str(tmp_path / "m.npy")), "w") as f:
        f.write("1 2 three 4\n")
    with pytest.raises(DataError, match=r"m.queries.txt, line 1: expected 's r o t'"):
        ScoresProposer(str(tmp_path / "m.npy"), store, "object")
    s, r, o, t = (int(v) for v in queries[0])
    with open(tmp_path / "k.pkl", "wb") as f:
        pickle.dump({f"{s}_{r}_xxx{o}_{t}": [torch.zeros(store.num_entities, dtype=torch.float64),
                                             np.array([s, r, o + 1, t], dtype=np.int32)]}, f)
    with pytest.raises(DataError, match="k.pkl: key .* and its quadruple .* disagree"):
        ScoresProposer(str(tmp_path / "k.pkl"), store, "object")
    with pytest.raises(DataError, match="unknown score file format"):
        ScoresProposer(str(tmp_path / "c.yaml"), store, "object") if (tmp_path / "c.yaml").write_text("a") else None
    with pytest.raises(ConfigError, match="pair task is not supported"):
        ScoresProposer(path, store, "pair")
    with pytest.raises(ValueError, match="give either scores"):
        save_scores(path, queries, "object")
    with pytest.raises(ValueError, match="direction must be one of"):
        save_scores(path, queries, "up", scores=rec_scores)


def test_missing_queries(tmp_path, store, queries, rec_scores):
    p = ScoresProposer(_write("npz", tmp_path, queries[:-1], rec_scores[:-1], store), store, "object")
    with pytest.raises(DataError, match=r"s.npz: has no scores for a test query \(s=.*1 of 120 queries missing"):
        p.propose(queries, "object", 10)
    with pytest.raises(DataError, match="has no scores for a test query"):
        p.quality(queries, "object", 10)
    bad = queries.copy()
    bad[2, 1] = 2 * store.num_relations
    with pytest.raises(ValueError, match=r"queries\[2\]: relation id .* out of range"):
        p.propose(bad, "object", 10)
    train = store.train.quadruples()[:7]
    with pytest.raises(DataError, match="training or validation query.*fallback: kg_hawkes"):
        p.propose(train, "object", 10)
    fb = ScoresProposer(p.path, store, "object", fallback="recurrency")
    with pytest.warns(RuntimeWarning, match="7 of 7 training/validation queries are not in the file"):
        ids, _ = fb.propose(train, "object", 10)
    np.testing.assert_array_equal(ids, RecurrencyBaseline().fit(store).propose(train, "object", 10)[0])
    with pytest.raises(DataError, match="test query"):  # test queries never fall back
        fb.propose(queries, "object", 10)


# ------------------------------------------------------------------ the restricted unpickler


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, store, queries, rec_scores):
    marker = tmp_path / "PWNED"
    s, r, o, t = (int(v) for v in queries[0])
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({f"{s}_{r}_xxx{o}_{t}": [torch.from_numpy(rec_scores[0]), _Evil(marker)]}, f)
    with pytest.raises(DataError, match=r"evil.pkl: refused to load the global (posix|os|nt)\.system"):
        ScoresProposer(str(path), store, "object")
    assert not marker.exists()
    # a code-running global hidden inside a tensor's storage bytes
    inner = pickle.dumps(_Evil(marker), protocol=2)
    blob = (b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00C" + bytes([len(inner)]) + inner + b"\x85R.")
    (tmp_path / "inner.pkl").write_bytes(blob)
    with pytest.raises(DataError, match=r"inner.pkl: global (posix|os|nt)\.system inside a tensor's storage"):
        load_pickle(str(tmp_path / "inner.pkl"))
    assert not marker.exists()
    for module, name in (("builtins", "eval"), ("builtins", "getattr"), ("torch", "load"), ("numpy", "load")):
        (tmp_path / "g.pkl").write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x01\x00\x00\x00x\x85R.")
        with pytest.raises(DataError, match=rf"g.pkl: refused to load the global {module}\.{name}"):
            load_pickle(str(tmp_path / "g.pkl"))


def test_a_tensor_reaching_beyond_its_storage_is_refused(tmp_path):
    t = torch.arange(4, dtype=torch.float64)
    raw = pickle.dumps(t)
    # size 4 -> 400: the rebuilt tensor would read past the storage
    raw = raw.replace(b"K\x04\x85", b"M\x90\x01\x85", 1)
    (tmp_path / "big.pkl").write_bytes(raw)
    with pytest.raises(DataError, match="big.pkl: a tensor reaching beyond its storage"):
        load_pickle(str(tmp_path / "big.pkl"))
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"a": [t[1:3], np.arange(3, dtype=np.int32), 1.5, ("x",)]}))
    got = load_pickle(str(tmp_path / "ok.pkl"))
    assert got["a"][0].tolist() == [1.0, 2.0] and got["a"][1].tolist() == [0, 1, 2] and got["a"][2:] == [1.5, ("x",)]


# ------------------------------------------------------------------ config, CLI and the pipeline

CONFIG = textwrap.dedent("""
    data:
      icews14: {{data_format: tkg, data_dir: lamp://icews14}}
    E:
      base_config: {{dataset_id: icews14}}
      lamp:
        task: object
        num_candidates: 10
        query_limit: 30
        train_query_limit: 30
        valid_query_limit: 10
        proposer: {proposer}
        abduction: {{backend: oracle, num_shots: 2}}
        ranker: {{epochs: 3, width: 16}}
        evaluation: {{bootstrap: 200, ablations: [no_llm]}}
""")


def _config(tmp_path, proposer, name="c.yaml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(proposer=proposer))
    return str(path)


def test_config_rules(tmp_path):
    from lamp import config as lamp_config

    with pytest.raises(ConfigError, match="'scores' needs lamp.proposer.path"):
        lamp_config.load(_config(tmp_path, "{model: scores}"))
    with pytest.raises(ConfigError, match="lamp.proposer.path is read by the 'scores' proposer"):
        lamp_config.load(_config(tmp_path, "{model: kg_hawkes, path: x.npz}"))
    cfg = lamp_config.load(_config(tmp_path, "{model: scores, path: x.npz, params: {fallback: kg_hawkes}}"))
    assert cfg.lamp.proposer.path == "x.npz"


def _run_cli(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_planted_truth_gives_mrr_one_through_lamp_run(tmp_path, store, capsys):
    cfg = _config(tmp_path, "{model: recurrency}", "rec.yaml")
    code, _, err = _run_cli(["export-scores", cfg, "--out", str(tmp_path / "rec.npz")], capsys)
    assert code == 0, err
    with np.load(tmp_path / "rec.npz") as z:
        q, scores = z["queries"], z["scores"]
    planted = np.random.default_rng(0).random(scores.shape)
    planted[np.arange(len(q)), q[:, 2]] = 5.0  # the truth is always top 1
    save_scores(tmp_path / "planted.npz", q, "object", scores=planted)
    run = _config(tmp_path, "{model: scores, path: planted.npz}", "planted.yaml")
    code, _, err = _run_cli(["run", run, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    quality = json.loads((tmp_path / "run" / "proposer_metrics.json").read_text())["object"]
    assert quality["mrr"] == quality["mrr_optimistic"] == quality["hits@1"] == 1.0 and quality["n"] == 30
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    base = metrics["object"]["base"] if "object" in metrics else metrics["metrics"]["object"]["base"]
    assert base["mrr"] == 1.0 and base["coverage"] == 1.0


def _bad_run(tmp_path, capsys, file_name):
    run = _config(tmp_path, f"{{model: scores, path: {file_name}}}", "bad.yaml")
    out = tmp_path / ("run_" + file_name.replace(".", "_"))
    code, _, err = _run_cli(["run", run, "--out", str(out)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lamp: error: ") and "Traceback" not in err
    assert not (out / "proposals").exists() and not (out / "metrics.json").exists()
    return lines[0]


def test_bad_files_end_lamp_run_with_one_line(tmp_path, store, rec, capsys):
    from lamp import config as lamp_config
    from lamp.export import _queries

    q = _queries(lamp_config.load(_config(tmp_path, "{model: recurrency}", "rec.yaml")), store,
                 ("train", "valid", "test"))
    scores = _full(rec, q, store.num_entities)
    nan = scores.copy()
    nan[3, 3] = np.nan
    save_scores(tmp_path / "nan.npz", q, "object", scores=nan)
    assert "nan.npz: row 3, query (s=" in _bad_run(tmp_path, capsys, "nan.npz")
    save_scores(tmp_path / "short.npz", q[:-1], "object", scores=scores[:-1])
    assert "short.npz: has no scores for a test query" in _bad_run(tmp_path, capsys, "short.npz")
    days = q.copy()
    days[:, 3] //= 24
    save_scores(tmp_path / "days.npz", days, "object", scores=scores)
    assert "time unit" in _bad_run(tmp_path, capsys, "days.npz")
    marker = tmp_path / "PWNED"
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"1_2_xxx3_4": _Evil(marker)}, f)
    assert "evil.pkl: refused to load the global" in _bad_run(tmp_path, capsys, "evil.pkl")
    assert not marker.exists()
    assert "no such score file" in _bad_run(tmp_path, capsys, "absent.npz")


def test_export_scores_cli_errors(tmp_path, capsys):
    cfg = _config(tmp_path, "{model: recurrency}")
    code, _, err = _run_cli(["export-scores", cfg, "--out", str(tmp_path / "x.csv")], capsys)
    assert code == 2 and err.strip() == "lamp: error: --format 'csv': must be one of npz, npy, pkl (or an --out " \
                                        "ending in one)"
    code, _, err = _run_cli(["export-scores", cfg, "--top-k", "0"], capsys)
    assert code == 2 and "--top-k '0'" in err
    code, _, err = _run_cli(["export-scores", cfg, "--splits", "test,dev"], capsys)
    assert code == 2 and "--splits test,dev" in err
    scores_cfg = _config(tmp_path, "{model: scores, path: x.npz}", "s.yaml")
    code, _, err = _run_cli(["export-scores", scores_cfg], capsys)
    assert code == 2 and "export-scores writes the scores of a proposer that computes them" in err


@pytest.mark.slow
def test_lamp_run_on_each_exported_format_equals_the_recurrency_run(tmp_path, capsys):
    """The issue's acceptance test: lamp's own recurrency scores exported in each format and read back by the
    scores proposer give the recurrency proposer's own proposals, proposer metrics and reranking rows."""
    cfg = _config(tmp_path, "{model: recurrency}", "rec.yaml")
    assert _run_cli(["run", cfg, "--out", str(tmp_path / "run_rec")], capsys)[0] == 0
    ref_props = np.load(tmp_path / "run_rec" / "proposals" / "arrays.npz")
    ref_quality = json.loads((tmp_path / "run_rec" / "proposer_metrics.json").read_text())["object"]
    ref_metrics = json.loads((tmp_path / "run_rec" / "metrics.json").read_text())
    for fmt in ("npz", "pkl", "npy"):
        code, _, err = _run_cli(["export-scores", cfg, "--out", str(tmp_path / f"rec.{fmt}")], capsys)
        assert code == 0, err
        run = _config(tmp_path, f"{{model: scores, path: rec.{fmt}}}", f"{fmt}.yaml")
        code, _, err = _run_cli(["run", run, "--out", str(tmp_path / f"run_{fmt}")], capsys)
        assert code == 0, err
        props = np.load(tmp_path / f"run_{fmt}" / "proposals" / "arrays.npz")
        for k in ref_props.files:
            np.testing.assert_array_equal(props[k], ref_props[k], err_msg=f"{fmt} {k}")
        quality = json.loads((tmp_path / f"run_{fmt}" / "proposer_metrics.json").read_text())["object"]
        assert {k: quality[k] for k in ref_quality} == ref_quality
        metrics = json.loads((tmp_path / f"run_{fmt}" / "metrics.json").read_text())
        rows = metrics.get("object") or metrics["metrics"]["object"]
        ref_rows = ref_metrics.get("object") or ref_metrics["metrics"]["object"]
        for method in ("base", "no_llm", "oracle_ceiling"):
            for key in ("mrr", "hits@1", "mean_rank"):
                if key in ref_rows[method]:
                    assert rows[method][key] == ref_rows[method][key], (fmt, method, key)


def test_the_filtered_rank_in_the_top_m_drops_other_true_answers():
    from lamp.pipeline.evaluate import filtered_ranks_in_top

    candidates = np.array([[7, 3, 9, 4], [1, 2, 3, 4], [5, 6, 7, 8]])
    order = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3]])   # query 1 reversed
    truth = np.array([2, 0, -1])                                    # index into the candidates; -1: not proposed
    offsets, ids = np.array([0, 2, 2, 3]), np.array([7, 4, 5])      # query 0: 7 and 4 are other true answers
    # query 0: truth 9 third, 7 before it is another true answer: rank 2; query 1: truth 1 last of four: 4
    assert filtered_ranks_in_top(candidates, order, truth, offsets, ids).tolist() == [2.0, 4.0, 0.0]


def test_every_row_reports_its_metrics_over_all_test_queries(tmp_path, store, capsys):
    """Tie-free scores: the base row over all test queries is the proposer's own quality (the top M in its
    order, its ranks beyond); a row that reranks only moves ranks within the top M."""
    cfg = _config(tmp_path, "{model: recurrency}", "rec.yaml")
    code, _, err = _run_cli(["export-scores", cfg, "--out", str(tmp_path / "rec.npz")], capsys)
    assert code == 0, err
    with np.load(tmp_path / "rec.npz") as z:
        q, scores = z["queries"], z["scores"]
    noisy = scores + np.random.default_rng(1).random(scores.shape) * 1e-3 * (np.abs(scores).max() + 1)
    save_scores(tmp_path / "noisy.npz", q, "object", scores=noisy)
    run = _config(tmp_path, "{model: scores, path: noisy.npz}", "noisy.yaml")
    code, out, err = _run_cli(["run", run, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    quality = json.loads((tmp_path / "run" / "proposer_metrics.json").read_text())["object"]
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["object"]
    base = rows["base"]["all_queries"]
    assert base["n"] == quality["n"] == 30
    for key in ("mrr", "hits@1", "hits@3", "hits@10"):
        assert base[key] == pytest.approx(quality[key], abs=1e-12), key
    for method, row in rows.items():
        every = row["all_queries"]
        covered = row["coverage"] * every["n"]
        # reranking the top M changes only the covered queries' ranks, each at most M: Hits@M is the coverage
        assert every["hits@10"] >= row["coverage"] - 1e-12 and covered <= every["n"]
    assert "over all 30 test queries" in out


def _tiny_tkg(folder, seed=0, entities=30, relations=4):
    """A small temporal knowledge graph in the ICEWS layout (recurring triples, so recurrency has signal)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    (folder / "entity2id.txt").write_text("".join(f"e{i}\t{i}\n" for i in range(entities)))
    (folder / "relation2id.txt").write_text("".join(f"r{i}\t{i}\n" for i in range(relations)))
    base = rng.integers(0, [entities, relations, entities], size=(40, 3))
    for name, (lo, hi, n) in {"train": (0, 40, 400), "valid": (40, 45, 60), "test": (45, 50, 60)}.items():
        rows = base[rng.integers(0, len(base), n)]
        times = np.sort(rng.integers(lo, hi, n)) * 24
        (folder / f"{name}.txt").write_text("".join(f"{s}\t{r}\t{o}\t{t}\n" for (s, r, o), t in zip(rows, times)))
    return folder


def test_a_study_lists_another_models_scores_beside_lamps_proposers(tmp_path):
    """study.literature: [recurrency, {name, model: scores, path}]: the file of recurrency's own scores over the
    whole test split, both directions, gives recurrency's literature row."""
    from lamp import config as lamp_config
    from lamp.study import run_study, study_table
    from lamp.tpp import RecurrencyBaseline

    _tiny_tkg(tmp_path / "tiny")
    (tmp_path / "s.yaml").write_text(textwrap.dedent("""
        data:
          tiny: {data_format: tkg, data_dir: tiny}
        S:
          base_config: {dataset_id: tiny}
          lamp: {task: object, num_candidates: 5, proposer: {model: recurrency}}
          study:
            literature: [recurrency, {name: rec_file, model: scores, path: rec.npz}]
    """))
    cfg = lamp_config.load(tmp_path / "s.yaml")
    store = cfg.load_data()
    rec = RecurrencyBaseline().fit(store)
    quads = store.test.quadruples()
    both = np.concatenate([quads, np.stack([quads[:, 2], quads[:, 1] + store.num_relations, quads[:, 0],
                                            quads[:, 3]], axis=1)])
    both = np.unique(both, axis=0)
    save_scores(tmp_path / "rec.npz", both, "object", scores=_full(rec, both, store.num_entities))
    metrics = run_study(cfg, out=str(tmp_path / "out"))
    measured = metrics["literature"]["measured"]
    assert measured["rec_file"]["proposer"] == "scores" and "proposer" not in measured["recurrency"]
    for key in ("mrr", "hits@1", "hits@3", "hits@10", "n"):
        assert measured["rec_file"][key] == pytest.approx(measured["recurrency"][key], abs=1e-12), key
    table = study_table(json.loads((tmp_path / "out" / "metrics.json").read_text()))
    assert "rec_file (scores) (this run)" in table and "lamp recurrency (this run)" in table
    from lamp.study import parse_study

    for bad in ([{"name": "x", "model": "nonesuch"}], [{"model": "scores", "path": "a.npz"}], ["recurrency", {
            "name": "recurrency", "model": "scores", "path": "a.npz"}]):
        with pytest.raises(ConfigError, match="study.literature"):
            parse_study({"literature": bad})

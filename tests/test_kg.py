"""The knowledge-graph Hawkes proposer: C kernels against the Python oracle, gradients, no leakage,
real-data quality against the recurrency baseline, bad input."""
import numpy as np
import pytest

from lamp import _core
from lamp._reference import kg as ref
from lamp.data import EventSequences, EventStore
from lamp.tpp import KGHawkes, RecurrencyBaseline
from lamp.tpp.kg_hawkes import time_aware_filter

E, R = 7, 3
RATES = np.array([0.7, 0.05])


def _random_stream(seed, n=60):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, E, n)
    r = rng.integers(0, R, n)
    o = rng.integers(0, E, n)
    t = np.sort(rng.integers(0, 15, n)).astype(float)  # many ties in time
    return s, r, o, t


def _kernel_args(stream, queries, targets):
    s, r, o, t = stream
    q = np.asarray(queries)
    return dict(stream_subjects=s, stream_relations=r, stream_objects=o, stream_times=t,
                query_subjects=q[:, 0].astype(np.int64), query_relations=q[:, 1].astype(np.int64),
                query_objects=q[:, 2].astype(np.int64), query_times=q[:, 3].astype(float),
                query_targets=targets, num_entities=E, num_relations=R, rates=RATES)


def _queries(seed, task, n=12):
    rng = np.random.default_rng(seed + 100)
    t = np.sort(rng.uniform(0, 17, n))
    s = rng.integers(0, E, n)
    o = rng.integers(0, E, n)
    r = rng.integers(0, 2 * R if task == "object" else R, n)
    q = np.stack([s, r, o, t], axis=1)
    targets = (o if task == "object" else r).astype(np.int64)
    return q, targets


@pytest.mark.parametrize("task", ["object", "relation"])
@pytest.mark.parametrize("seed", range(4))
def test_features_match_reference(task, seed):
    stream = _random_stream(seed)
    q, targets = _queries(seed, task)
    phi_true, phi_total = _core.kg_features(**_kernel_args(stream, q, targets), task=task)
    for i in range(len(q)):
        cands = ref.candidate_features(stream, q[i], E, R, RATES, task)
        np.testing.assert_allclose(phi_true[i], cands[targets[i]], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(phi_total[i], cands.sum(axis=0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("task", ["object", "relation"])
def test_scores_topm_and_filtered_ranks_match_reference(task):
    stream = _random_stream(7)
    q, targets = _queries(7, task)
    rng = np.random.default_rng(3)
    f = 2 + 5 * len(RATES)
    w = rng.uniform(0.1, 1.0, f)
    n_cand = E if task == "object" else R
    m = min(4, n_cand)
    foff, fids = np.array([0] + [1] * len(q)), np.array([0])  # query 0 filters candidate 0
    top, scores, ranks = _core.kg_score(**_kernel_args(stream, q, targets), task=task, weights=w, m=m,
                                        filter_offsets=foff, filter_ids=fids)
    for i in range(len(q)):
        expected = ref.candidate_features(stream, q[i], E, R, RATES, task) @ w
        order = sorted(range(n_cand), key=lambda c: (-expected[c], c))[:m]
        assert list(top[i]) == order
        np.testing.assert_allclose(scores[i], expected[order], rtol=1e-10)
        filtered = {0} if i == 0 and targets[i] != 0 else set()
        assert ranks[i] == pytest.approx(ref.filtered_rank(expected, targets[i], filtered))


@pytest.mark.parametrize("task", ["object", "relation"])
def test_feature_names_name_every_column(task):
    """lamp.tpp.kg_hawkes.feature_names follows the C feature layout: 2 + KG_FEATURES_PER_SCALE per scale."""
    from lamp.tpp.kg_hawkes import feature_names

    stream = _random_stream(0)
    q, targets = _queries(0, task)
    phi_true, _ = _core.kg_features(**_kernel_args(stream, q, targets), task=task)
    names = feature_names(task, [1.0, 30.0])
    assert len(RATES) == 2
    assert phi_true.shape[1] == len(names) == 2 + _core.KG_FEATURES_PER_SCALE * len(RATES)
    assert _core.KG_MAX_SCALES >= 1
    with pytest.raises(ValueError, match=f"1 to {_core.KG_MAX_SCALES} decay rates"):
        _core.kg_features(**dict(_kernel_args(stream, q, targets), rates=np.ones(_core.KG_MAX_SCALES + 1)), task=task)


def test_nll_gradient_against_finite_differences():
    stream = _random_stream(11)
    q, targets = _queries(11, "object")
    a, b = _core.kg_features(**_kernel_args(stream, q, targets), task="object")
    rng = np.random.default_rng(0)
    w = rng.uniform(0.2, 1.0, a.shape[1])
    value, grad = _core.kg_nll(a, b, w)
    assert value == pytest.approx(ref.nll(a, b, w), rel=1e-12)
    h = 1e-6
    for j in range(len(w)):
        wp, wm = w.copy(), w.copy()
        wp[j] += h
        wm[j] -= h
        numeric = (ref.nll(a, b, wp) - ref.nll(a, b, wm)) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_queries_never_see_their_own_time_or_later():
    s, r, o, t = _random_stream(5)
    q = np.array([[1, 0, 2, 8.0]])
    w = np.ones(2 + 5 * len(RATES))
    base = _core.kg_score(**_kernel_args((s, r, o, t), q, None), task="object", weights=w, m=E)
    # add events at the query time and after it, strongly exciting candidate 2: nothing may change
    s2 = np.concatenate([s, [1, 1, 1]])
    r2 = np.concatenate([r, [0, 0, 0]])
    o2 = np.concatenate([o, [2, 2, 2]])
    t2 = np.concatenate([t, [8.0, 9.0, 30.0]])
    order = np.argsort(t2, kind="stable")
    later = _core.kg_score(**_kernel_args((s2[order], r2[order], o2[order], t2[order]), q, None), task="object",
                           weights=w, m=E)
    np.testing.assert_array_equal(base[0], later[0])
    np.testing.assert_array_equal(base[1], later[1])
    # while the same events just before the query do change the scores
    t3 = np.concatenate([t, [7.5, 7.5, 7.5]])
    order = np.argsort(t3, kind="stable")
    earlier = _core.kg_score(**_kernel_args((s2[order], r2[order], o2[order], t3[order]), q, None),
                             task="object", weights=w, m=E)
    assert earlier[0][0, 0] == 2 and not np.array_equal(base[1], earlier[1])


def test_time_aware_filter():
    q = np.array([[0, 1, 2, 5], [0, 1, 3, 5], [0, 1, 2, 6], [4, 1, 2, 5]])
    offsets, ids = time_aware_filter(q, "object")
    assert list(offsets) == [0, 1, 2, 2, 2] and list(ids) == [3, 2]


def _toy_store():
    rng = np.random.default_rng(0)
    # a recurring pattern: subject i tends to act on object (i + 1) % E
    n = 600
    s = rng.integers(0, E, n)
    o = np.where(rng.random(n) < 0.7, (s + 1) % E, rng.integers(0, E, n))
    r = rng.integers(0, R, n)
    t = np.sort(rng.integers(0, 100, n)).astype(float)

    def split(lo, hi):
        idx = (t >= lo) & (t < hi)
        return EventSequences(t[idx], r[idx], None, R, subjects=s[idx], objects=o[idx])

    return EventStore(name="toy", kind="tkg", train=split(0, 70), valid=split(70, 85), test=split(85, 100),
                      num_types=R, entity_names=[f"e{i}" for i in range(E)],
                      relation_names=[f"r{i}" for i in range(R)])


def test_fit_learns_recurring_pattern_and_save_load(tmp_path):
    store = _toy_store()
    model = KGHawkes(half_life_grid=[(1, 10)]).fit(store)
    metrics = model.evaluate(store, m=3)
    assert metrics["mrr"] > 0.6  # random would be about 0.37 over 7 candidates
    path = tmp_path / "kg.npz"
    model.save(path)
    again = KGHawkes.load(path, store)
    q = store.test.quadruples()[:5]
    np.testing.assert_array_equal(model.propose(q, m=3)[0], again.propose(q, m=3)[0])
    with pytest.raises(ValueError, match="entities"):
        bigger = _toy_store()
        bigger.entity_names = bigger.entity_names + ["extra"]
        KGHawkes.load(path, bigger)


@pytest.mark.slow
def test_proposer_beats_recurrency_baseline_on_icews14(icews14):
    model = KGHawkes(half_lives=(1, 30, 365)).fit(icews14)
    ours = model.evaluate(icews14)
    baseline = RecurrencyBaseline().fit(icews14).evaluate(icews14)
    assert ours["n"] == 2 * 7371
    assert ours["mrr"] > baseline["mrr"] + 0.02
    assert ours["mrr"] > 0.38 and ours["coverage@20"] > 0.6
    rel = KGHawkes(half_lives=(1, 30, 365), task="relation").fit(icews14)
    rel_metrics = rel.evaluate(icews14, task="relation", m=5)
    assert rel_metrics["mrr"] > 0.3


def test_bad_input():
    store = _toy_store()
    model = KGHawkes(half_life_grid=[(1, 10)]).fit(store)
    q = store.test.quadruples()[:3]
    with pytest.raises(ValueError, match="m must be in 1..7"):
        model.propose(q, m=8)
    with pytest.raises(ValueError, match="m must be in"):
        model.propose(q, m=0)
    with pytest.raises(ValueError, match="task must be one of"):
        model.propose(q, task="subject")
    with pytest.raises(ValueError, match="subject ids"):
        model.propose(np.array([[99, 0, 0, 90]]), m=2)
    with pytest.raises(ValueError, match="shape"):
        model.propose(q[:, :3], m=2)
    with pytest.raises(ValueError, match="not finite"):
        model.propose(np.array([[0, 0, 0, np.nan]]), m=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        KGHawkes().propose(q)
    with pytest.raises(ValueError, match="half_lives"):
        KGHawkes(half_lives=[-1])
    s, r, o, t = _random_stream(1)
    args = _kernel_args((s, r, o, t[::-1].copy()), np.array([[0, 0, 0, 5.0]]), None)
    with pytest.raises(ValueError, match="not sorted"):
        _core.kg_score(**args, task="object", weights=np.ones(12), m=2)
    args = _kernel_args((s, r, o, t), np.array([[0, 0, 0, 5.0]]), None)
    with pytest.raises(ValueError, match="'weights' has length 3"):
        _core.kg_score(**args, task="object", weights=np.ones(3), m=2)
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        _core.kg_score(**args, task="object", weights=-np.ones(12), m=2)
    with pytest.raises(TypeError, match="stream_relations"):
        _core.kg_score(**dict(args, stream_relations=r.astype(float)), task="object", weights=np.ones(12), m=2)
    with pytest.raises(ValueError, match="rates"):
        _core.kg_score(**dict(args, rates=np.array([])), task="object", weights=np.ones(12), m=2)


def _pair_scores(stream, query, w):
    """Every (r, o) pair's object-task intensity from the Python oracle: an array (R, E)."""
    s, _, _, t = query
    return np.array([ref.candidate_features(stream, (s, r, 0, t), E, R, RATES, "object") @ w for r in range(R)])


@pytest.mark.parametrize("seed", range(3))
def test_pair_scores_topm_and_ranks_match_reference(seed):
    stream = _random_stream(seed)
    q, _ = _queries(seed, "object", n=8)
    q[:, 1] = np.random.default_rng(seed).integers(0, R, len(q))  # true relations (original direction)
    targets = q[:, 1].astype(np.int64)
    w = np.random.default_rng(seed + 7).uniform(0.1, 1.0, 2 + 5 * len(RATES))
    w[0] = 0.0 if seed == 0 else w[0]  # seed 0: many exact ties among never-seen pairs
    m = 6
    foff = np.array([0, 1] + [1] * (len(q) - 1))
    fids = np.array([5])  # query 0 filters pair id 5
    args = _kernel_args(stream, q, targets)
    top, scores, ranks = _core.kg_score_pairs(**{k: v for k, v in args.items()}, weights=w, m=m,
                                              filter_offsets=foff, filter_ids=fids)
    for i in range(len(q)):
        all_scores = _pair_scores(stream, q[i], w).ravel()  # id = r * E + o
        order = sorted(range(R * E), key=lambda c: (-all_scores[c], c))[:m]
        np.testing.assert_allclose(scores[i], all_scores[order], rtol=1e-10)
        assert list(top[i]) == order
        tid = targets[i] * E + int(q[i, 2])
        filtered = {5} if i == 0 and tid != 5 else set()
        assert ranks[i] == pytest.approx(ref.filtered_rank(all_scores, tid, filtered))


def test_pair_task_through_the_proposer():
    store = _toy_store()
    model = KGHawkes(half_life_grid=[(1, 10)], task="pair").fit(store)
    assert model.task == "object"  # the pair task ranks pairs with the object intensity
    q = store.test.quadruples()
    ids, scores = model.propose(q, task="pair", m=4)
    assert ids.shape == (len(q), 4) and np.all(np.diff(scores, axis=1) <= 0)
    assert np.all((ids >= 0) & (ids < E * R))
    metrics = model.evaluate(store, task="pair", m=4)
    assert metrics["n"] == len(q) and 0 < metrics["mrr"] <= 1
    with pytest.raises(ValueError, match="m must be in 1..21"):
        model.propose(q, task="pair", m=22)
    with pytest.raises(ValueError, match="pair task relation ids"):
        model.propose(np.array([[0, R, 0, 90]]), task="pair", m=2)

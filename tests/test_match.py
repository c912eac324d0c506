"""BM25 retrieval and evidence assembly: against the Python oracle, cutoffs on real data, bad input."""
import numpy as np
import pytest

from lamp._reference import match as ref
from lamp.retrieval import ENGLISH_STOP_WORDS, BM25Index, assemble_evidence

WORDS = ["attack", "talks", "china", "iran", "sanction", "visit", "police", "protest", "aid", "citizen", "army",
         "deal", "the", "of", "éclair", "naïve"]


def _corpus(seed, n=80):
    rng = np.random.default_rng(seed)
    docs = [" ".join(rng.choice(WORDS, size=rng.integers(1, 9))) + ("!" if rng.random() < 0.3 else "")
            for _ in range(n)]
    queries = [" ".join(rng.choice(WORDS, size=rng.integers(1, 5))) for _ in range(25)]
    return docs, queries, rng


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("stop", [(), ENGLISH_STOP_WORDS])
def test_matches_reference_with_cutoffs(seed, stop):
    docs, queries, rng = _corpus(seed)
    index = BM25Index(docs, stop_words=stop)
    before = rng.integers(0, len(docs) + 1, size=len(queries))
    k = 7
    ids, scores = index.search(queries, k, before=before)
    for i, q in enumerate(queries):
        expected = ref.bm25_scores(docs, q, stop=stop)
        exp_ids, exp_scores = ref.top_k(expected, k, before[i])
        np.testing.assert_array_equal(ids[i], exp_ids)
        np.testing.assert_allclose(scores[i], exp_scores, rtol=1e-9)
        assert np.all(ids[i][ids[i] >= 0] < before[i])


def test_most_similar_first_and_recent_ties():
    docs = ["china iran talks", "weather report", "china iran talks", "china"]
    ids, scores = BM25Index(docs).search(["china iran talks"], 4)
    # the exact matches first (the authors' code kept the least similar), the more recent of equals first
    assert list(ids[0][:2]) == [2, 0] and scores[0][0] == scores[0][1] > scores[0][2]
    assert ids[0][2] == 3 and ids[0][3] == -1 and scores[0][3] == -np.inf


def test_scope_restricts_to_shared_entities():
    docs = ["protest police", "protest police", "protest police"]
    ents = np.array([[0, 1], [2, 3], [4, 1]])
    index = BM25Index(docs, entities=ents)
    ids, _ = index.search(["protest"], 3, scope=np.array([[1, -1]]))
    assert list(ids[0]) == [2, 0, -1]
    with pytest.raises(ValueError, match="entities"):
        BM25Index(docs).search(["protest"], 1, scope=np.array([[1, -1]]))


def test_cutoff_never_crossed_on_icews14(icews14):
    from lamp.text import display_name, event_text

    quads = np.concatenate([s.quadruples() for s in (icews14.train, icews14.valid, icews14.test)])
    names, rels = icews14.entity_names, icews14.relation_names
    texts = [event_text(display_name(names[s]), display_name(rels[r]), display_name(names[o])) for s, r, o, _ in quads]
    index = BM25Index(texts)
    rng = np.random.default_rng(0)
    picks = rng.choice(np.arange(len(icews14.train), len(quads)), size=300, replace=False)
    times = quads[:, 3]
    before = np.searchsorted(times, times[picks], side="left")  # events at the same timestamp are not before
    ids, scores = index.search([texts[p] for p in picks], 10, before=before)
    assert np.all((ids < before[:, None]) | (ids == -1))
    assert np.all(times[ids[ids >= 0]] < np.repeat(times[picks], (ids >= 0).sum(axis=1)))
    # the query's own event lies at or after its cutoff, so it is never found
    assert not np.any(ids == picks[:, None])
    assert np.mean(ids[:, 0] >= 0) > 0.95


def test_evidence_assembly_matches_reference():
    rng = np.random.default_rng(3)
    quads = np.column_stack([rng.integers(0, 4, 50), rng.integers(0, 2, 50), rng.integers(0, 4, 50),
                             np.sort(rng.integers(0, 10, 50))])
    hits = rng.integers(-1, 50, size=(30, 8))
    hits[0] = [5, 5, 5, -1, -1, -1, -1, -1]
    out = assemble_evidence(hits, quads[:, 0], quads[:, 1], quads[:, 2], quads[:, 3].astype(float), length=4)
    for i in range(len(hits)):
        expected = ref.evidence(hits[i], quads, 4)
        got = out[i]
        assert [tuple(quads[h]) if h >= 0 else None for h in got] == \
            [tuple(quads[h]) if h >= 0 else None for h in expected]
    assert list(out[0]) == [5, -1, -1, -1]


def test_non_utf8_and_unicode():
    index = BM25Index([b"caf\xe9 \xff\xfe bad", "naïve café", "plain"])
    ids, _ = index.search([b"\xff\xfe", "naïve"], 1)
    assert ids[0, 0] == 0 and ids[1, 0] == 1
    assert list(index.tokenize("PLAIN Plain")) == list(index.tokenize("plain plain"))  # ASCII is case-folded
    assert index.tokenize("unseen")[0] == -1


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        BM25Index([])
    with pytest.raises(TypeError, match="single str"):
        BM25Index("one text")
    index = BM25Index(["a b", "b c"])
    with pytest.raises(ValueError, match="k must be in 1..2"):
        index.search(["a"], 3)
    with pytest.raises(ValueError, match="k must be in"):
        index.search(["a"], 0)
    with pytest.raises(ValueError, match="before must be in"):
        index.search(["a"], 1, before=np.array([5]))
    with pytest.raises(ValueError, match="before must have shape"):
        index.search(["a", "b"], 1, before=np.array([1]))
    with pytest.raises(TypeError, match="before must hold integers"):
        index.search(["a"], 1, before=np.array([1.5]))
    with pytest.raises(TypeError, match=r"'queries'\[0\]"):
        index.search([3], 1)
    ids, scores = index.search([""], 2)  # an empty query matches nothing
    assert list(ids[0]) == [-1, -1] and np.all(np.isinf(scores))
    with pytest.raises(ValueError, match="length"):
        assemble_evidence(np.zeros((1, 1), dtype=np.int64), [0], [0], [0], [0.0], length=0)
    with pytest.raises(ValueError, match="outside"):
        assemble_evidence(np.array([[7]]), [0], [0], [0], [0.0], length=2)


# --- dense retrieval ----------------------------------------------------------------------------

from lamp.retrieval import DenseIndex  # noqa: E402


@pytest.mark.parametrize("seed", range(3))
def test_dense_matches_numpy_with_cutoffs(seed):
    rng = np.random.default_rng(seed)
    corpus = rng.normal(size=(5000, 24)).astype(np.float32)
    corpus[10] = corpus[3]  # an exact tie
    queries = rng.normal(size=(300, 24)).astype(np.float32)
    queries[0] = corpus[3] * 2
    before = rng.integers(0, 5001, size=300)
    before[0] = 5000
    ids, scores = DenseIndex(corpus).search_vectors(queries, 8, before=before)
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    for i in range(300):
        sims = unit[:before[i]] @ qn[i]
        order = sorted(range(len(sims)), key=lambda j: (-sims[j], -j))[:8]
        got = [g for g in ids[i] if g >= 0]
        np.testing.assert_allclose(scores[i][:len(got)], sims[got], atol=1e-5)
        np.testing.assert_allclose(np.sort(scores[i][:len(order)])[::-1], sims[order], atol=1e-5)
        assert all(g < before[i] for g in got)
    assert list(ids[0][:2]) == [10, 3]  # the tie goes to the more recent row


def test_dense_bad_input():
    with pytest.raises(ValueError, match="row 1 is a zero vector"):
        DenseIndex(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN"):
        DenseIndex(np.array([[1.0, np.nan]]))
    index = DenseIndex(np.eye(3))
    with pytest.raises(ValueError, match=r"shape \(Q, 3\)"):
        index.search_vectors(np.ones((1, 2)), 1)
    with pytest.raises(ValueError, match="k must be in 1..3"):
        index.search_vectors(np.ones((1, 3)), 4)
    with pytest.raises(ValueError, match="before"):
        index.search_vectors(np.ones((1, 3)), 1, before=np.array([9]))
    ids, scores = index.search_vectors(np.ones((1, 3)), 3, before=np.array([1]))
    assert list(ids[0]) == [0, -1, -1] and np.isinf(scores[0][1])


@pytest.mark.parametrize("clustered", [True, False])
def test_dense_many_blocks_shared_cutoffs_and_no_cutoff(clustered):
    """More queries than one block (256), cutoffs shared by many queries (a knowledge graph's timestamps)."""
    rng = np.random.default_rng(7)
    corpus = rng.normal(size=(9000, 16)).astype(np.float32)
    queries = rng.normal(size=(1100, 16)).astype(np.float32)
    before = rng.choice([0, 1, 4096, 4097, 8191, 9000], size=1100) if clustered else None
    ids, scores = DenseIndex(corpus).search_vectors(queries, 5, before=before)
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    sims = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    for i in range(len(queries)):
        limit = 9000 if before is None else before[i]
        expect = np.argsort(-sims[i, :limit], kind="stable")[:5]
        got = ids[i][ids[i] >= 0]
        assert len(got) == min(5, limit)
        np.testing.assert_allclose(scores[i][:len(got)], sims[i, expect], atol=1e-5)
        assert np.all(got < limit)


def test_hit_features_follow_the_best_hit_of_each_evidence_event():
    """The retrieval features of an evidence event are those of the best-scoring hit that named it."""
    from lamp.pipeline.match import _hit_features

    hits = np.array([[5, 7, -1, 5], [2, -1, -1, -1]])
    scores = np.array([[4.0, 2.0, 0.0, 1.0], [3.0, 0.0, 0.0, 0.0]])
    ranks = np.array([[0, 1, 0, 0], [0, 0, 0, 0]], dtype=float)
    causes = np.array([[0, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    evidence = np.array([[7, 5, -1], [2, 9, -1]])  # 9: named by no hit (e.g. a merged duplicate)
    aux = _hit_features(hits, scores, ranks, causes, evidence, world_size=10)
    np.testing.assert_allclose(aux[0, 0], [2.0 / 4.0, 1 / 2, 1.0])  # event 7: score 2 of best 4, rank 1, cause 0
    np.testing.assert_allclose(aux[0, 1], [1.0, 1.0, 1.0])  # event 5: its best hit (score 4, rank 0, cause 0)
    np.testing.assert_allclose(aux[1, 0], [1.0, 1.0, 1.0])
    assert not aux[1, 1].any() and not aux[:, 2].any()

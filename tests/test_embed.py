"""The local MiniLM embedder, the endpoint embedder, and the on-disk embedding cache."""
import json
import os
import zlib

import numpy as np
import pytest

from lamp.errors import EmbedderError
from lamp.retrieval import (EmbeddingCache, EndpointEmbedder, MiniLMEmbedder, corpus_embeddings, embed_texts,
                            make_embedder)
from lamp.llm.testserver import TestServer

HERE = os.path.dirname(os.path.abspath(__file__))


def _minilm():
    try:
        return MiniLMEmbedder()
    except EmbedderError as exc:
        pytest.skip(f"local embedder unavailable: {exc}")


@pytest.fixture(scope="module")
def minilm():
    return _minilm()


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm):
    """Embeddings recorded with sentence-transformers 6.2.0 (PyTorch) from the same weights
    (tests/data/make_minilm_reference.py): an independent implementation of the same model."""
    with open(os.path.join(HERE, "data", "minilm_reference_texts.json"), encoding="utf-8") as f:
        texts = json.load(f)
    ref = np.load(os.path.join(HERE, "data", "minilm_reference.npy"))
    got = minilm.encode(texts)
    assert got.shape == ref.shape == (len(texts), 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_minilm_live_parity_if_sentence_transformers_installed(minilm):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(minilm.model_dir, device="cpu")
    texts = ["Police (Afghanistan) | Use conventional military force | Taliban", "Make statement", "a b c d"]
    np.testing.assert_allclose(minilm.encode(texts), model.encode(texts, normalize_embeddings=True), atol=2e-5)


def test_minilm_batching_and_padding_do_not_change_embeddings(minilm):
    texts = ["short", "a somewhat longer sentence about a government making a statement", "mid length text here"]
    together = minilm.encode(texts)
    alone = np.stack([minilm.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_minilm_semantics(minilm):
    e = minilm.encode(["A man is eating food.", "A man is eating a piece of bread.",
                       "The stock market fell sharply today."])
    assert e[0] @ e[1] > 0.6 > e[0] @ e[2]


def test_minilm_truncates_long_text(minilm):
    ids = minilm.token_ids(["word " * 1000])[0]
    assert len(ids) == minilm.max_length
    assert np.all(np.isfinite(minilm.encode(["word " * 1000])))


def test_minilm_bad_arguments(tmp_path):
    with pytest.raises(EmbedderError, match="config.json"):
        MiniLMEmbedder(model_dir=str(tmp_path))
    with pytest.raises(ValueError, match="max_length"):
        MiniLMEmbedder(max_length=0)
    with pytest.raises(ValueError, match="batch_size"):
        MiniLMEmbedder(batch_size=0)
    m = _minilm()
    with pytest.raises(TypeError, match="single string"):
        m.encode("not a list")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        m.encode(["ok", 3])
    assert m.encode([]).shape == (0, 384)


class CountingEmbedder:
    """Deterministic fake embedder that records every text it is asked to embed."""

    identity = "counting:v1"
    dimension = 4

    def __init__(self, fail_after=None):
        self.seen, self.fail_after = [], fail_after

    def encode(self, texts, progress=False):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise KeyboardInterrupt
        self.seen.extend(texts)
        out = np.array([[len(t) + 1, t.count("a") + 1, 1.0, i % 3] for i, t in enumerate(texts)], dtype=np.float32)
        out[:, 3] = [sum(map(ord, t)) % 7 for t in texts]
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_embed_texts_once_per_distinct_text_and_cached(tmp_path):
    texts = ["a", "bb", "a", "ccc", "bb", "a"]
    fake = CountingEmbedder()
    cache = EmbeddingCache(str(tmp_path / "e.sqlite"))
    first = embed_texts(texts, fake, cache)
    assert sorted(fake.seen) == ["a", "bb", "ccc"]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first, fake.encode(texts))
    again = CountingEmbedder()
    second = embed_texts(texts + ["dddd"], again, cache)
    assert again.seen == ["dddd"]
    np.testing.assert_array_equal(second[:6], first)
    assert len(cache) == 4


def test_embed_texts_resumes_after_interruption(tmp_path):
    texts = [f"text {i}" for i in range(10)]
    cache = EmbeddingCache(str(tmp_path / "e.sqlite"))
    with pytest.raises(KeyboardInterrupt):
        embed_texts(texts, CountingEmbedder(fail_after=4), cache, chunk=4)
    assert len(cache) == 4
    resumed = CountingEmbedder()
    out = embed_texts(texts, resumed, cache, chunk=4)
    assert len(resumed.seen) == 6
    np.testing.assert_allclose(out, CountingEmbedder().encode(texts), atol=1e-7)


def test_corpus_embeddings_keyed_by_fingerprint(tmp_path):
    texts = ["x", "y", "x"]
    fake = CountingEmbedder()
    m1 = corpus_embeddings(texts, fake, str(tmp_path), progress=False)
    files = [f for f in os.listdir(tmp_path) if f.startswith("corpus-")]
    assert len(files) == 1
    again = CountingEmbedder()
    np.testing.assert_array_equal(corpus_embeddings(texts, again, str(tmp_path), progress=False), m1)
    assert again.seen == []
    corpus_embeddings(texts + ["z"], again, str(tmp_path), progress=False)   # another corpus: new file
    assert again.seen == ["z"]
    assert len([f for f in os.listdir(tmp_path) if f.startswith("corpus-")]) == 2


def test_endpoint_embedder_through_lamp_transport(tmp_path, monkeypatch):
    monkeypatch.setenv("LAMP_TEST_EMBED_KEY", "sk-secret-value")
    with TestServer(faults={"status_500": 1, "retry_after": 0}) as server:
        emb = EndpointEmbedder(server.base_url, "embed-model", api_key_env="LAMP_TEST_EMBED_KEY", max_retries=3)
        out = emb.encode(["alpha", "beta", "alpha"])
        assert out.shape == (3, 8)
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(out[0], out[2])
        assert "sk-secret-value" not in emb.identity
        cache = EmbeddingCache(str(tmp_path / "e.sqlite"))
        embed_texts(["alpha", "gamma"], emb, cache)
        n = server.total
        embed_texts(["alpha", "gamma"], emb, cache)
        assert server.total == n       # second time from the cache


def test_make_embedder_specs():
    with pytest.raises(ValueError, match="backend"):
        make_embedder({"backend": "word2vec"})
    with pytest.raises(ValueError, match="base_url"):
        make_embedder({"backend": "openai"})
    with pytest.raises(ValueError, match="unknown keys"):
        make_embedder({"backend": "minilm", "colour": "red"})
    with pytest.raises(ValueError, match="matching.embedder"):
        make_embedder(42)


class HashEmbedder:
    """A fast bag-of-hashed-words embedder standing in for MiniLM in the pipeline test.  The words are
    hashed with crc32, not hash(): Python's string hash changes from process to process, which made
    the ranking in test_dense_index_from_texts depend on the run."""

    identity = "hash:v1"
    dimension = 64

    def __init__(self):
        self.calls = 0

    def encode(self, texts, progress=False):
        self.calls += len(texts)
        out = np.full((len(texts), self.dimension), 1e-3, dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace("|", " ").split():
                out[i, zlib.crc32(w.encode()) % self.dimension] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.slow
def test_pipeline_dense_matching(tmp_path, monkeypatch):
    import lamp.pipeline.match
    from lamp.pipeline import Pipeline

    made = []
    monkeypatch.setattr(lamp.pipeline.match, "make_embedder", lambda spec: made.append(HashEmbedder()) or made[-1])
    with TestServer() as server:
        config = tmp_path / "c.yaml"
        config.write_text(f"""
data:
  icews14: {{data_format: tkg, data_dir: "lamp://icews14"}}
E:
  base_config: {{dataset_id: icews14}}
  lamp:
    task: object
    num_candidates: 5
    query_limit: 10
    train_query_limit: 20
    valid_query_limit: 10
    proposer: {{model: kg_hawkes, params: {{half_lives: [1, 30]}}}}
    abduction: {{backend: openai, base_url: "{server.base_url}", model: test, num_shots: 2}}
    matching: {{method: dense, embedding_cache: "{tmp_path / 'emb'}"}}
    ranker: {{epochs: 2, width: 16}}
    evaluation: {{bootstrap: 100, ablations: [no_llm]}}
""")
        metrics = Pipeline.from_yaml(config, out=str(tmp_path / "run")).run()
        assert {"base", "lamp", "no_llm"} <= set(metrics["object"])
        first = made[-1].calls
        assert first > 50_000                      # the corpus (distinct texts) and the query texts
        log = (tmp_path / "run" / "run.log").read_text()
        assert "dense retrieval with hash:v1" in log
        assert any(f.startswith("corpus-") for f in os.listdir(tmp_path / "emb"))
        again = Pipeline.from_yaml(config, out=str(tmp_path / "run")).run()
        assert made[-1].calls == 0                 # corpus and causes come from the on-disk cache
        assert again["object"]["lamp"]["mr"] == pytest.approx(metrics["object"]["lamp"]["mr"])


def test_typed_tasks_refuse_dense_matching(tmp_path):
    from lamp.config import ConfigError
    from lamp.pipeline import Pipeline

    import lamp

    d = os.path.join(os.path.dirname(lamp.__file__), "datasets", "data", "amazon_easytpp")
    config = tmp_path / "c.yaml"
    config.write_text(f"""
data:
  amazon: {{data_format: json, train_dir: "{d}/train.json", valid_dir: "{d}/dev.json", test_dir: "{d}/test.json"}}
E:
  base_config: {{dataset_id: amazon}}
  lamp:
    task: next_type
    query_limit: 4
    abduction: {{backend: none}}
    matching: {{method: dense}}
""")
    with pytest.raises(ConfigError, match="typed tasks retrieve"):
        Pipeline.from_yaml(config, out=str(tmp_path / "run")).run()


def test_dense_index_from_texts_searches_texts_like_bm25(tmp_path):
    """One search signature for both indexes: search(query texts, k, before=None, scope=None)."""
    import inspect

    from lamp.retrieval import BM25Index, DenseIndex

    assert list(inspect.signature(DenseIndex.search).parameters) == list(inspect.signature(BM25Index.search).parameters)
    texts = ["army attacks rebels", "president visits china", "police arrest protesters", "army shells town"]
    index = DenseIndex.from_texts(texts, HashEmbedder(), cache_dir=str(tmp_path), progress=False)
    ids, scores = index.search(["army attacks"], 2, before=np.array([4]))
    assert ids[0, 0] == 0 and scores[0, 0] > scores[0, 1]
    ids, _ = index.search(["army attacks"], 2, before=np.array([1]))
    assert list(ids[0]) == [0, -1]
    bm25_ids, _ = BM25Index(texts).search(["army attacks"], 2, before=np.array([1]))
    assert list(bm25_ids[0]) == [0, -1]
    with pytest.raises(ValueError, match="needs an embedder"):
        DenseIndex(np.eye(3)).search(["x"], 1)
    with pytest.raises(ValueError, match="scope .* needs BM25"):
        index.search(["army"], 1, scope=np.array([[0, 1]]))
    np.testing.assert_array_equal(index.search_vectors(HashEmbedder().encode(["army attacks"]), 2,
                                                       before=np.array([4]))[0], index.search(["army attacks"], 2,
                                                                                              before=np.array([4]))[0])


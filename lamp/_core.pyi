"""Type stubs of lamp._core, the compiled C core: one section per kernel, in the order of csrc/ (each
section names the kernel's folder and its binding in csrc/py/).  tests/test_core_stubs.py checks that
every public name of the module has a stub here and every stub a name in the module."""
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

# --- common/vmath.c (binding py/vmath.c): the vector width ---------------------------------------------------
def simd_width() -> int: ...

# --- data/events.c (py/events.c): checks of the event store's columns -----------------------------------------
def check_sequences(
    times: npt.ArrayLike, marks: npt.ArrayLike, offsets: npt.ArrayLike, num_types: int
) -> None: ...

# --- hawkes/hawkes.c, hawkes_one*.c (py/hawkes.c): multivariate exponential Hawkes process -----------------------
def hawkes_intensity(
    times: npt.ArrayLike, marks: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike,
    query_times: npt.ArrayLike,
) -> np.ndarray: ...
def hawkes_loglik(
    times: npt.ArrayLike, marks: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: float | npt.ArrayLike,
    end_time: float, want_grad: bool,
) -> float | tuple[float, np.ndarray, np.ndarray, np.ndarray]: ...
def hawkes_loglik_batch(
    times: npt.ArrayLike, marks: npt.ArrayLike, offsets: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike,
    beta: npt.ArrayLike, end_times: npt.ArrayLike, want_grad: bool,
) -> float | tuple[float, np.ndarray, np.ndarray, np.ndarray]: ...
def hawkes_sample_next(
    times: npt.ArrayLike, marks: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike,
    t_start: float, n: int, seed: int,
) -> tuple[np.ndarray, np.ndarray]: ...
def hawkes_simulate(
    mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike, end_time: float, max_events: int, seed: int,
) -> tuple[np.ndarray, np.ndarray]: ...
def _hawkes_stream_floor(times: npt.ArrayLike, marks: npt.ArrayLike) -> float: ...

# --- hawkes/quadrature.c (py/quadrature.c): integrals over inter-event intervals ------------------------------
QUADRATURE_GAUSS_LEGENDRE: int
QUADRATURE_EASYTPP_MEAN: int
QUADRATURE_EASYTPP_TRAPEZOID: int
def quadrature_nodes(scheme: int, order: int) -> tuple[np.ndarray, np.ndarray]: ...
def integrate_intervals(
    starts: npt.ArrayLike, ends: npt.ArrayLike, values: npt.ArrayLike, weights: npt.ArrayLike,
) -> np.ndarray: ...

# --- hawkes/kg_hawkes.c (py/kg_hawkes.c): the knowledge-graph Hawkes proposer ----------------------------------
KG_MAX_SCALES: int
KG_FEATURES_PER_SCALE: int
def kg_features(
    stream_subjects: npt.ArrayLike, stream_relations: npt.ArrayLike, stream_objects: npt.ArrayLike,
    stream_times: npt.ArrayLike, query_subjects: npt.ArrayLike, query_relations: npt.ArrayLike,
    query_objects: npt.ArrayLike, query_times: npt.ArrayLike, query_targets: npt.ArrayLike,
    num_entities: int, num_relations: int, rates: npt.ArrayLike, task: str,
) -> tuple[np.ndarray, np.ndarray]: ...
def kg_score(
    stream_subjects: npt.ArrayLike, stream_relations: npt.ArrayLike, stream_objects: npt.ArrayLike,
    stream_times: npt.ArrayLike, query_subjects: npt.ArrayLike, query_relations: npt.ArrayLike,
    query_objects: npt.ArrayLike, query_times: npt.ArrayLike, query_targets: npt.ArrayLike | None,
    num_entities: int, num_relations: int, rates: npt.ArrayLike, task: str, weights: npt.ArrayLike, m: int,
    filter_offsets: npt.ArrayLike | None = ..., filter_ids: npt.ArrayLike | None = ...,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...
def kg_score_pairs(
    stream_subjects: npt.ArrayLike, stream_relations: npt.ArrayLike, stream_objects: npt.ArrayLike,
    stream_times: npt.ArrayLike, query_subjects: npt.ArrayLike, query_relations: npt.ArrayLike,
    query_objects: npt.ArrayLike, query_times: npt.ArrayLike, query_targets: npt.ArrayLike | None,
    num_entities: int, num_relations: int, rates: npt.ArrayLike, weights: npt.ArrayLike, m: int,
    filter_offsets: npt.ArrayLike | None = ..., filter_ids: npt.ArrayLike | None = ...,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...
def kg_nll(phi_true: npt.ArrayLike, phi_total: npt.ArrayLike, weights: npt.ArrayLike) -> tuple[float, np.ndarray]: ...

# --- retrieval/bm25.c (py/bm25.c): BM25 retrieval ------------------------------------------------------------
def bm25_build(
    text: bytes, text_offsets: npt.ArrayLike, stop: bytes, stop_offsets: npt.ArrayLike,
    entities: npt.ArrayLike | None, k1: float, b: float,
) -> object: ...
def bm25_search(
    index: object, text: bytes, text_offsets: npt.ArrayLike, before: npt.ArrayLike | None,
    scope: npt.ArrayLike | None, k: int, threads: int,
) -> tuple[np.ndarray, np.ndarray]: ...
def bm25_info(index: object) -> tuple[int, int]: ...
def bm25_tokenize(index: object, text: bytes) -> np.ndarray: ...

# --- retrieval/evidence.c (py/evidence.c): evidence assembly from retrieved events -----------------------------
def assemble_evidence(
    hits: npt.ArrayLike, subjects: npt.ArrayLike, relations: npt.ArrayLike, objects: npt.ArrayLike,
    times: npt.ArrayLike, length: int,
) -> np.ndarray: ...

# --- retrieval/dense.c (py/dense.c): cosine top-k over dense vectors -------------------------------------------
def dense_normalize(x: npt.ArrayLike, what: str) -> np.ndarray: ...
def dense_search(
    corpus: npt.ArrayLike, queries: npt.ArrayLike, before: npt.ArrayLike | None, k: int,
) -> tuple[np.ndarray, np.ndarray]: ...

# --- http/http.c (py/http.c): libcurl transport of the LLM client ---------------------------------------------
def http_post_batch(
    url: str, bodies: list[bytes], headers: list[str], concurrency: int, timeout: float, connect_timeout: float,
    max_retries: int, backoff_base: float, backoff_max: float, max_response: int, verify_tls: bool, seed: int,
) -> tuple[list[tuple[int, bytes | None, bool, bool, int, str]], bool]: ...
def http_post_endpoints(
    endpoints: Sequence[str], path: str, bodies: list[bytes], headers: list[str], concurrency: int, timeout: float,
    connect_timeout: float, max_retries: int, backoff_base: float, backoff_max: float, max_response: int,
    verify_tls: bool, seed: int, progress: Callable[[int, int], object] | None = ..., take_out_after: int = ...,
    health: Sequence[tuple[float, int, int, int]] | None = ..., answer: Callable[[int, bytes], object] | None = ...,
    rate: tuple[float, float, int, float, float] | None = ...,
) -> tuple[list[tuple[int, bytes | None, bool, bool, int, str, int]], list[tuple[int, int, int, int, int]],
           list[tuple[float, int, int, int]], bool, tuple[float, float]]: ...
def http_request(
    method: str, url: str, headers: list[str], body: bytes | None, timeout: float, connect_timeout: float,
    max_retries: int, backoff_base: float, backoff_max: float, max_response: int, verify_tls: bool, seed: int,
) -> tuple[int, bytes | None, bool, int, str, float]: ...
def http_backoff(attempt: int, retry_after: float, base: float, max: float, jitter01: float) -> float: ...

# --- ranker/ (py/ranker.c): the energy-based ranker ------------------------------------------------------------
# the parameter layout (ranker/ranker.h): the readout's blocks, then each layer's, then (agree) the agreement blocks
RANKER_BLOCK_ENT: int
RANKER_BLOCK_REL: int
RANKER_BLOCK_OBJ: int
RANKER_BLOCK_WQ: int
RANKER_BLOCK_WK: int
RANKER_BLOCK_WV: int
RANKER_BLOCK_W1: int
RANKER_BLOCK_B1: int
RANKER_BLOCK_W2: int
RANKER_BLOCK_B2: int
RANKER_BLOCK_GAMMA: int
RANKER_READOUT_BLOCKS: int
RANKER_LAYER_BLOCK_AQ: int
RANKER_LAYER_BLOCK_AK: int
RANKER_LAYER_BLOCK_AV: int
RANKER_LAYER_BLOCK_AO: int
RANKER_LAYER_BLOCK_F1: int
RANKER_LAYER_BLOCK_FB1: int
RANKER_LAYER_BLOCK_F2: int
RANKER_LAYER_BLOCK_FB2: int
RANKER_LAYER_BLOCKS: int
RANKER_AGREE_BLOCK_WKF: int
RANKER_AGREE_BLOCK_UB: int
RANKER_AGREE_BLOCK_K0: int
RANKER_AGREE_BLOCK_V0: int
RANKER_AGREE_BLOCK_W1P: int
RANKER_AGREE_BLOCK_WP: int
RANKER_AGREE_BLOCKS: int
RANKER_ID_FEATURES: int
def ranker_layout(
    num_entities: int, num_relations: int, width: int, heads: int = 1, layers: int = 0, agree: bool = False,
    aux: int = 0,
) -> np.ndarray: ...
def ranker_forward(
    params: npt.ArrayLike, num_entities: int, num_relations: int, width: int, time_scale: float, heads: int,
    layers: int, evidence: npt.ArrayLike, evidence_times: npt.ArrayLike, candidates: npt.ArrayLike,
    candidate_times: npt.ArrayLike, prior: npt.ArrayLike | None, labels: npt.ArrayLike | None, loss: str,
    dropout: float, seed: int, want_grad: bool, precision: str = "float64", grads_out: np.ndarray | None = None,
    agree: bool = False, evidence_aux: npt.ArrayLike | None = None,
) -> tuple[np.ndarray, float | None, np.ndarray | None]: ...
def ranker_adam(
    params: np.ndarray, grads: npt.ArrayLike, m1: np.ndarray, m2: np.ndarray, lr: float, beta1: float,
    beta2: float, eps: float, weight_decay: float, clip: float, step: int,
) -> None: ...

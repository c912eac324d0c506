"""Type stubs of lamp._core, the compiled C core (one section per area)."""
import numpy as np
import numpy.typing as npt

# --- events ---------------------------------------------------------------
def check_sequences(
    times: npt.ArrayLike, marks: npt.ArrayLike, offsets: npt.ArrayLike, num_types: int
) -> None: ...

# --- kg (knowledge-graph Hawkes proposer) -----------------------------------
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
def kg_nll(phi_true: npt.ArrayLike, phi_total: npt.ArrayLike, weights: npt.ArrayLike) -> tuple[float, np.ndarray]: ...

# --- match (BM25 retrieval, evidence assembly) -------------------------------
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
def assemble_evidence(
    hits: npt.ArrayLike, subjects: npt.ArrayLike, relations: npt.ArrayLike, objects: npt.ArrayLike,
    times: npt.ArrayLike, length: int,
) -> np.ndarray: ...

# --- http (libcurl transport of the LLM client) ------------------------------
def http_post_batch(
    url: str, bodies: list[bytes], headers: list[str], concurrency: int, timeout: float, connect_timeout: float,
    max_retries: int, backoff_base: float, backoff_max: float, max_response: int, verify_tls: bool, seed: int,
) -> tuple[list[tuple[int, bytes | None, bool, bool, int, str]], bool]: ...
def http_post_endpoints(
    endpoints: list[str], path: str, bodies: list[bytes], headers: list[str], concurrency: int, timeout: float,
    connect_timeout: float, max_retries: int, backoff_base: float, backoff_max: float, max_response: int,
    verify_tls: bool, seed: int, progress: object = ..., take_out_after: int = ...,
    health: list[tuple[float, int, int, int]] | None = ..., answer: object = ...,
) -> tuple[list[tuple[int, bytes | None, bool, bool, int, str, int]], list[tuple[int, int, int, int, int]],
           list[tuple[float, int, int, int]], bool]: ...
def http_request(
    method: str, url: str, headers: list[str], body: bytes | None, timeout: float, connect_timeout: float,
    max_retries: int, backoff_base: float, backoff_max: float, max_response: int, verify_tls: bool, seed: int,
) -> tuple[int, bytes | None, bool, int, str, float]: ...
def http_backoff(attempt: int, retry_after: float, base: float, max: float, jitter01: float) -> float: ...

# --- rank (energy-based ranker) ----------------------------------------------
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

# --- hawkes (multivariate exponential Hawkes process) ------------------------
def hawkes_intensity(
    times: npt.ArrayLike, marks: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike,
    query_times: npt.ArrayLike,
) -> np.ndarray: ...
def hawkes_loglik(
    times: npt.ArrayLike, marks: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: float | npt.ArrayLike,
    end_time: float, want_grad: bool,
) -> float | tuple[float, np.ndarray, np.ndarray, np.ndarray]: ...
def hawkes_sample_next(
    times: npt.ArrayLike, marks: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike,
    t_start: float, n: int, seed: int,
) -> tuple[np.ndarray, np.ndarray]: ...
def hawkes_simulate(
    mu: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike, end_time: float, max_events: int, seed: int,
) -> tuple[np.ndarray, np.ndarray]: ...
def dense_normalize(x: npt.ArrayLike, what: str) -> np.ndarray: ...
def dense_search(
    corpus: npt.ArrayLike, queries: npt.ArrayLike, before: npt.ArrayLike | None, k: int,
) -> tuple[np.ndarray, np.ndarray]: ...
def hawkes_loglik_batch(
    times: npt.ArrayLike, marks: npt.ArrayLike, offsets: npt.ArrayLike, mu: npt.ArrayLike, alpha: npt.ArrayLike,
    beta: npt.ArrayLike, end_times: npt.ArrayLike, want_grad: bool,
) -> float | tuple[float, np.ndarray, np.ndarray, np.ndarray]: ...
def _hawkes_stream_floor(times: npt.ArrayLike, marks: npt.ArrayLike) -> float: ...
def simd_width() -> int: ...
def quadrature_nodes(scheme: int, order: int) -> tuple[np.ndarray, np.ndarray]: ...
def integrate_intervals(
    starts: npt.ArrayLike, ends: npt.ArrayLike, values: npt.ArrayLike, weights: npt.ArrayLike,
) -> np.ndarray: ...
def kg_score_pairs(
    stream_subjects: npt.ArrayLike, stream_relations: npt.ArrayLike, stream_objects: npt.ArrayLike,
    stream_times: npt.ArrayLike, query_subjects: npt.ArrayLike, query_relations: npt.ArrayLike,
    query_objects: npt.ArrayLike, query_times: npt.ArrayLike, query_targets: npt.ArrayLike | None,
    num_entities: int, num_relations: int, rates: npt.ArrayLike, weights: npt.ArrayLike, m: int,
    filter_offsets: npt.ArrayLike | None = ..., filter_ids: npt.ArrayLike | None = ...,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]: ...

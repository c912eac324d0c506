"""The typed schema of a config's ``lamp`` section (pydantic v2), and bounds on parsed YAML.

:func:`validate_lamp` checks the merged section (defaults, the file's ``lamp`` blocks and every
``--set`` override) before any work starts: types are strict (``"ten"``, ``2.9`` and ``true`` are
not integers, ``1`` is not a boolean), numbers are range-checked, names are checked against their
choices, and a few rules between keys are checked (``matching.scope``, ``matching.method`` and the
task; ``ranker.heads`` and ``ranker.width``; the ``openai`` backend's URL and model).  Every problem
is one line naming the key path, the value and what is allowed; all of them are reported together.

:func:`check_tree` bounds a parsed YAML value: its expanded size (YAML aliases count each time they
are used, so an "alias bomb" of a few hundred bytes is refused at once), its depth, and cycles.

The models' defaults are those of :data:`lamp.config.LAMP_DEFAULTS` (a test keeps them equal).
Other code reads the validated section as a plain dict (``Config.lamp``), produced by
:meth:`pydantic.BaseModel.model_dump`.
"""
from __future__ import annotations

import math
import re
from typing import Any, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lamp.errors import ConfigError
from lamp.llm.client import ENV_NAME

__all__ = ["LampSection", "validate_lamp", "check_tree", "tree_problem", "raise_problems", "key_paths", "allowed", "TASKS", "TKG_TASKS",
           "TYPED_TASKS", "BACKENDS", "ABLATIONS", "ENV_NAME", "MAX_NODES", "MAX_DEPTH", "MAX_PARAMS_NODES",
           "MAX_PARAMS_DEPTH"]

TASKS = ("object", "relation", "pair", "next_type", "next_time")
TKG_TASKS = ("object", "relation", "pair")
TYPED_TASKS = ("next_type", "next_time")
BACKENDS = ("local", "openai", "replay", "none", "oracle")
ABLATIONS = ("no_llm", "random_evidence", "recent_evidence")
PROPOSERS = ("kg_hawkes", "recurrency", "hawkes")

MAX_NODES = 100_000        # values (mappings, lists, scalars) of a whole config once aliases are expanded
MAX_DEPTH = 64             # nesting of a whole config
MAX_PARAMS_NODES = 10_000  # proposer.params, expanded
MAX_PARAMS_DEPTH = 8       # proposer.params nesting

_API_KEY_TEXT = ("the name of an environment variable (letters, digits and _, not starting with a digit, e.g. "
                 "OPENAI_API_KEY) that holds the API key, never the key itself; or null")
_HIDDEN = "the value (not shown: it may be a secret)"


# ------------------------------------------------------------------------------------------ bounds
def check_tree(value: Any, where: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> str | None:
    """A problem line (``where: the value ...``) when ``value`` is out of the bounds of :func:`tree_problem`."""
    problem = tree_problem(value, max_nodes, max_depth)
    return None if problem is None else f"{where}: the value {problem}"


def tree_problem(value: Any, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> str | None:
    """What is wrong with ``value`` (parsed YAML), e.g. ``"is nested deeper than 64 levels"``: more than
    ``max_nodes`` values once aliases are expanded, nested deeper than ``max_depth``, or recursive;
    None when it is within bounds.

    Shared sub-trees (YAML anchors) are measured once and counted every time they are used, so the
    check takes time linear in the parsed document even for an alias bomb.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded nodes, height)
    active: set[int] = set()

    class _Stop(Exception):
        pass

    def walk(node: Any, depth: int) -> tuple[int, int]:
        if not isinstance(node, (dict, list, tuple, set)):
            return 1, 0
        key = id(node)
        if key in sizes:
            count, height = sizes[key]
        else:
            if key in active:
                raise _Stop("is recursive (a YAML alias refers to a mapping or list that contains it)")
            if depth > max_depth:
                raise _Stop(f"is nested deeper than {max_depth} levels")
            active.add(key)
            count, height = 1, 0
            children = node.items() if isinstance(node, dict) else ((None, v) for v in node)
            for k, v in children:
                c, h = walk(v, depth + 1)
                count += c + (k is not None)
                height = max(height, h + 1)
                if count > max_nodes:
                    raise _Stop(f"has more than {max_nodes:,} values once YAML aliases are expanded "
                                "(an alias bomb?)")
            active.discard(key)
            sizes[key] = (count, height)
        if depth + height > max_depth:
            raise _Stop(f"is nested deeper than {max_depth} levels")
        return count, height

    try:
        count, _ = walk(value, 0)
    except _Stop as stop:
        return stop.args[0]
    if count > max_nodes:
        return f"has more than {max_nodes:,} values once YAML aliases are expanded"
    return None


# ------------------------------------------------------------------------------------------ fields
def _range(lo, hi, lo_open=False, hi_open=False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"> {lo}" if lo_open else f">= {lo}")
    if hi is not None:
        parts.append(f"< {hi}" if hi_open else f"<= {hi}")
    return " and ".join(parts)


def _int(default, lo, hi=None, *, nullable=False, text=None):
    allowed = text or (("null or " if nullable else "") + "an integer " + _range(lo, hi))
    return Field(default, ge=lo, le=hi, json_schema_extra={"allowed": allowed})


def _num(default, lo=None, hi=None, *, lo_open=False, hi_open=False):
    bounds = {"gt" if lo_open else "ge": lo, "lt" if hi_open else "le": hi}
    return Field(default, **{k: v for k, v in bounds.items() if v is not None},
                 json_schema_extra={"allowed": "a number " + _range(lo, hi, lo_open, hi_open)})


def _choice(default, choices, nullable=False):
    names = [repr(c) for c in choices]
    text = " or ".join(names) if len(names) == 2 and not nullable else "one of " + ", ".join(names)
    if nullable:
        text = "null or " + (" or ".join(names) if len(names) == 1 else "one of " + ", ".join(names))
    return Field(default, json_schema_extra={"allowed": text})


def _text(default, what=None, nullable=True):
    allowed = "a string" + (f" ({what})" if what else "")
    return Field(default, json_schema_extra={"allowed": ("null or " if nullable else "") + allowed})


def _bool(default):
    return Field(default, json_schema_extra={"allowed": "true or false"})


class _Block(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, protected_namespaces=(),
                              validate_default=False)

    @field_validator("*", mode="before")
    @classmethod
    def _exact_number(cls, value, info):
        """An integer given for a number key must be one a float holds exactly (|n| <= 2**53): no silent
        rounding of 9007199254740993 to 9007199254740992.0."""
        if (isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 53
                and cls.model_fields[info.field_name].annotation in (float, Optional[float])):
            raise ValueError("is an integer too large to be held exactly as a number (at most 2**53)")
        return value


class Proposer(_Block):
    model: Literal["kg_hawkes", "recurrency", "hawkes"] = _choice("kg_hawkes", PROPOSERS)
    params: Optional[dict] = Field(
        default_factory=dict, json_schema_extra={
            "allowed": f"a mapping of the proposer's keyword arguments with string keys (at most "
                       f"{MAX_PARAMS_NODES:,} values, nested at most {MAX_PARAMS_DEPTH} levels), or null"})
    checkpoint: Optional[str] = _text(None, "a file path")

    @field_validator("params")
    @classmethod
    def _bounded(cls, value):
        if value is None:
            return value
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ValueError(f"has a key {_show(bad[0])} that is not a string")
        problem = tree_problem(value, MAX_PARAMS_NODES, MAX_PARAMS_DEPTH)
        if problem:
            raise ValueError(problem)
        return value


class PricePerMTok(_Block):
    prompt: Optional[float] = Field(None, ge=0, json_schema_extra={"allowed": "null or a number >= 0 (USD)"})
    completion: Optional[float] = Field(None, ge=0, json_schema_extra={"allowed": "null or a number >= 0 (USD)"})


class Abduction(_Block):
    backend: Literal["local", "openai", "replay", "none", "oracle"] = _choice("local", BACKENDS)
    model: Optional[str] = _text(None, "a model name")
    base_url: Optional[Union[str, List[str]]] = Field(None, json_schema_extra={
        "allowed": "null, a URL starting with http:// or https://, or a non-empty list of such URLs (several "
                   "endpoints: requests are spread over them)"})
    api_key_env: Optional[str] = Field(None, json_schema_extra={"allowed": _API_KEY_TEXT, "secret": True})
    model_path: Optional[str] = _text(None, "a GGUF file path")
    num_shots: int = _int(8, 0, 64)
    temperature: float = _num(0.0, 0, 2)
    max_tokens: int = _int(256, 1, 32768)
    concurrency: int = _int(8, 1, 1024)
    max_retries: int = _int(5, 0, 100)
    timeout: float = _num(60.0, 0, lo_open=True)
    cache: Optional[str] = _text(None, "a file path")
    verify_tls: bool = _bool(True)
    max_failed_fraction: float = _num(0.0, 0, 1)
    response_format: Literal["auto", "json_schema", "text"] = _choice("auto", ("auto", "json_schema", "text"))
    price_per_mtok: PricePerMTok = Field(default_factory=lambda: PricePerMTok(), json_schema_extra={
        "allowed": "a mapping {prompt, completion} of USD per million tokens (both null: no cost in the plan)"})
    seconds_per_request: Optional[float] = Field(None, gt=0, json_schema_extra={
        "allowed": "null (1.3 s local, 2 s otherwise) or a number > 0: the plan's seconds per request per "
                   "concurrent slot"})

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
                    raise ValueError(f"has {_show(url)}, which does not start with http:// or https://")
        elif value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("does not start with http:// or https://")
        return value


_EMBEDDER_TEXT = ("null or 'minilm' (the local all-MiniLM-L6-v2), or a mapping {backend: minilm, model_dir, "
                  "batch_size, max_length} or {backend: openai, base_url, model, api_key_env, batch_size, "
                  "concurrency, max_retries, timeout, verify_tls}")
_EMBEDDER_KEYS = {"minilm": {"backend", "model_dir", "batch_size", "max_length"},
                  "openai": {"backend", "base_url", "model", "api_key_env", "batch_size", "concurrency",
                             "max_retries", "timeout", "verify_tls", "connect_timeout"}}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _embedder_problem(spec) -> str | None:
    """What is wrong with a ``matching.embedder`` value (None when it is fine); never shows api_key_env."""
    if spec is None or spec == "minilm":
        return None
    if not isinstance(spec, dict):
        return "is not 'minilm' or a mapping"
    backend = spec.get("backend", "minilm")
    if backend not in _EMBEDDER_KEYS:
        return f"has backend {_show(backend)}, not 'minilm' or 'openai'"
    unknown = sorted(map(str, set(spec) - _EMBEDDER_KEYS[backend]))
    if unknown:
        return f"has unknown keys {unknown} for backend {backend!r}"
    if "api_key_env" in spec and spec["api_key_env"] is not None and not (
            isinstance(spec["api_key_env"], str) and ENV_NAME.match(spec["api_key_env"])):
        return "has an api_key_env (not shown) that is not a valid environment variable name"
    if backend == "openai":
        for key in ("base_url", "model"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                return f"has backend 'openai' but no {key} (a string)"
        if not spec["base_url"].startswith(("http://", "https://")):
            return "has a base_url that does not start with http:// or https://"
    if "model_dir" in spec and spec["model_dir"] is not None and not isinstance(spec["model_dir"], str):
        return "has a model_dir that is not a string"
    for key, lo, hi in (("batch_size", 1, 100_000), ("max_length", 2, 512), ("concurrency", 1, 1024),
                        ("max_retries", 0, 100)):
        if key in spec and not (_is_int(spec[key]) and lo <= spec[key] <= hi):
            return f"has a {key} that is not an integer >= {lo} and <= {hi}"
    for key in ("timeout", "connect_timeout"):
        if key in spec and not (isinstance(spec[key], (int, float)) and not isinstance(spec[key], bool)
                                and math.isfinite(spec[key]) and spec[key] > 0):
            return f"has a {key} that is not a number > 0"
    if "verify_tls" in spec and not isinstance(spec["verify_tls"], bool):
        return "has a verify_tls that is not true or false"
    return None


class Matching(_Block):
    method: Literal["bm25", "dense"] = _choice("bm25", ("bm25", "dense"))
    causes_top_k: int = _int(2, 1, 1000)
    evidence_length: int = _int(10, 1, 1000)
    embedder: Any = Field(None, json_schema_extra={"allowed": _EMBEDDER_TEXT})
    embedding_cache: Optional[str] = _text(None, "a folder path")
    scope: Optional[Literal["entity"]] = _choice(None, ("entity",), nullable=True)
    k1: float = _num(1.2, 0)
    b: float = _num(0.75, 0, 1)

    @field_validator("embedder")
    @classmethod
    def _embedder(cls, value):
        problem = _embedder_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class Ranker(_Block):
    width: int = _int(64, 2, 4096, text="an even integer >= 2 and <= 4096")
    heads: int = _int(2, 1, text="an integer >= 1 that divides lamp.ranker.width")
    layers: int = _int(2, 0, 16)
    dropout: float = _num(0.1, 0, 1, hi_open=True)
    epochs: int = _int(20, 1, 10000)
    batch_size: int = _int(32, 1, 100000)
    learning_rate: float = _num(1e-3, 0, lo_open=True)
    weight_decay: float = _num(1e-5, 0)
    patience: int = _int(4, 1)
    clip: float = _num(1.0, 0)
    loss: Literal["softmax", "binary"] = _choice("softmax", ("softmax", "binary"))
    precision: Literal["float32", "float64"] = _choice("float32", ("float32", "float64"))
    use_proposer_score: bool = _bool(True)
    agreement: bool = _bool(True)
    start_from_prior: bool = _bool(True)
    train_on_inserted: bool = _bool(False)
    selection: Literal["bootstrap", "ranker"] = _choice("bootstrap", ("bootstrap", "ranker"))
    selection_p: float = _num(0.01, 0, 1, lo_open=True)
    init_from: Optional[str] = _text(None, "a path to a ranker stage folder of an earlier run (e.g. "
                                           "runs/X/ranker_no_llm) or a ranker checkpoint (.npz), or null")

    @field_validator("width")
    @classmethod
    def _even(cls, value):
        if value % 2:
            raise ValueError("is not even")
        return value


class Evaluation(_Block):
    bootstrap: int = _int(1000, 1, 1_000_000)
    ablations: List[Literal["no_llm", "random_evidence", "recent_evidence"]] = Field(
        default_factory=lambda: list(ABLATIONS),
        json_schema_extra={"allowed": "a list drawn from " + ", ".join(map(repr, ABLATIONS)) + " without duplicates"})
    plot: bool = _bool(True)
    skip_uncovered: bool = _bool(True)

    @field_validator("ablations")
    @classmethod
    def _unique(cls, value):
        seen = set()
        for item in value:
            if item in seen:
                raise ValueError(f"lists {item!r} twice")
            seen.add(item)
        return value


class LampSection(_Block):
    """The ``lamp`` section: one field per key of :data:`lamp.config.LAMP_DEFAULTS`, in its order."""

    task: Literal["object", "relation", "pair", "next_type", "next_time"] = _choice("object", TASKS)
    num_candidates: Optional[int] = _int(
        None, 2, 10000, nullable=True,
        text="at least 2 and at most 10000 (an integer), or null for the task's default (object 20, relation 5, "
             "pair 100, next_type and next_time 5)")
    query_limit: Optional[int] = _int(None, 1, nullable=True)
    train_query_limit: Optional[int] = _int(None, 1, nullable=True)
    valid_query_limit: Optional[int] = _int(None, 1, nullable=True)
    seed: int = _int(0, 0, 2**32 - 1)
    run_dir: str = _text("runs", "a folder path", nullable=False)
    proposer: Proposer = Field(default_factory=Proposer, json_schema_extra={"allowed": "a mapping"})
    abduction: Abduction = Field(default_factory=Abduction, json_schema_extra={"allowed": "a mapping"})
    matching: Matching = Field(default_factory=Matching, json_schema_extra={"allowed": "a mapping"})
    ranker: Ranker = Field(default_factory=Ranker, json_schema_extra={"allowed": "a mapping"})
    evaluation: Evaluation = Field(default_factory=Evaluation, json_schema_extra={"allowed": "a mapping"})


# ------------------------------------------------------------------------------------------ paths
def _fields(model=LampSection, prefix="lamp"):
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}"
        yield path, info
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from _fields(sub, path)


_INFO = dict(_fields())


def key_paths(leaves_only: bool = False) -> list[str]:
    """Every key path of the section (``lamp.task``, ``lamp.ranker``, ``lamp.ranker.width``, ...)."""
    return [p for p, info in _INFO.items()
            if not leaves_only or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel))]


def allowed(path: str) -> str:
    """What a key accepts, in words (``lamp.seed`` -> ``an integer >= 0 and <= 4294967295``)."""
    return (_INFO[path].json_schema_extra or {})["allowed"]


def _secret(path: str) -> bool:
    return bool((_INFO.get(path) and (_INFO[path].json_schema_extra or {}).get("secret"))
                or path.endswith("api_key_env"))


# ------------------------------------------------------------------------------------------ messages
def _show(value: Any, limit: int = 60) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any value must be shown somehow
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
    names = [part for part in error["loc"] if isinstance(part, str)]
    path = ".".join(["lamp", *names])
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
    shown = _HIDDEN if _secret(path) else _show(_redact(value))
    if kind == "missing":
        shown = "the key"
    rule = f"; {path} must be {allowed(path)}" if path in _INFO else ""
    return path, f"{shown_path}: {shown} {problem}{rule}"


def _cross_problems(d: dict) -> list[str]:
    """Rules between keys, checked where the keys involved have valid types."""
    out = []
    task = d.get("task")
    m, r, a = (d.get(k) if isinstance(d.get(k), dict) else {} for k in ("matching", "ranker", "abduction"))
    method, scope = m.get("method", "bm25"), m.get("scope")
    if scope == "entity" and (method != "bm25" or task in TYPED_TASKS):
        out.append(f"lamp.matching.scope 'entity' needs lamp.matching.method 'bm25' (got {_show(method)}) and a "
                   f"knowledge-graph lamp.task, one of {', '.join(map(repr, TKG_TASKS))} (got {_show(task)}); typed "
                   "tasks always retrieve inside the query's own sequence")
    if method == "dense" and task in TYPED_TASKS:
        out.append(f"lamp.matching.method 'dense' with lamp.task {task!r}: typed tasks retrieve inside each "
                   "sequence with BM25's scope; use method 'bm25'")
    width, heads = r.get("width", 64), r.get("heads", 2)
    if _is_int(width) and _is_int(heads) and 2 <= width <= 4096 and not width % 2 and heads >= 1 and width % heads:
        out.append(f"lamp.ranker.heads={heads} must divide lamp.ranker.width={width}")
    if a.get("backend") == "openai":
        missing = [k for k in ("base_url", "model") if a.get(k) is None]
        if missing:
            out.append(f"lamp.abduction.backend 'openai' needs {' and '.join('lamp.abduction.' + k for k in missing)}"
                       " (the server's URL, e.g. https://api.openai.com/v1, and the model name)")
    return out


def validate_lamp(section: Any) -> tuple[dict | None, list[str]]:
    """Validate a merged ``lamp`` section: ``(plain dict, [])`` when it is valid, else ``(None, problems)``
    with one line per problem (key path, value, what is allowed)."""
    if not isinstance(section, dict):
        return None, [f"lamp: {_show(section)} is not a mapping"]
    problems: list[str] = []
    try:
        model = LampSection.model_validate(section)
    except ValidationError as exc:
        model = None
        seen = set()
        for error in exc.errors(include_url=False):
            path, line = _line(error)
            if line not in seen:
                seen.add(line)
                problems.append(line)
    problems += _cross_problems(section)
    if problems:
        return None, problems
    return model.model_dump(), []


def raise_problems(problems: list[str]) -> None:
    """One :class:`ConfigError` holding every problem, one line each."""
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))

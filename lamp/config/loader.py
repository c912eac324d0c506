"""YAML configuration in EasyTPP's layout, plus a ``lamp`` section for this project's stages.

A config file has EasyTPP's top level::

    pipeline_config_id: runner_config
    data:
      icews14:                      # dataset_id
        data_format: tkg            # json | pkl (EasyTPP) | tkg | amazon_jsonl
        data_dir: lamp://icews14    # a folder, or a bundled data set
    lamp:                           # defaults for every lamp experiment (optional)
      proposer: {model: kg_hawkes}
    LAMP_icews14_object:            # an experiment block
      base_config: {stage: lamp, dataset_id: icews14}
      lamp: {task: object, num_candidates: 20}

EasyTPP experiment blocks (``base_config``/``trainer_config``/``model_config``)
may sit in the same file and load as they are.  Unlike EasyTPP, which
ignores unknown keys silently, every key is checked: an unknown key is a
:class:`ConfigError` naming it and the nearest valid key.  (EasyTPP's own
example files contain keys EasyTPP never reads, such as ``dropout``; load
them with ``strict=False`` to turn those errors into warnings.)

Relative paths are resolved against the config file's folder when they exist
there, else against the working directory (EasyTPP's rule).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import yaml

from lamp.config import schema
from lamp.config.bounds import check_tree
from lamp.data import FORMATS
from lamp.errors import ConfigError

__all__ = ["ConfigError", "Config", "load", "loads", "parse_overrides", "load_dataset", "MAX_CONFIG_BYTES"]

ANY = object()  # a free-form mapping (model-specific options)

_THINNING = {k: None for k in ("num_seq", "num_sample", "num_exp", "look_ahead_time", "patience_counter",
                                "over_sample_rate", "num_samples_boundary", "dtime_max", "num_step_gen")}

# Keys EasyTPP 0.2.x/0.3.0 reads (from its config_factory); anything else is an error.
EASYTPP_SCHEMA = {
    "base_config": {k: None for k in ("stage", "backend", "dataset_id", "runner_id", "model_id", "exp_id",
                                      "base_dir", "specs")},
    "trainer_config": {k: None for k in ("seed", "gpu", "batch_size", "max_epoch", "shuffle", "optimizer",
                                         "learning_rate", "valid_freq", "use_tfb", "metrics")},
    "model_config": {
        **{k: None for k in ("rnn_type", "hidden_size", "time_emb_size", "num_layers", "num_heads",
                             "sharing_param_layer", "use_mc_samples", "loss_integral_num_sample_per_step",
                             "dropout_rate", "use_ln", "training", "num_event_types_pad", "num_event_types",
                             "event_pad_index", "model_id", "pretrained_model_dir", "gpu", "pad_token_id")},
        "thinning": _THINNING,
        "model_specs": ANY,
    },
    "data_config": ANY,
    "hpo_config": ANY,
}

DATA_SPECS = {k: None for k in ("num_event_types", "pad_token_id", "padding_side", "truncation_side",
                                "padding_strategy", "max_len", "truncation_strategy", "model_input_names",
                                "rescale_time", "time_scale")}
DATA_SCHEMA = {
    "data_format": None, "train_dir": None, "valid_dir": None, "test_dir": None, "data_specs": DATA_SPECS,
    # lamp's formats
    "data_dir": None, "stream": None, "time_unit": None, "time_origin": None, "categories": None,
}
DATA_FORMATS = tuple(FORMATS)  # the loaders of lamp.data, one module per format

TOP_LEVEL = ("pipeline_config_id", "data", "lamp")
TYPED_FORMATS = ("json", "pkl", "amazon_jsonl")  # data formats of typed event sequences (the rest: knowledge graphs)
LAMP_RUNNER = "lamp.easytpp.LampRunner"


def _is_lamp_runner(experiment: dict) -> bool:
    """An EasyTPP experiment block that names a model and lamp's runner (``runner_id: lamp.easytpp.LampRunner``)."""
    base = experiment.get("base_config") if isinstance(experiment, dict) else None
    return isinstance(base, dict) and bool(base.get("model_id")) and base.get("runner_id") == LAMP_RUNNER


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(map(str, valid)))}"


def _check(mapping: Any, schema: dict, where: str, strict: bool, problems: list | None = None,
           types: bool = True) -> None:
    """Unknown keys of ``mapping`` against ``schema``: appended to ``problems`` (or raised when it is
    None), or warnings with ``strict=False``.  ``types=False`` leaves a value that is not a mapping
    to the typed schema (:mod:`lamp.config.schema`), which reports it."""
    def problem(message):
        if problems is None:
            raise ConfigError(message)
        problems.append(message)

    if not isinstance(mapping, dict):
        if types:
            problem(f"{where}: expected a mapping, got {type(mapping).__name__}")
        return
    for key, value in mapping.items():
        if key not in schema:
            message = f"unknown key '{where}.{key}'{_suggest(key, schema)}"
            if strict:
                problem(message)
            else:
                warnings.warn(message + " (ignored)", stacklevel=4)
            continue
        sub = schema[key]
        if isinstance(sub, dict) and value is not None:
            _check(value, sub, f"{where}.{key}", strict, problems, types)


def _easytpp_experiment(cfg: "Config") -> dict:
    """The selected experiment's EasyTPP blocks (the keys EasyTPP reads) and its data section, paths resolved as
    lamp resolves them (a Hugging Face id stays an id), for :func:`lamp.easytpp.fit_easytpp`."""
    from lamp.data.easytpp import hub_source

    block = {k: _known(v, EASYTPP_SCHEMA[k]) if isinstance(EASYTPP_SCHEMA[k], dict) else copy.deepcopy(v)
             for k, v in cfg.experiment.items() if k in EASYTPP_SCHEMA and v is not None}
    data = {k: (_known(v, DATA_SPECS) if k == "data_specs" else v) for k, v in copy.deepcopy(cfg.data).items()}
    for key in ("train_dir", "valid_dir", "test_dir"):
        value = data.get(key)
        if isinstance(value, str) and hub_source(value, cfg.resolve_path) != value:
            data[key] = os.path.normpath(cfg.resolve_path(value))
    return {"experiment_id": cfg.experiment_id, "block": block, "data": data}


def _easytpp_check(mapping: Any, schema: dict, where: str, problems: list, ignored: list) -> None:
    """An EasyTPP block: a key EasyTPP does not read goes to ``ignored`` (EasyTPP's config classes ignore such
    keys, and lamp warns of them once); a value that is not a mapping where one is needed to ``problems``."""
    found: list[str] = []
    _check(mapping, schema, where, True, found)
    for message in found:
        (ignored if message.startswith("unknown key ") else problems).append(message)


def _known(mapping: Any, schema: dict) -> Any:
    """``mapping`` without the keys ``schema`` does not have (reported by :func:`_check`)."""
    if not isinstance(mapping, dict):
        return mapping
    return {k: (_known(v, schema[k]) if isinstance(schema[k], dict) else v) for k, v in mapping.items() if k in schema}


def _lamp_schema() -> dict:
    return schema.key_tree()


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass
class Config:
    """A loaded, validated configuration.

    Attributes
    ----------
    raw : dict
        The whole file as parsed.
    path : str or None
        The file it came from.
    experiment_id : str or None
        The selected experiment block.
    experiment : dict
        That block (empty when none was selected).
    dataset_id : str or None
        ``base_config.dataset_id`` of the experiment, or the only data set.
    data : dict
        The data section of ``dataset_id``.
    lamp : lamp.config.schema.LampSection
        The lamp settings (frozen): the schema's defaults, then the file's top-level ``lamp``, then the
        experiment's ``lamp`` block, then the overrides.  :meth:`with_overrides` gives a changed copy.
    """

    raw: dict
    path: str | None
    experiment_id: str | None
    experiment: dict = field(default_factory=dict)
    dataset_id: str | None = None
    data: dict = field(default_factory=dict)
    lamp: schema.LampSection = field(default_factory=schema.LampSection)
    overrides: list = field(default_factory=list)

    def resolved(self) -> dict:
        """The settings a run uses: the experiment, its data section and the merged lamp section."""
        return {"experiment": self.experiment_id, "data": {self.dataset_id: self.data},
                "lamp": self.lamp.model_dump()}

    def with_overrides(self, *items: str) -> "Config":
        """A copy with ``KEY=VALUE`` settings applied over the lamp section (as ``--set`` does, e.g.
        ``cfg.with_overrides("lamp.abduction.backend=none")``), validated like the file."""
        over = parse_overrides(items)
        problems: list[str] = []
        if over.get("data"):
            problems.append("with_overrides: only lamp.* keys can be changed on a loaded config; reload it to "
                            "change its data")
        if over.get("lamp"):
            _check(over["lamp"], _lamp_schema(), "lamp", True, problems, types=False)
        schema.raise_problems(problems)
        return dataclasses.replace(self, lamp=self.lamp.updated(over.get("lamp") or {}),
                                   overrides=list(self.overrides) + list(items))

    @property
    def experiments(self) -> list[str]:
        return [k for k in self.raw if k not in TOP_LEVEL]

    def resolve_path(self, value: str | None) -> str | None:
        """Resolve a path of the config (see the module docstring)."""
        if value is None or str(value).startswith("lamp://") or os.path.isabs(str(value)):
            return value
        if self.path is not None:
            beside = os.path.join(os.path.dirname(os.path.abspath(self.path)), str(value))
            if os.path.exists(beside):
                return beside
        return os.path.abspath(str(value))

    def load_data(self):
        """Load the experiment's data set as an :class:`~lamp.data.EventStore`."""
        return load_dataset(self.data, resolve=self.resolve_path, name=self.dataset_id)


def load_dataset(data: dict, resolve=lambda p: p, name: str | None = None):
    """Load a data section (``data_format`` + paths) into an :class:`~lamp.data.EventStore`
    (see :func:`lamp.datasets.load_section`, which resolves ``lamp://`` bundled data sets)."""
    from lamp import datasets

    return datasets.load_section(data, resolve=resolve, name=name)


MAX_CONFIG_BYTES = 1 << 20   # a config file (or string) larger than 1 MiB is refused
MAX_OVERRIDE_CHARS = 64 << 10  # one --set value


class _DuplicateKey(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing a mapping with the same key twice (PyYAML keeps the last silently), while a
    merge (``<<: *base``) may still be overridden by the mapping's own keys."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if first != key_node.start_mark.line + 1:
                    raise _DuplicateKey(f"key {key!r} appears twice in one mapping, on line {first} and line "
                                        f"{key_node.start_mark.line + 1}; keep one (lamp would not guess which)")
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load`` (with duplicate keys refused) whose every failure is a :class:`ConfigError`, bounded by
    :func:`lamp.config.bounds.check_tree` (expanded size, depth, no recursion: a YAML alias bomb fails at once)."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{where}: not valid YAML: {str(exc)[:200]}") from None
    problem = check_tree(value, where)
    if problem:
        raise ConfigError(problem)
    return value


def parse_overrides(items) -> dict:
    """``["lamp.num_candidates=10", "data.icews14.data_dir=lamp://icews14", ...]`` -> a nested mapping.

    The value is read as YAML (``10`` an integer, ``0.5`` a float, ``null`` None, ``[a, b]`` a list,
    ``true`` a boolean; anything else, ``none`` included, a string).  The key path starts with ``lamp.`` or ``data.``.
    Values are checked by :func:`loads` (see :mod:`lamp.config.schema`).
    """
    out: dict = {}
    for item in items or ():
        if not isinstance(item, str) or "=" not in item:
            shown = repr(item) if not isinstance(item, str) or "api_key_env" not in item else "(value not shown)"
            raise ConfigError(f"--set {shown}: expected KEY=VALUE, e.g. lamp.num_candidates=10")
        key, _, text = item.partition("=")
        parts = key.strip().split(".")
        if parts[0] not in ("lamp", "data") or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {key!r}: the key path must start with 'lamp.' or 'data.' (e.g. "
                              "lamp.abduction.backend=none)")
        secret = parts[-1] == "api_key_env"
        if len(text) > MAX_OVERRIDE_CHARS:
            raise ConfigError(f"--set {key}: the value is longer than {MAX_OVERRIDE_CHARS:,} characters")
        try:
            value = _parse_yaml(text, f"--set {key}") if text.strip() else None
        except ConfigError as exc:
            if secret:
                raise ConfigError(f"--set {key}: the value (not shown) is not valid YAML") from None
            if "not valid YAML" in str(exc):
                raise ConfigError(f"--set {key}: the value {text[:80]!r} is not valid YAML "
                                  f"({str(exc).split('not valid YAML: ', 1)[-1]})") from None
            raise
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} was already set to a value")
            node = child
        node[parts[-1]] = value
    return out


def _as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def loads(text: str, experiment: str | None = None, *, strict: bool = True, path: str | None = None,
          overrides=None) -> Config:
    """Parse and validate a config from a YAML string (see :func:`load`).

    Every problem found (unknown keys, values of the wrong type or out of range, see
    :mod:`lamp.config.schema`) is reported in one :class:`ConfigError`, one line per problem.
    """
    where = path or "<string>"
    if not isinstance(text, str):
        raise ConfigError(f"{where}: expected the YAML text as a string, got {type(text).__name__}")
    if len(text) > MAX_CONFIG_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: the config is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config holds "
                          "settings, not data")
    raw = _parse_yaml(text, where)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a config must be a mapping at the top level")
    over = parse_overrides(overrides)
    problems: list[str] = []
    ignored: list[str] = []  # keys of EasyTPP's own blocks that EasyTPP ignores: one warning
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        problems.append("data: expected a mapping of dataset_id -> data section")
        data = {}
    lamp_schema = _lamp_schema()
    if "lamp" in raw and raw["lamp"] is not None:
        if not isinstance(raw["lamp"], dict):
            problems.append(f"lamp: {schema.show(raw['lamp'])} is not a mapping")
        _check(raw["lamp"], lamp_schema, "lamp", strict, problems, types=False)
    blocks = []
    for key, block in raw.items():
        if key in TOP_LEVEL:
            continue
        if not isinstance(block, dict) or not ({"base_config", "lamp"} & set(block)):
            problems.append(f"unknown top-level key '{key}': expected one of {list(TOP_LEVEL)} or an experiment "
                            f"block (a mapping with base_config or lamp){_suggest(key, TOP_LEVEL)}")
            continue
        blocks.append(key)
        if block.get("lamp") is not None:  # lamp's own section: strict in every block
            if not isinstance(block["lamp"], dict):
                problems.append(f"{key}.lamp: {schema.show(block['lamp'])} is not a mapping")
            _check(block["lamp"], lamp_schema, f"{key}.lamp", strict, problems, types=False)
    if over.get("lamp"):
        _check(over["lamp"], lamp_schema, "lamp", True, problems, types=False)

    def fail(message: str | None = None):
        schema.raise_problems(problems + ([message] if message else []))

    cfg = Config(raw=raw, path=path, experiment_id=experiment)
    experiments = [k for k in cfg.experiments if isinstance(raw[k], dict)]
    if experiment is None:
        lamp_experiments = [k for k in experiments if "lamp" in raw[k]]
        if len(lamp_experiments) == 1:
            experiment = lamp_experiments[0]
        elif len(lamp_experiments) > 1:
            fail(f"the config has several lamp experiments {lamp_experiments}: choose one "
                 "(lamp run CONFIG --experiment ID, or load(path, experiment=ID))")
    elif experiment not in raw or experiment in TOP_LEVEL or not isinstance(raw[experiment], dict):
        fail(f"experiment {experiment!r} is not in the config; it has {experiments}"
             f"{_suggest(experiment, experiments) if experiments else ''}")
    if experiment in blocks:
        # the experiment being run: EasyTPP's blocks as EasyTPP reads them (its config classes ignore keys they
        # do not know, so do we, with one warning); the other experiments are EasyTPP's business
        block = raw[experiment]
        _easytpp_check({k: v for k, v in block.items() if k not in ("lamp", "study")}, EASYTPP_SCHEMA, experiment,
                       problems, ignored)
    cfg.experiment_id = experiment
    cfg.experiment = copy.deepcopy(raw.get(experiment, {})) if experiment else {}
    dataset_id = _as_dict(cfg.experiment.get("base_config")).get("dataset_id")
    if dataset_id is None and len(data) == 1:
        dataset_id = next(iter(data))
    if dataset_id is not None and dataset_id not in data:
        fail(f"{experiment}.base_config.dataset_id={dataset_id!r} is not in data "
             f"(it has {list(data)}){_suggest(dataset_id, list(data))}")
    for name, section in data.items():
        if not isinstance(section, dict):
            problems.append(f"data.{name}: expected a mapping, got {type(section).__name__}")
            continue
        if name != dataset_id:  # a data set this experiment does not read: only a mapping
            continue
        # lamp reads the data section (strict), EasyTPP its data_specs (ignored keys warned of)
        _check({k: v for k, v in section.items() if k != "data_specs"}, DATA_SCHEMA, f"data.{name}", strict, problems)
        if section.get("data_specs") is not None:
            _easytpp_check(section["data_specs"], DATA_SPECS, f"data.{name}.data_specs", problems, ignored)
        if section.get("data_format") not in DATA_FORMATS:
            problems.append(f"data.{name}.data_format must be one of {DATA_FORMATS}, "
                            f"got {schema.show(section.get('data_format'))}")
    if ignored:
        warnings.warn(f"{path or 'config'}: EasyTPP ignores these keys, and so does lamp: "
                      + "; ".join(m.replace("unknown key ", "", 1) for m in ignored), stacklevel=3)
    cfg.dataset_id = dataset_id
    cfg.data = copy.deepcopy(data.get(dataset_id, {})) if dataset_id else {}
    merged: dict = {}
    for block in (raw.get("lamp"), cfg.experiment.get("lamp"), over.get("lamp")):
        if isinstance(block, dict):
            merged = _merge(merged, _known(block, lamp_schema))
    for dataset, section in (over.get("data") or {}).items():
        if dataset != dataset_id:
            problems.append(f"--set data.{dataset}: the experiment uses data set {dataset_id!r}")
            continue
        _check(section, DATA_SCHEMA, f"data.{dataset}", True, problems)
        cfg.data = _merge(cfg.data, _as_dict(section))
    cfg.overrides = list(overrides or ())
    if "task" not in merged and cfg.data.get("data_format") in TYPED_FORMATS:
        merged["task"] = "next_type"  # typed sequences: a knowledge-graph default never reaches them
    proposer = _as_dict(merged.get("proposer"))
    if proposer.get("model") is None and _is_lamp_runner(cfg.experiment):
        proposer["model"] = "easytpp"  # an EasyTPP experiment run by lamp's runner: its model is the proposer
    if proposer.get("model") == "easytpp" and _as_dict(cfg.experiment.get("base_config")).get("model_id"):
        # what EasyTPP's runner needs to train it, as the settings of the proposer stage (a change retrains)
        proposer["params"] = {**_as_dict(proposer.get("params")), "easytpp": _easytpp_experiment(cfg)}
    if proposer:
        merged["proposer"] = proposer
    lamp_section, lamp_problems = schema.validate_lamp(merged)
    problems += lamp_problems
    fail()
    cfg.lamp = lamp_section
    return cfg


def load(path, experiment: str | None = None, *, strict: bool = True, overrides=None) -> Config:
    """Load and validate a YAML config file.

    Parameters
    ----------
    path : str or path
        The YAML file (EasyTPP layout, optionally with ``lamp`` sections), at most
        :data:`MAX_CONFIG_BYTES` (1 MiB).
    experiment : str, optional
        The experiment block to select.  By default the only block with a
        ``lamp`` section, if there is exactly one.
    strict : bool
        Unknown keys are errors (default) or, with ``strict=False``, warnings.
    overrides : list of str, optional
        ``KEY=VALUE`` settings applied over the file (``lamp run CONFIG --set KEY=VALUE``), e.g.
        ``lamp.num_candidates=10``; values are YAML, keys and values are checked like the file's (see
        :func:`parse_overrides` and :mod:`lamp.config.schema`).

    Raises
    ------
    ConfigError
        Every problem of the file and the overrides, one line each.
    FileNotFoundError
        No such file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such config file")
    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the config file is {size:,} bytes, more than the limit of "
                          f"{MAX_CONFIG_BYTES // 1024} KiB; a config holds settings, not data")
    with open(path, "rb") as f:
        blob = f.read(MAX_CONFIG_BYTES + 1)
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the config file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise ConfigError(f"{path}: the config file is empty")
    return loads(text, experiment, strict=strict, path=path, overrides=overrides)

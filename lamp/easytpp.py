"""Trained EasyTPP models as lamp's proposer, and a runner that plugs lamp into EasyTPP.

The proposer contract every typed-sequence proposer implements is in
:mod:`lamp.tpp.contract`; :class:`EasyTPPProposer` is one such proposer.

EasyTPP
-------
:class:`EasyTPPProposer` wraps a trained EasyTPP torch model (the 0.3.0 line,
``easy_tpp.model.BaseModel``, or the 0.2.x line,
``easy_tpp.model.torch_model.torch_basemodel.TorchBaseModel``).  It feeds each
query's history as an EasyTPP batch built by :class:`lamp.batching.BatchBuilder`
and reads the intensities of all ``K`` types after the last history event with
the model's ``compute_intensities_at_sample_times``; next-time samples come
from the model's thinning sampler (EasyTPP's ``EventSampler``).

``LampRunner`` (``runner_id: lamp.easytpp.LampRunner`` in an EasyTPP config)
trains or loads the EasyTPP model as EasyTPP's standard runner does, then
proposes for the test split and hands the proposals to lamp's pipeline.

torch and easy-tpp are optional dependencies: this module imports without
them, and raises ``ImportError`` with the install command when they are
needed.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np

from lamp.batching import BatchBuilder
from lamp.config.names import TYPED_TASKS
from lamp.data import EventSequences
from lamp.report import rank_metrics, truth_ranks
from lamp.tpp.contract import check_queries, next_event_queries

# LampRunner (built on first access, see __getattr__) is left out so that a star import works without easy-tpp
__all__ = ["EasyTPPProposer", "build_runner_config", "next_event_queries", "check_queries", "easytpp_layout",
           "base_metrics", "TYPE_RANKINGS", "SCORES"]

log = logging.getLogger("lamp.easytpp")

TYPE_RANKINGS = ("true_time", "sampled")
SCORES = ("probability", "intensity")

# EasyTPP's ThinningConfig defaults, used when the model was built without a thinning section
_THINNING_DEFAULTS = {"num_exp": 500, "over_sample_rate": 5.0, "num_samples_boundary": 5, "dtime_max": 5.0,
                      "patience_counter": 5}

_INSTALL = "pip install easy-tpp (and torch; see docs/easytpp.md)"


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"lamp.easytpp needs PyTorch: {_INSTALL}") from exc
    return torch


def easytpp_layout() -> dict[str, Any]:
    """The installed EasyTPP's module layout.

    Returns ``{"version", "line", "base_model", "event_sampler"}`` where
    ``line`` is ``"0.3"`` (``easy_tpp.model.basemodel.BaseModel``) or
    ``"0.2"`` (``easy_tpp.model.torch_model.torch_basemodel.TorchBaseModel``).
    Raises ``ImportError`` when easy-tpp is not installed.
    """
    _import_torch()
    try:
        import easy_tpp
    except ImportError as exc:
        raise ImportError(f"lamp.easytpp needs easy-tpp: {_INSTALL}") from exc
    version = getattr(easy_tpp, "__version__", "unknown")
    try:
        from easy_tpp.model.basemodel import BaseModel
        from easy_tpp.model.thinning import EventSampler
        line = "0.3"
    except ImportError:
        try:
            from easy_tpp.model.torch_model.torch_basemodel import TorchBaseModel as BaseModel
            from easy_tpp.model.torch_model.torch_thinning import EventSampler
            line = "0.2"
        except ImportError as exc:
            raise ImportError(f"easy-tpp {version} has neither the 0.3 nor the 0.2 module layout "
                              "(easy_tpp.model.basemodel / easy_tpp.model.torch_model)") from exc
    return {"version": version, "line": line, "base_model": BaseModel, "event_sampler": EventSampler}


class EasyTPPProposer:
    """A trained EasyTPP model as lamp's typed-sequence proposer.

    Parameters
    ----------
    model : torch.nn.Module
        A trained EasyTPP model (0.3.0 ``BaseModel`` or 0.2.x ``TorchBaseModel``
        subclass, or anything with the same ``compute_intensities_at_sample_times``).
    num_event_types : int
        ``K``; must equal the model's ``num_event_types``.
    pad_token_id : int, optional
        The model's padding id (default: the model's own, else ``K``).
    num_samples : int
        Next-time samples drawn by thinning per query (default 20).  The
        predicted time is their mean, as in EasyTPP's one-step prediction.
    type_ranking : {"true_time", "sampled"}
        ``"true_time"`` (default) ranks types by the intensities at the
        queried event's own time: the probability ``lambda_k(t) / sum_j
        lambda_j(t)`` of type ``k`` given that an event happens at ``t``.  This
        is the next-type task of LAMP (the time of the event is known, its
        type is asked) and what EasyTPP's ``compute_intensities_at_sample_times``
        answers exactly; it needs no sampling, so scores are deterministic.
        ``"sampled"`` ranks by that probability averaged over the thinning
        samples of the next time (EasyTPP's ``predict_one_step_at_every_event``),
        for when the time is unknown.
    score : {"probability", "intensity"}
        Rank and report by the type probabilities (default) or the raw
        intensities (averaged over samples with ``type_ranking="sampled"``).
        At the true time both give the same order.
    time_scale : float
        EasyTPP's ``data_specs.time_scale`` when the model was trained with
        ``rescale_time: true``: times are divided by it before the model sees
        them and predicted times multiplied back.
    batch_size : int
        Queries per model call.
    seed : int
        Seed of the thinning sampler (draws are reproducible; torch's global
        random state is left as it was).
    thinning : dict, optional
        Overrides of the sampler settings ``num_exp``, ``over_sample_rate``,
        ``num_samples_boundary``, ``dtime_max``, ``patience_counter`` (by
        default the model's own, else EasyTPP's defaults).

    Notes
    -----
    Histories are grouped by length and fed without padding, one group per
    call, so the last column of a batch is the last history event for every
    row: no model has to honour a padding mask (NHP's recurrence does not),
    and no event after the query ever enters the batch.  Time offsets follow
    the model's training convention: ``time_delta_seqs`` are the source's
    ``time_since_last_event`` when the data has them (see
    :meth:`lamp.data.EventSequences.time_deltas`), and the query's offset
    after the last history event is the queried event's own
    ``time_since_last_event`` (``t_i - t_{i-1}`` when the data has no separate
    deltas).
    """

    def __init__(self, model, num_event_types: int, pad_token_id: int | None = None, *, num_samples: int = 20,
                 type_ranking: str = "true_time", score: str = "probability", time_scale: float = 1.0,
                 batch_size: int = 256, seed: int = 0, thinning: dict | None = None):
        torch = _import_torch()
        if not isinstance(model, torch.nn.Module) or not callable(getattr(model, "compute_intensities_at_sample_times",
                                                                          None)):
            raise TypeError(f"model must be a trained EasyTPP torch model (an nn.Module with "
                            f"compute_intensities_at_sample_times), got {type(model).__name__}")
        if isinstance(num_event_types, bool) or not isinstance(num_event_types, (int, np.integer)) \
                or num_event_types <= 0:
            raise ValueError(f"num_event_types must be a positive integer, got {num_event_types!r}")
        model_k = getattr(model, "num_event_types", None)
        if model_k is not None and int(model_k) != int(num_event_types):
            raise ValueError(f"num_event_types={num_event_types} but the model has {model_k} event types")
        model_pad = getattr(model, "pad_token_id", None)
        if pad_token_id is None:
            pad_token_id = int(model_pad) if model_pad is not None else int(num_event_types)
        elif model_pad is not None and int(model_pad) != int(pad_token_id):
            raise ValueError(f"pad_token_id={pad_token_id} but the model pads with {model_pad}")
        if type_ranking not in TYPE_RANKINGS:
            raise ValueError(f"type_ranking must be one of {TYPE_RANKINGS}, got {type_ranking!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        for name, value in (("num_samples", num_samples), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not np.isfinite(time_scale) or time_scale <= 0:
            raise ValueError(f"time_scale must be a positive finite number, got {time_scale!r}")
        self.model = model
        self.num_event_types = int(num_event_types)
        self.pad_token_id = int(pad_token_id)
        self.builder = BatchBuilder(num_event_types=self.num_event_types, pad_token_id=self.pad_token_id)
        self._two_columns = BatchBuilder(num_event_types=self.num_event_types, pad_token_id=self.pad_token_id,
                                         padding_strategy="max_length", max_len=2)
        self.num_samples = int(num_samples)
        self.type_ranking = type_ranking
        self.score = score
        self.time_scale = float(time_scale)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.sampler = self._make_sampler(thinning or {})
        params = list(model.parameters())
        self.device = params[0].device if params else torch.device("cpu")

    def _make_sampler(self, overrides: dict):
        unknown = set(overrides) - set(_THINNING_DEFAULTS)
        if unknown:
            raise ValueError(f"thinning has unknown keys {sorted(unknown)}; valid: {sorted(_THINNING_DEFAULTS)}")
        own = getattr(self.model, "event_sampler", None)
        if own is not None:
            sampler_cls = type(own)
            settings = {k: getattr(own, k, v) for k, v in _THINNING_DEFAULTS.items()}
            device = getattr(own, "device", None)
        else:
            sampler_cls = easytpp_layout()["event_sampler"]
            settings = dict(_THINNING_DEFAULTS)
            device = getattr(self.model, "device", None)
        settings.update(overrides)
        return sampler_cls(num_sample=self.num_samples, device=device or "cpu", **settings)

    # ------------------------------------------------------------------ the contract

    def propose_batch(self, seqs: EventSequences, queries, m: int):
        """Top-``m`` types, their scores and the predicted time for every query (see the module docstring)."""
        q = check_queries(seqs, queries, m, self.num_event_types)
        n = len(q)
        types = np.zeros((n, m), dtype=np.int64)
        scores = np.zeros((n, m), dtype=np.float64)
        next_times = np.zeros(n, dtype=np.float64)
        if n == 0:
            return types, scores, next_times
        for rows, probs, intensities, dtimes in self._groups(seqs, q, want_samples=True):
            values = probs if self.score == "probability" else intensities
            order = np.argsort(-values, axis=1, kind="stable")[:, :m]
            types[rows] = order
            scores[rows] = np.take_along_axis(values, order, axis=1)
            last = seqs.times[seqs.offsets[q[rows, 0]] + q[rows, 1] - 1]
            next_times[rows] = last + dtimes.mean(axis=1)
        return types, scores, next_times

    def type_probabilities(self, seqs: EventSequences, queries) -> np.ndarray:
        """The score of every type for every query, float64 (Q, K), in type order (as ``propose_batch`` ranks)."""
        q = check_queries(seqs, queries, 1, self.num_event_types)
        out = np.zeros((len(q), self.num_event_types), dtype=np.float64)
        for rows, probs, intensities, _ in self._groups(seqs, q, want_samples=self.type_ranking == "sampled"):
            out[rows] = probs if self.score == "probability" else intensities
        return out

    # ------------------------------------------------------------------ internals

    def _groups(self, seqs: EventSequences, q: np.ndarray, want_samples: bool):
        """Yield ``(rows, probabilities (B, K), intensities (B, K), next-dtime samples (B, S))`` per batch."""
        torch = _import_torch()
        deltas = seqs.time_deltas()
        starts = seqs.offsets[q[:, 0]]
        hist_len = q[:, 1]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                for length in np.unique(hist_len):
                    group = np.flatnonzero(hist_len == length)
                    for b in range(0, len(group), self.batch_size):
                        rows = group[b:b + self.batch_size]
                        yield (rows, *self._batch(torch, seqs, deltas, starts[rows], int(length),
                                                  q[rows, 1], want_samples))
        finally:
            self.model.train(was_training)

    def _batch(self, torch, seqs, deltas, starts, length, events, want_samples):
        idx = (starts[:, None] + np.arange(length)[None, :]).ravel()
        histories = EventSequences(seqs.times[idx], seqs.marks[idx], np.arange(len(starts) + 1) * length,
                                   self.num_event_types, dtimes=deltas[idx])
        # NHP's forward cannot take a single column (it stacks the left limits after the first event), so
        # one-event histories get one padding column after them, which a causal model does not look at
        batch = (self.builder if length > 1 else self._two_columns)(histories)
        t = {name: torch.as_tensor(batch[name], dtype=dtype, device=self.device)
             for name, dtype in (("time_seqs", torch.float32), ("time_delta_seqs", torch.float32),
                                 ("type_seqs", torch.long))}
        t["time_seqs"] = t["time_seqs"] / self.time_scale
        t["time_delta_seqs"] = t["time_delta_seqs"] / self.time_scale
        intensity_fn = self._last_event_intensity(t, length)
        samples = np.zeros((len(starts), 0))
        if want_samples:
            torch.manual_seed(self.seed * 1_000_003 + length)
            history = {k: v[:, :length] for k, v in t.items()}
            drawn, _weights = self.sampler.draw_next_time_one_step(
                history["time_seqs"], history["time_delta_seqs"], history["type_seqs"],
                history["time_delta_seqs"] + self.sampler.dtime_max, intensity_fn, compute_last_step_only=True)
            samples = drawn[:, -1, :].double().cpu().numpy() * self.time_scale
        if self.type_ranking == "true_time":
            offsets = torch.as_tensor(deltas[starts + events] / self.time_scale, dtype=torch.float32,
                                      device=self.device)[:, None]
        else:
            offsets = torch.as_tensor(samples / self.time_scale, dtype=torch.float32, device=self.device)
        intensities = intensity_fn(None, None, None, offsets[:, None, :])[:, 0].double().cpu().numpy()
        probs = intensities / np.maximum(intensities.sum(axis=2, keepdims=True), np.finfo(np.float64).tiny)
        return probs.mean(axis=1), intensities.mean(axis=1), samples

    def _last_event_intensity(self, t: dict, length: int):
        """An EasyTPP intensity function for the last history event of every row of ``t``.

        It takes ``sample_dtimes`` (B, n, S), uses its last row as the offsets
        after the last history event, and returns the intensities
        (B, 1, S, K); the thinning sampler calls it in place of the model's
        ``compute_intensities_at_sample_times``.
        """
        b, width = t["type_seqs"].shape
        last_only = width == length

        def intensity_fn(_time_seqs, _time_delta_seqs, _type_seqs, sample_dtimes, **_):
            offsets = sample_dtimes[:, -1, :]
            expanded = offsets[:, None, :].expand(b, width, offsets.shape[1]).contiguous()
            out = self.model.compute_intensities_at_sample_times(t["time_seqs"], t["time_delta_seqs"],
                                                                 t["type_seqs"], expanded,
                                                                 compute_last_step_only=last_only)
            if out.ndim != 4 or out.shape[0] != b or out.shape[1] not in (1, width) \
                    or out.shape[2] != offsets.shape[1] or out.shape[3] != self.num_event_types:
                raise RuntimeError(f"{type(self.model).__name__}.compute_intensities_at_sample_times returned "
                                   f"shape {tuple(out.shape)}; expected (batch {b}, 1 or {width} steps, samples "
                                   f"{offsets.shape[1]}, types {self.num_event_types})")
            column = length - 1 if out.shape[1] == width else 0
            return out[:, column:column + 1]

        return intensity_fn


def base_metrics(types: np.ndarray, truth: np.ndarray, m: int) -> dict[str, float]:
    """Rank metrics of the proposer's own order (:func:`lamp.report.rank_metrics` of the truth's rank among
    the ``m`` proposed ``types``; ``truth`` holds type ids)."""
    return rank_metrics(truth_ranks(np.asarray(types), np.asarray(truth)), m)


# ---------------------------------------------------------------------- the EasyTPP runner


def _to_plain(value):
    """OmegaConf containers (what EasyTPP's configs hold) to plain Python."""
    try:
        from omegaconf import OmegaConf
    except ImportError:
        return value
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _lamp_config_for(runner_config, sections: dict):
    """A validated :class:`lamp.config.Config` for an EasyTPP runner config plus its lamp sections.

    ``sections`` holds ``"lamp"`` (the file's top-level defaults) and
    ``"experiment"`` (the experiment's block); lamp merges them over its
    defaults, with ``task: next_type`` unless a section sets the task.
    """
    import yaml

    from lamp import config as lamp_config

    base = runner_config.base_config
    data = _to_plain(runner_config.data_config.get_yaml_config())
    data["data_specs"] = {k: v for k, v in _to_plain(data["data_specs"]).items() if v is not None}
    data = {k: v for k, v in data.items() if v is not None}
    experiment = base.exp_id or "easytpp"
    dataset = base.dataset_id or "easytpp"
    raw = {"pipeline_config_id": "runner_config", "data": {dataset: data},
           "lamp": {"task": "next_type", **(sections.get("lamp") or {})},
           experiment: {"base_config": {"dataset_id": dataset, "stage": base.stage, "model_id": base.model_id},
                        "lamp": sections.get("experiment") or {}}}
    cfg = lamp_config.loads(yaml.safe_dump(raw, sort_keys=False), experiment)
    if cfg.lamp.kind != "typed":
        raise lamp_config.ConfigError(f"{experiment}.lamp.task={cfg.lamp.task!r}: an EasyTPP model proposes "
                                      f"for typed sequences, so the task is {' or '.join(TYPED_TASKS)}")
    return cfg


def _lamp_sections(runner_config) -> dict:
    """The lamp sections of a runner: attached by :func:`build_runner_config`, else ``base_config.specs.lamp``."""
    attached = getattr(runner_config, "lamp_sections", None)
    if attached is not None:
        return attached
    specs = _to_plain(runner_config.base_config.specs) or {}
    return {"lamp": {}, "experiment": dict(specs.get("lamp") or {})}


def build_runner_config(path, experiment_id: str):
    """EasyTPP's ``Config.build_from_yaml_file(path, experiment_id=...)``, keeping the file's ``lamp`` sections.

    EasyTPP drops keys it does not know, so a ``lamp`` block beside
    ``base_config`` never reaches a runner through EasyTPP's own loader.  This
    checks the top-level ``lamp`` section and the experiment's ``lamp`` block
    with lamp's strict loader (an unknown key is a
    :class:`lamp.config.ConfigError` naming it) and attaches them to the
    EasyTPP runner config as ``runner_config.lamp_sections`` for
    :class:`LampRunner`.  EasyTPP's own keys are left to EasyTPP.
    """
    import yaml
    from easy_tpp.config_factory import Config as EasyTPPConfig

    from lamp import config as lamp_config

    with open(path, "r", encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw.get(experiment_id), dict):
        raise lamp_config.ConfigError(f"experiment {experiment_id!r} is not in {path}")
    sections = {"lamp": raw.get("lamp") or {}, "experiment": raw[experiment_id].get("lamp") or {}}
    lamp_config.loads(json.dumps({"lamp": sections["lamp"], experiment_id: {"lamp": sections["experiment"]}}),
                      experiment_id, path=os.fspath(path))
    runner_config = EasyTPPConfig.build_from_yaml_file(os.fspath(path), experiment_id=experiment_id)
    runner_config.lamp_sections = sections
    return runner_config


# ---------------------------------------------------------------------- the `easytpp` proposer of `lamp run`

_WEIGHT = "weight__"  # prefix of a model weight in the proposer stage's arrays


def _runner_config_from(easytpp: dict, base_dir: str | None = None, stage: str | None = None):
    """An EasyTPP runner config for EasyTPP's standard runner, built as ``Config.build_from_yaml_file`` builds one,
    from ``easytpp`` (``experiment_id``, ``block``: the experiment's EasyTPP blocks, ``data``: its data section with
    resolved paths), as :mod:`lamp.config` fills ``lamp.proposer.params.easytpp`` in."""
    import copy

    from omegaconf import OmegaConf

    easytpp_layout()
    from easy_tpp.config_factory import Config as EasyTPPConfig

    experiment = easytpp["experiment_id"]
    block = copy.deepcopy(easytpp["block"])
    base = block.setdefault("base_config", {})
    base["runner_id"] = "std_tpp"  # the training; lamp's stages follow
    if base_dir is not None:
        base["base_dir"] = base_dir
    if stage is not None:
        base["stage"] = stage
    raw = {"pipeline_config_id": "runner_config", "data": {base["dataset_id"]: easytpp["data"]}, experiment: block}
    return EasyTPPConfig.by_name("runner_config").parse_from_yaml_config(OmegaConf.create(raw),
                                                                         experiment_id=experiment)


def _time_scale(runner) -> float:
    loader = getattr(runner, "_data_loader", None)
    if loader is not None and getattr(loader, "rescale_time", False) and getattr(loader, "time_scale", None):
        return float(loader.time_scale)
    return 1.0


def _proposer_from_runner(runner, params: dict) -> "EasyTPPProposer":
    """The runner's model as a proposer (EasyTPP's ``time_scale`` when it rescaled time)."""
    specs = runner.runner_config.data_config.data_specs
    return EasyTPPProposer(runner.model, int(specs.num_event_types), int(specs.pad_token_id),
                           time_scale=_time_scale(runner), **params)


def _check_model_id(easytpp: dict) -> None:
    model_id = (easytpp.get("block") or {}).get("base_config", {}).get("model_id")
    base = easytpp_layout()["base_model"]
    known = sorted(cls.__name__ for cls in _subclasses(base))
    if model_id not in known:
        from lamp.errors import ConfigError

        raise ConfigError(f"{easytpp.get('experiment_id')}.base_config.model_id={model_id!r}: EasyTPP has no such "
                          f"model; it has {', '.join(known)}")


def _subclasses(cls) -> list:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def fit_easytpp(store, task: str, easytpp: dict | None = None, **params) -> "EasyTPPProposer":
    """``lamp.proposer.model: easytpp``: the experiment's EasyTPP model, trained by EasyTPP's standard runner
    exactly as ``LampRunner`` trains it (``stage: train``: training, then the best checkpoint), or read from
    ``model_config.pretrained_model_dir`` (any other stage); ``params`` go to :class:`EasyTPPProposer`."""
    from lamp.errors import ConfigError
    from lamp.tpp.builders import check_params

    if not easytpp:
        raise ConfigError("lamp.proposer.model='easytpp' needs an EasyTPP experiment: a block with "
                          "base_config.model_id (and runner_id: lamp.easytpp.LampRunner)")
    check_params("easytpp", EasyTPPProposer, params, fixed=("model", "num_event_types", "pad_token_id", "time_scale"))
    _check_model_id(easytpp)
    from easy_tpp.runner import Runner
    from easy_tpp.utils import RunnerPhase, get_stage

    runner_config = _runner_config_from(easytpp)
    if get_stage(runner_config.base_config.stage) != RunnerPhase.TRAIN \
            and not runner_config.model_config.pretrained_model_dir:
        raise ConfigError(f"{easytpp['experiment_id']}.base_config.stage={runner_config.base_config.stage!r} uses a "
                          "trained model: set model_config.pretrained_model_dir (or stage: train)")
    runner = Runner.build_from_config(runner_config)
    if get_stage(runner_config.base_config.stage) == RunnerPhase.TRAIN:
        runner.train()
        best = runner_config.base_config.specs.get("saved_model_dir")
        if best and os.path.exists(best):
            runner._load_model(best)
    proposer = _proposer_from_runner(runner, params)
    proposer.easytpp = {"experiment": easytpp, "params": params, "time_scale": proposer.time_scale,
                        "log_folder": runner_config.base_config.specs.get("log_folder")}
    return proposer


def save_easytpp(proposer: "EasyTPPProposer", path: str) -> None:
    """The proposer's model weights and how to rebuild it, as arrays (``np.savez``; no pickle)."""
    info = getattr(proposer, "easytpp", None)
    if info is None:
        raise TypeError("save_easytpp: the proposer was not made by fit_easytpp")
    weights = {_WEIGHT + k: v.detach().cpu().numpy() for k, v in proposer.model.state_dict().items()}
    np.savez(path, easytpp_json=np.array(json.dumps(info, sort_keys=True)), **weights)


def load_easytpp(path: str, store) -> "EasyTPPProposer":
    """A proposer saved by :func:`save_easytpp`: the model rebuilt from its EasyTPP settings, its weights read
    back (no pickle), checked against ``store``'s number of event types."""
    import tempfile

    from lamp.errors import ConfigError

    torch = _import_torch()
    with np.load(path, allow_pickle=False) as saved:
        info = json.loads(str(saved["easytpp_json"]))
        weights = {k[len(_WEIGHT):]: torch.from_numpy(saved[k].copy()) for k in saved.files if k.startswith(_WEIGHT)}
    base_model = easytpp_layout()["base_model"]
    with tempfile.TemporaryDirectory(prefix="lamp-easytpp-") as tmp:  # EasyTPP writes a config copy there
        runner_config = _runner_config_from(info["experiment"], base_dir=tmp, stage="eval")
        model_config = runner_config.model_config
        model_config.pretrained_model_dir = None
        model = base_model.generate_model_from_config(model_config=model_config)
    model.load_state_dict(weights)
    model.eval()
    specs = runner_config.data_config.data_specs
    if int(specs.num_event_types) != store.num_types:
        raise ConfigError(f"proposer {path}: the EasyTPP model has {specs.num_event_types} event types, the data "
                          f"{store.num_types}")
    proposer = EasyTPPProposer(model, int(specs.num_event_types), int(specs.pad_token_id),
                               time_scale=float(info["time_scale"]), **info["params"])
    proposer.easytpp = info
    return proposer


def _make_runner_class():
    """``LampRunner`` subclasses EasyTPP's ``TPPRunner``, so it exists only where easy-tpp does."""
    easytpp_layout()
    from easy_tpp.runner import TPPRunner
    from easy_tpp.utils import RunnerPhase, get_stage

    class LampRunner(TPPRunner):
        """EasyTPP's standard runner, then lamp on the trained model.

        Use it from an EasyTPP config with ``runner_id: lamp.easytpp.LampRunner``.
        ``stage: train`` trains as ``std_tpp`` does and reloads the best
        checkpoint (best validation log-likelihood); ``stage: eval`` evaluates;
        any other stage uses ``model_config.pretrained_model_dir``.  Then lamp
        runs in ``<log folder>/lamp/``: the model's one-step proposals for
        every test event with a history and their metrics (``proposals.npz``,
        ``base_metrics.json``), then the LAMP pipeline with the model as
        proposer (``lamp.pipeline.run_typed(store, proposer, lamp_config)``:
        abduction, matching, ranker, ``metrics.json`` with base, LAMP and
        the ablations).

        The lamp settings come from ``runner_config.lamp_sections`` (set by
        :func:`lamp.easytpp.build_runner_config` from the file's ``lamp``
        sections) or from ``base_config.specs.lamp`` (which EasyTPP's own
        loader keeps); the task defaults to ``next_type``;
        ``lamp.proposer.params`` go to :class:`EasyTPPProposer`.
        """

        def run(self, **kwargs):
            phase = get_stage(self.runner_config.base_config.stage)
            easytpp_result = None
            if phase == RunnerPhase.TRAIN:
                self.train(**kwargs)
                best = self.runner_config.base_config.specs.get("saved_model_dir")
                if best and os.path.exists(best):
                    self._load_model(best)
            elif phase == RunnerPhase.VALIDATE:
                easytpp_result = self.evaluate(**kwargs)
            self.lamp_result = self.run_lamp()
            self.lamp_result["easytpp"] = easytpp_result
            return self.lamp_result

        def lamp_output_dir(self) -> str:
            folder = os.path.join(self.runner_config.base_config.specs["log_folder"], "lamp")
            os.makedirs(folder, exist_ok=True)
            return folder

        def make_proposer(self, params: dict) -> EasyTPPProposer:
            return _proposer_from_runner(self, params)

        def run_lamp(self) -> dict:
            cfg = _lamp_config_for(self.runner_config, _lamp_sections(self.runner_config))
            store = cfg.load_data()
            proposer = self.make_proposer(dict(cfg.lamp.proposer.params or {}))
            out_dir = self.lamp_output_dir()
            base = self.write_base_proposals(store, proposer, cfg, out_dir)
            from lamp.pipeline import run_typed

            log.info("lamp: running lamp.pipeline.run_typed on %s", cfg.dataset_id)
            return {"output_dir": out_dir, "base": base, "pipeline": run_typed(store, proposer, cfg, out=out_dir)}

        def write_base_proposals(self, store, proposer, cfg, out_dir) -> dict:
            """The model's own one-step predictions at every test event with a history (EasyTPP's evaluation):
            ``proposals.npz`` and ``base_metrics.json`` in ``out_dir``."""
            test = store.test
            if test is None:
                raise ValueError("the EasyTPP config has no test_dir: lamp proposes for the test split")
            wanted = cfg.lamp.m
            m = min(int(wanted), proposer.num_event_types)
            if m < wanted:
                log.warning("lamp: num_candidates=%d > %d event types; proposing %d", wanted, m, m)
            queries = next_event_queries(test, cfg.lamp.query_limit)
            types, scores, next_times = proposer.propose_batch(test, queries, m)
            rows = test.offsets[queries[:, 0]] + queries[:, 1]
            truth_types, truth_times = test.marks[rows], test.times[rows]
            np.savez(os.path.join(out_dir, "proposals.npz"), queries=queries, types=types, scores=scores,
                     next_times=next_times, truth_types=truth_types, truth_times=truth_times)
            rmse = float(np.sqrt(np.mean((next_times - truth_times) ** 2))) if len(rows) else float("nan")
            metrics = {"next_type": {"base": base_metrics(types, truth_types, m)},
                       "next_time": {"base": {"rmse": rmse, "n": int(len(rows))}}}
            with open(os.path.join(out_dir, "base_metrics.json"), "w", encoding="utf-8") as f:
                json.dump({**metrics, "m": m, "model_id": self.runner_config.base_config.model_id}, f, indent=2)
            return {"metrics": metrics, "m": m}

    LampRunner.__module__ = __name__
    LampRunner.__qualname__ = "LampRunner"
    return LampRunner


def __getattr__(name: str):
    # EasyTPP resolves ``runner_id: lamp.easytpp.LampRunner`` with getattr on this module; building the class
    # lazily keeps ``import lamp.easytpp`` working without easy-tpp installed.
    if name == "LampRunner":
        cls = _make_runner_class()
        globals()["LampRunner"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

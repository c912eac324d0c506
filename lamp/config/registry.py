"""The proposer registry: every name ``lamp.proposer.model`` accepts, and how to build that proposer.

A proposer is registered once, by name, with the kind of data it serves and a factory::

    import lamp

    class MyProposer:                      # implements lamp.tpp.contract.KGProposer
        ...

    def fit_my_proposer(store, task, **params):
        return MyProposer(**params).fit(store)

    lamp.register_proposer("my_proposer", kind="tkg", factory=fit_my_proposer)

after which a config may say ``proposer: {model: my_proposer, params: {...}}`` (the schema reads this
registry, so nothing else has to change).  The factory is called as ``factory(store, task, **params)``
with the run's :class:`~lamp.data.EventStore`, the task name and ``lamp.proposer.params``, and returns a
fitted proposer that implements the contract of its kind (:mod:`lamp.tpp.contract`).  A proposer that
can be written and read back (``save(proposer, path)`` and ``load(path, store)``) is kept in the run
folder, so a rerun does not fit it again, and can be given as ``lamp.proposer.checkpoint``.

lamp's own proposers are registered here by reference (``"module:attribute"``, imported when first
used), so this module imports nothing from lamp.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Union

__all__ = ["ProposerSpec", "register_proposer", "unregister_proposer", "proposer_spec", "proposer_names",
           "resolve"]

KINDS = ("tkg", "typed")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")

Ref = Union[str, Callable[..., Any]]


@dataclass(frozen=True)
class ProposerSpec:
    """One registered proposer.

    ``factory(store, task, **params) -> proposer``; ``save(proposer, path)`` and ``load(path, store) ->
    proposer`` (both or neither) keep a fitted proposer in a file.  Each is a callable or a
    ``"module:attribute"`` reference imported when first used.
    """

    name: str
    kind: str
    factory: Ref
    save: Ref | None = None
    load: Ref | None = None
    description: str = ""

    @property
    def persistent(self) -> bool:
        """Whether a fitted proposer can be written to the run folder and read back."""
        return self.save is not None and self.load is not None


_REGISTRY: dict[str, ProposerSpec] = {}


def register_proposer(name: str, kind: str, factory: Ref, *, save: Ref | None = None, load: Ref | None = None,
                      description: str = "", replace: bool = False) -> ProposerSpec:
    """Make ``name`` a valid ``lamp.proposer.model`` for data of ``kind`` (``"tkg"`` or ``"typed"``).

    Raises ``ValueError`` for a name that is taken (unless ``replace``), not an identifier-like string,
    an unknown kind, or only one of ``save``/``load``; ``TypeError`` for a factory that is neither
    callable nor a ``"module:attribute"`` string.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"proposer name {name!r}: expected letters, digits, '_', '.', '-' (at most 64, not "
                         "starting with a digit)")
    if kind not in KINDS:
        raise ValueError(f"proposer {name!r}: kind must be one of {KINDS}, got {kind!r}")
    for what, ref in (("factory", factory), ("save", save), ("load", load)):
        if ref is None and what != "factory":
            continue
        if not (callable(ref) or (isinstance(ref, str) and ":" in ref)):
            raise TypeError(f"proposer {name!r}: {what} must be a callable or a 'module:attribute' string, got "
                            f"{type(ref).__name__}")
    if (save is None) != (load is None):
        raise ValueError(f"proposer {name!r}: give both save and load (to keep it in the run folder) or neither")
    if name in _REGISTRY and not replace:
        raise ValueError(f"proposer {name!r} is already registered (replace=True to replace it)")
    spec = ProposerSpec(name, kind, factory, save, load, description)
    _REGISTRY[name] = spec
    return spec


def unregister_proposer(name: str) -> None:
    """Remove a registered proposer (lamp's own cannot be removed)."""
    if name in _BUILTIN:
        raise ValueError(f"proposer {name!r} is one of lamp's own and cannot be unregistered")
    _REGISTRY.pop(name, None)


def proposer_spec(name: str) -> ProposerSpec:
    """The registered proposer ``name``; ``KeyError`` naming the registered ones when there is none."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"no proposer {name!r} is registered; registered: {', '.join(proposer_names())}") from None


def proposer_names(kind: str | None = None) -> tuple[str, ...]:
    """The registered names (of one kind of data), in registration order."""
    return tuple(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def resolve(ref: Ref) -> Callable[..., Any]:
    """A callable, or the attribute a ``"module:attribute"`` reference names (imported now)."""
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


register_proposer("kg_hawkes", "tkg", "lamp.tpp.builders:fit_kg_hawkes", save="lamp.tpp.builders:save_model",
                  load="lamp.tpp.builders:load_kg", description="the Hawkes proposer for knowledge graphs "
                  "(lamp.tpp.KGHawkes): multi-scale decayed counts of the query's entities, relation and triple")
register_proposer("recurrency", "tkg", "lamp.tpp.builders:fit_recurrency", save="lamp.tpp.builders:save_model",
                  load="lamp.tpp.builders:load_kg", description="the recurrency baseline (lamp.tpp."
                  "RecurrencyBaseline): the most frequent, then most recent, triple of the query")
register_proposer("scores", "tkg", "lamp.tpp.scores:fit_scores", description="another model's saved scores "
                  "(lamp.tpp.scores.ScoresProposer): proposer: {model: scores, path: FILE} with a lamp .npz, a "
                  "Gastinger et al. evaluation .pkl or a .npy matrix with its query list")
register_proposer("hawkes", "typed", "lamp.tpp.builders:fit_hawkes", save="lamp.tpp.builders:save_model",
                  load="lamp.tpp.builders:load_hawkes", description="a multivariate exponential Hawkes "
                  "process (lamp.tpp.HawkesProcess) for typed event sequences")
register_proposer("easytpp", "typed", "lamp.easytpp:fit_easytpp", save="lamp.easytpp:save_easytpp",
                  load="lamp.easytpp:load_easytpp", description="an EasyTPP model (NHP, THP, SAHP, ...) trained "
                  "by EasyTPP's runner from the experiment's own blocks (model_id, trainer_config, model_config); "
                  "the default of an experiment with runner_id: lamp.easytpp.LampRunner")
_BUILTIN = frozenset(_REGISTRY)

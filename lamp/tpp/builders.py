"""How lamp's own proposers are fitted, written and read: the entries of the proposer registry
(:mod:`lamp.config.registry`) for ``kg_hawkes``, ``recurrency`` and ``hawkes``.

Each factory is ``factory(store, task, **params)`` with ``lamp.proposer.params`` as keyword arguments;
a keyword the proposer does not take is a :class:`~lamp.errors.ConfigError` naming
``lamp.proposer.params`` and the valid keywords.
"""
from __future__ import annotations

import inspect

from lamp.data import EventStore
from lamp.errors import ConfigError
from lamp.tpp.hawkes import HawkesProcess
from lamp.tpp.kg_hawkes import KGHawkes, RecurrencyBaseline

__all__ = ["fit_kg_hawkes", "fit_recurrency", "fit_hawkes", "save_model", "load_kg", "load_hawkes", "check_params"]


def check_params(name: str, cls, params: dict, fixed: tuple = ()) -> None:
    """A ConfigError naming ``lamp.proposer.params`` when ``params`` has a keyword ``cls`` does not take
    (``fixed``: keywords the pipeline sets itself)."""
    valid = [p for p in inspect.signature(cls).parameters if p not in ("self", *fixed)]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"lamp.proposer.params: unknown {unknown} for {name}; valid: {', '.join(valid)}")


def fit_kg_hawkes(store: EventStore, task: str, **params) -> KGHawkes:
    check_params("kg_hawkes", KGHawkes, params, fixed=("task",))
    return KGHawkes(task=task, **params).fit(store)


def fit_recurrency(store: EventStore, task: str, **params) -> RecurrencyBaseline:
    check_params("recurrency", RecurrencyBaseline, params, fixed=("task",))
    return RecurrencyBaseline(task=task, **params).fit(store)


def fit_hawkes(store: EventStore, task: str, **params) -> HawkesProcess:
    """A Hawkes process fitted on the training sequences; ``relative_time`` defaults to true here (each
    sequence measured from its first event: the data sets lamp reads are in absolute time)."""
    check_params("hawkes", HawkesProcess, params, fixed=("num_types",))
    return HawkesProcess(store.num_types, **{"relative_time": True, **params}).fit(store.train)


def save_model(proposer, path: str) -> None:
    proposer.save(path)


def load_kg(path: str, store: EventStore) -> KGHawkes:
    """A saved KGHawkes or RecurrencyBaseline with ``store``'s history."""
    try:
        return KGHawkes.load(path, store)
    except ValueError as exc:
        raise ConfigError(f"proposer checkpoint {path}: {exc}") from None


def load_hawkes(path: str, store: EventStore) -> HawkesProcess:
    """A saved HawkesProcess, checked against ``store``'s number of event types."""
    model = HawkesProcess.load(path)
    if model.num_types != store.num_types:
        raise ConfigError(f"proposer checkpoint {path} has {model.num_types} types, the data {store.num_types}")
    return model

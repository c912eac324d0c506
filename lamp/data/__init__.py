"""The event store: one in-memory representation of event data, and one loader module per format.

Every stage of lamp reads events from :class:`EventSequences` (one split) or
:class:`EventStore` (a data set with train/valid/test splits), defined in
:mod:`lamp.data.events`.  Each file format has its own module:

- :mod:`lamp.data.easytpp`: EasyTPP ``.pkl`` and ``.json`` (:func:`load_easytpp`,
  :func:`load_easytpp_splits`, :func:`save_easytpp_json`);
- :mod:`lamp.data.tkg`: temporal knowledge graphs in the ICEWS/GDELT folder layout (:func:`load_tkg`);
- :mod:`lamp.data.amazon`: Amazon reviews JSONL (:func:`load_amazon_jsonl`).

:data:`FORMATS` maps a config's ``data_format`` to the function that loads a
data section; :func:`load_section` dispatches on it.  Bad input raises
:class:`DataError` (a ``ValueError`` and a :class:`lamp.errors.LampError`)
naming the file, the line or sequence, and the problem.  Nothing is silently
dropped; where lamp repairs something (sorting a stream that is out of order)
it warns.
"""
from __future__ import annotations

from typing import Callable

from lamp.data import amazon, easytpp, tkg
from lamp.data.amazon import load_amazon_jsonl
from lamp.data.easytpp import load_easytpp, load_easytpp_splits, save_easytpp_json
from lamp.data.events import EventSequences, EventStore
from lamp.data.tkg import load_tkg
from lamp.errors import ConfigError, DataError

__all__ = [
    "DataError",
    "EventSequences",
    "EventStore",
    "FORMATS",
    "load_section",
    "load_easytpp",
    "load_easytpp_splits",
    "save_easytpp_json",
    "load_tkg",
    "load_amazon_jsonl",
]

# data_format -> loader of a config's data section: f(section, resolve, name) -> EventStore
FORMATS: dict[str, Callable[..., EventStore]] = {
    "json": easytpp.load_section,
    "pkl": easytpp.load_section,
    "tkg": tkg.load_section,
    "amazon_jsonl": amazon.load_section,
}


def load_section(section: dict, resolve: Callable[[str | None], str | None] = lambda p: p,
                 name: str | None = None) -> EventStore:
    """Load a config's data section (``data_format`` + paths) with the loader of its format.

    ``resolve`` turns the section's relative paths into real ones (the config's
    rule); ``name`` is the data set's id, used in messages and as the store's name.
    """
    fmt = section.get("data_format")
    if fmt not in FORMATS:
        raise ConfigError(f"data.{name}.data_format must be one of {tuple(FORMATS)}, got {fmt!r}")
    return FORMATS[fmt](section, resolve, name)

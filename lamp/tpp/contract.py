"""The proposer contract: what every proposer of lamp's first stage implements.

Typed event sequences
---------------------
Every proposer of typed event sequences (lamp's :class:`~lamp.tpp.HawkesProcess`,
:class:`lamp.easytpp.EasyTPPProposer`, or your own) implements::

    propose_batch(seqs, queries, m) -> (types, scores, next_times)

and may implement ``propose_times(seqs, queries, m, seed=0) -> (times, types,
log_densities)`` for the ``next_time`` task.

``seqs`` : :class:`lamp.data.EventSequences`
    The split the queries point into.
``queries`` : int64 array (Q, 2)
    Rows of ``(sequence index, event index)``.  Query ``j`` asks for the type
    of event ``queries[j, 1]`` of sequence ``queries[j, 0]`` given only the
    events *before* it in that sequence.  Nothing at or after that event is
    read except, where the proposer ranks types at the true event time, the
    time of the queried event itself (the question is then "what happened at
    time t?").  Event index 0 has an empty history: a proposer handles it if
    its model allows, otherwise raises ``ValueError`` saying so.
``m`` : int
    Number of proposals, ``1 <= m <= K``.

Returns
``types`` : int64 array (Q, m)
    The ``m`` most probable types, best first (ties: lower type id first).
``scores`` : float64 array (Q, m)
    The model's score of each proposed type: its probability (or intensity),
    non-increasing along each row.
``next_times`` : float64 array (Q,)
    The predicted time of the queried event, absolute (same clock as
    ``seqs.times``).

Bad input raises ``ValueError``/``TypeError`` naming the argument.

Temporal knowledge graphs
-------------------------
A knowledge-graph proposer (:class:`~lamp.tpp.KGHawkes`,
:class:`~lamp.tpp.RecurrencyBaseline`) implements::

    propose(queries, task, m) -> (ids, scores)

``queries`` int64 (Q, 4) of ``(subject, relation, object, time)``; ``task`` is
``"object"``, ``"relation"`` or ``"pair"``; ``ids`` int64 (Q, m) the best
``m`` answers (objects, relations, or ``r * num_entities + o``), best first;
``scores`` float64 (Q, m) non-increasing along each row.  Only events strictly
before each query's time are read.  It also has ``num_entities`` and
``num_relations``, and may have a ``fingerprint`` (a string identifying its
fitted state, used to key the pipeline's stored proposals; the pipeline gives
a registered proposer one from its name, parameters and data) and
``quality(queries, task, m) -> dict`` (time-aware filtered MRR and Hits over
all candidates; without it the pipeline reports the rank metrics among its M
proposals).

In code
-------
The contracts are the runtime-checkable protocols :class:`KGProposer` and
:class:`TypedProposer` (required methods), and :class:`SupportsQuality`, :class:`SupportsRanks`,
:class:`SupportsTimes`, :class:`SupportsDensity` (optional ones): the pipeline
checks a proposer with ``isinstance`` before it proposes.  A proposer becomes a
``lamp.proposer.model`` by one registration (:func:`lamp.register_proposer`,
:mod:`lamp.config.registry`).

:func:`check_queries` validates the arguments of ``propose_batch``;
:func:`next_event_queries` lists every query a typed proposer can answer.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from lamp.data import EventSequences

__all__ = ["check_queries", "next_event_queries", "KGProposer", "TypedProposer", "SupportsQuality", "SupportsRanks", "SupportsTimes",
           "SupportsDensity", "check_proposer"]


@runtime_checkable
class KGProposer(Protocol):
    """A proposer for temporal knowledge graphs (see the module docstring)."""

    num_entities: int
    num_relations: int

    def propose(self, queries: np.ndarray, task: str = "object", m: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)``, both (Q, m), best first, for queries (subject, relation, object, time)."""


@runtime_checkable
class SupportsQuality(Protocol):
    """Optional for a :class:`KGProposer`: its own quality over all candidates."""

    def quality(self, queries: np.ndarray, task: str, m: int) -> dict:
        """Time-aware filtered MRR, Hits@1/3/10 and the share with the truth in the top ``m``."""


@runtime_checkable
class SupportsRanks(Protocol):
    """Optional for a :class:`KGProposer` (object and relation tasks): the time-aware filtered rank of each
    query's true answer among all candidates, ties counting half.  With it, every reranking row also reports
    its metrics over all test queries (the reranked top M, the proposer's ranks for the rest)."""

    def filtered_ranks(self, queries: np.ndarray, task: str) -> np.ndarray:
        """float64 (Q,): the rank of each query's truth; ``inf`` where the proposer cannot rank it."""


@runtime_checkable
class TypedProposer(Protocol):
    """A proposer for typed event sequences (see the module docstring)."""

    def propose_batch(self, seqs: EventSequences, queries: np.ndarray, m: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(types, scores, next_times)``: (Q, m), (Q, m), (Q,)."""


@runtime_checkable
class SupportsTimes(Protocol):
    """Optional for a :class:`TypedProposer`: sampled next events, for the ``next_time`` task."""

    def propose_times(self, seqs: EventSequences, queries: np.ndarray, m: int, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(times, types, log_densities)``, each (Q, m), most probable first."""


@runtime_checkable
class SupportsDensity(Protocol):
    """Optional for a :class:`SupportsTimes` proposer: the log density of the true next event (the score of
    the real event put among the samples in training)."""

    def log_density_of_next(self, seqs: EventSequences, queries: np.ndarray, times: np.ndarray) -> np.ndarray:
        """(Q,) log densities."""


def check_proposer(proposer, kind: str, name: str = "the proposer") -> None:
    """TypeError naming what is missing when ``proposer`` does not implement the contract of ``kind`` (``"tkg"``:
    :class:`KGProposer`; ``"typed"``: :class:`TypedProposer`)."""
    protocol = KGProposer if kind == "tkg" else TypedProposer
    if not isinstance(proposer, protocol):
        needed = ("propose", "num_entities", "num_relations") if kind == "tkg" else ("propose_batch",)
        missing = [n for n in needed if not hasattr(proposer, n)]
        raise TypeError(f"{name} ({type(proposer).__name__}) does not implement lamp.tpp.contract."
                        f"{protocol.__name__}: it has no {', '.join(missing)}")


def next_event_queries(seqs: EventSequences, limit: int | None = None) -> np.ndarray:
    """Every query an EasyTPP model can answer: ``(s, i)`` for all events ``i >= 1`` of every sequence ``s``.

    Parameters
    ----------
    seqs : EventSequences
    limit : int, optional
        Keep the first ``limit`` queries (sequence by sequence, in event order).

    Returns
    -------
    int64 array (Q, 2)
    """
    if not isinstance(seqs, EventSequences):
        raise TypeError(f"seqs must be EventSequences, got {type(seqs).__name__}")
    counts = np.maximum(seqs.lengths - 1, 0)
    seq_ids = np.repeat(np.arange(seqs.num_sequences, dtype=np.int64), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    event_ids = np.arange(len(seq_ids), dtype=np.int64) - first + 1
    queries = np.stack([seq_ids, event_ids], axis=1).astype(np.int64)
    if limit is not None:
        if not isinstance(limit, (int, np.integer)) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        queries = queries[:limit]
    return queries


def check_queries(seqs: EventSequences, queries, m: int, num_types: int, *, min_history: int = 1) -> np.ndarray:
    """Validate the arguments of ``propose_batch`` (see the module docstring); return the queries as int64 (Q, 2)."""
    if not isinstance(seqs, EventSequences):
        raise TypeError(f"seqs must be EventSequences, got {type(seqs).__name__}")
    if seqs.num_types > num_types:
        raise ValueError(f"seqs has {seqs.num_types} event types but the proposer knows {num_types}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise TypeError(f"m must be an integer, got {type(m).__name__}")
    if not 1 <= m <= num_types:
        raise ValueError(f"m must be in [1, {num_types}] (the number of event types), got {m}")
    q = np.asarray(queries)
    if q.size and q.dtype.kind not in "iu":
        raise TypeError(f"queries must be integers (sequence index, event index), got dtype {q.dtype}")
    q = q.astype(np.int64).reshape(q.shape)
    if q.ndim != 2 or q.shape[1] != 2:
        raise ValueError(f"queries must have shape (Q, 2) of (sequence index, event index), got {q.shape}")
    if len(q) == 0:
        return q.reshape(0, 2)
    s, i = q[:, 0], q[:, 1]
    bad = np.flatnonzero((s < 0) | (s >= seqs.num_sequences))
    if len(bad):
        raise ValueError(f"queries[{bad[0]}] has sequence index {s[bad[0]]}, out of range for "
                         f"{seqs.num_sequences} sequences")
    lengths = seqs.lengths[s]
    bad = np.flatnonzero((i < 0) | (i >= lengths))
    if len(bad):
        raise ValueError(f"queries[{bad[0]}] has event index {i[bad[0]]}, out of range for sequence "
                         f"{s[bad[0]]} with {lengths[bad[0]]} events")
    bad = np.flatnonzero(i < min_history)
    if len(bad):
        raise ValueError(f"queries[{bad[0]}] asks for event {i[bad[0]]} of sequence {s[bad[0]]}, which has "
                         f"fewer than {min_history} earlier event(s): EasyTPP models condition on at least one "
                         "event (lamp.easytpp.next_event_queries lists the queries they can answer)")
    return q

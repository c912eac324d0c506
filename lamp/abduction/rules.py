"""Cause patterns mined from data: length-1 temporal rules per event type (``abduction.backend: rules``, and
the event-type oracle).

For every *head* event (an effect of event type ``r``), the *body* events are the earlier events, within
a window, between the same participants (knowledge graphs: the cyclic length-1 rules TLogic learns,
``r(X, Y) <- r'(X, Y)`` or ``r'(Y, X)``; typed sequences: the earlier events of the same sequence).  A
body's pattern is its event type and, for a knowledge graph, the roles of its subject and object in the
head.  As temporal rules are scored (TLogic, AnyBURL), a pattern ``b`` of head type ``r`` gets

- **support**: the head events of type ``r`` with at least one body of pattern ``b`` in the window;
- **confidence**: the share of ``b``'s groundings (the history's events of ``b``'s type) that a head of
  type ``r`` follows within the window with the pattern's roles;
- **chance**: the same share over the history's events of *every* type — how often a head of type ``r``
  follows any event that way.

A pattern is kept when its support is at least ``min_support`` and it precedes its head more often than
chance; its ``score`` is confidence minus chance.  Patterns are ranked by support times score — the heads
it explains beyond chance, so a rare cause that is always followed does not crowd out a common one (then
support, then the smaller id) — best first, and cut to ``max_patterns`` per head type.  :func:`mine_patterns` works on arrays; the
``rules`` backend mines the training split (:func:`mine_split`), the event-type oracle the test split
itself (it reads the future: a ceiling, never a result).
"""
from __future__ import annotations

import numpy as np

from lamp.abduction.patterns import ANYONE, OBJECT, SUBJECT, Pattern

__all__ = ["mine_patterns", "mine_split", "history_of"]

_CHUNK = 2_000_000  # (head, body) pairs per vectorised step


def mine_patterns(heads: np.ndarray, head_times: np.ndarray, history: np.ndarray, history_times: np.ndarray,
                  num_types: int, window: float, min_support: int = 5, max_patterns: int = 5,
                  typed: bool = False) -> dict[int, list[Pattern]]:
    """The best patterns per head event type.

    Parameters
    ----------
    heads, history : int arrays (n, 3)
        ``(subject, type, object)`` rows (typed sequences: ``(sequence, type, sequence)``); ``history`` holds
        the events bodies are drawn from (it may contain the heads).
    head_times, history_times : float arrays (n,)
    num_types : int
        Event types (relations).
    window : float
        A body lies in ``[t - window, t)`` before its head at ``t``.
    min_support, max_patterns : int
    typed : bool
        Typed sequences: a body's roles are not recorded (every pattern is ``type(anyone -> anyone)``).

    Returns
    -------
    dict
        head type -> list of :class:`Pattern` (with ``score`` = confidence, ``support``), best first; a type
        with no pattern of enough support is absent.
    """
    heads, history = np.asarray(heads, np.int64), np.asarray(history, np.int64)
    head_times, history_times = np.asarray(head_times, np.float64), np.asarray(history_times, np.float64)
    if heads.ndim != 2 or heads.shape[1] != 3 or history.ndim != 2 or history.shape[1] != 3:
        raise ValueError("heads and history must be int arrays (n, 3) of (subject, type, object)")
    if head_times.shape != (len(heads),) or history_times.shape != (len(history),):
        raise ValueError("head_times and history_times must have one time per row")
    if not window > 0:
        raise ValueError(f"window must be > 0, got {window}")
    if len(heads) == 0 or len(history) == 0:
        return {}
    if heads[:, 1].min() < 0 or heads[:, 1].max() >= num_types or history[:, 1].min() < 0 \
            or history[:, 1].max() >= num_types:
        raise ValueError(f"event types must be in [0, {num_types})")
    # every head and every history event under each of its entities; bodies sorted by (entity, time)
    h_ent, h_pos = _by_entity(heads, typed)
    b_ent, b_pos = _by_entity(history, typed)
    scale = float(max(np.abs(history_times).max(), np.abs(head_times).max()) + window + 1.0)
    b_key = b_ent * (4.0 * scale) + history_times[b_pos]
    order = np.argsort(b_key, kind="stable")
    b_key, b_pos, b_ent = b_key[order], b_pos[order], b_ent[order]
    h_key = h_ent * (4.0 * scale) + head_times[h_pos]
    lo = np.searchsorted(b_key, h_key - window, side="left")
    hi = np.searchsorted(b_key, h_key, side="left")      # strictly before the head
    counts = hi - lo
    support_keys, follow_keys = [], []
    start = 0
    cum = np.cumsum(counts)
    while start < len(counts):
        stop = int(np.searchsorted(cum, (cum[start - 1] if start else 0) + _CHUNK, side="right"))
        stop = max(stop, start + 1)
        sel = np.arange(start, stop)
        n = counts[sel]
        head_rows = np.repeat(h_pos[sel], n)
        via = np.repeat(h_ent[sel], n)
        first = np.repeat(lo[sel], n)
        offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        body_rows = b_pos[first + offset]
        keys, heads_of, bodies_of = _pair_keys(heads, history, head_rows, body_rows, via, num_types, typed)
        support_keys.append(np.unique(heads_of * (num_types * 9) + keys))
        follow_keys.append(np.unique(bodies_of * (num_types * num_types * 9) + heads[heads_of, 1] * (num_types * 9)
                                     + keys))
        start = stop
    support = np.unique(np.concatenate(support_keys))
    follow = np.unique(np.concatenate(follow_keys))
    # support per (head type, body key): distinct heads
    s_head = support // (num_types * 9)
    s_key = support % (num_types * 9)
    s_pair, s_count = np.unique(heads[s_head, 1] * (num_types * 9) + s_key, return_counts=True)
    # confidence numerator per (head type, body key): distinct body events followed by a head of that type
    f_pair, f_count = np.unique(follow % (num_types * num_types * 9), return_counts=True)
    numer = dict(zip(f_pair.tolist(), f_count.tolist()))
    # chance per (head type, roles): the share of all history events (of any type) a head of that type
    # follows with those roles
    body_of, rest = np.divmod(follow, num_types * num_types * 9)
    head_of, roles_of = rest // (num_types * 9), rest % 9
    c_pair, c_count = np.unique(np.unique(body_of * (num_types * 9) + head_of * 9 + roles_of) % (num_types * 9),
                                return_counts=True)
    chance = dict(zip(c_pair.tolist(), (c_count / len(history)).tolist()))
    groundings = np.bincount(history[:, 1], minlength=num_types)
    out: dict[int, list[Pattern]] = {}
    for pair, sup in zip(s_pair.tolist(), s_count.tolist()):
        if sup < min_support:
            continue
        head_type, key = divmod(pair, num_types * 9)
        body_type, roles = divmod(key, 9)
        conf = numer.get(pair, 0) / max(1, int(groundings[body_type]))
        gain = conf - chance.get(head_type * 9 + roles, 0.0)
        if gain <= 0:
            continue
        out.setdefault(head_type, []).append(Pattern(body_type, _ROLES[roles // 3], _ROLES[roles % 3], float(gain),
                                                     int(sup)))
    for head_type, found in out.items():
        found.sort(key=lambda p: (-p.score * p.support, -p.support, p.relation, _ROLES.index(p.subject),
                                  _ROLES.index(p.object)))
        out[head_type] = found[:max_patterns]
    return out


_ROLES = (SUBJECT, OBJECT, ANYONE)


def _by_entity(events: np.ndarray, typed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(entity, row) of every event under each of its distinct entities (typed: its sequence only)."""
    rows = np.arange(len(events))
    if typed:
        return events[:, 0].copy(), rows
    same = events[:, 0] == events[:, 2]
    return (np.concatenate([events[:, 0], events[~same, 2]]), np.concatenate([rows, rows[~same]]))


def _pair_keys(heads, history, head_rows, body_rows, via, num_types, typed):
    """The pattern key ``type * 9 + role(subject) * 3 + role(object)`` of each (head, body) pair, once per pair
    (a body sharing both of a head's entities is found under each: it is kept under the first)."""
    hs, ho = heads[head_rows, 0], heads[head_rows, 2]
    bs, br, bo = history[body_rows, 0], history[body_rows, 1], history[body_rows, 2]
    if typed:
        roles = np.full(len(head_rows), 8, dtype=np.int64)  # (anyone, anyone)
        keep = np.ones(len(head_rows), dtype=bool)
    else:
        rs = np.where(bs == hs, 0, np.where(bs == ho, 1, 2))
        ro = np.where(bo == hs, 0, np.where(bo == ho, 1, 2))
        roles = rs * 3 + ro
        shares_subject = (bs == hs) | (bo == hs)
        # cyclic rules only (both of the cause's participants are the effect's), each pair once: found
        # under the head's subject when it shares it
        keep = (rs < 2) & (ro < 2) & ((via == hs) | ~shares_subject)
    keys = br[keep] * 9 + roles[keep]
    return keys, head_rows[keep], body_rows[keep]


def history_of(store, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(heads, head_times, history, history_times)`` for mining ``split`` of ``store``.

    Knowledge graphs: the split's events as heads, bodies from the whole stream before them.  Typed
    sequences: the split's events as heads and as bodies, rows ``(sequence, type, sequence)`` (a body stays
    in its head's sequence)."""
    seqs = getattr(store, split)
    if store.kind == "tkg":
        quads = seqs.quadruples()
        stream, times = store.stream()
        return quads[:, :3], seqs.times.astype(np.float64), stream[:, :3], times.astype(np.float64)
    seq = np.repeat(np.arange(seqs.num_sequences), seqs.lengths)
    block = np.stack([seq, seqs.marks.astype(np.int64), seq], axis=1)
    times = seqs.times.astype(np.float64)
    return block, times, block, times


def mine_split(store, split: str, window_steps: float, min_support: int, max_patterns: int) -> dict[int, list[Pattern]]:
    """The patterns of ``split``'s events (``train`` for the ``rules`` backend, ``test`` for the event-type
    oracle); the window is ``window_steps`` time steps of the data (:meth:`lamp.data.EventStore.time_step`)."""
    heads, head_times, history, history_times = history_of(store, split)
    if store.kind == "tkg":
        lo, hi = head_times.min() - window_steps * store.time_step(), head_times.max()
        keep = (history_times >= lo) & (history_times < hi)
        history, history_times = history[keep], history_times[keep]
    num_types = store.num_relations if store.kind == "tkg" else store.num_types
    return mine_patterns(heads, head_times, history, history_times, num_types, window_steps * store.time_step(),
                         min_support, max_patterns, typed=store.kind != "tkg")

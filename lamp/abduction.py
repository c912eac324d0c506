"""Abductive reasoning with an LLM (LAMP's second stage): few-shot prompts, demonstrations, a tolerant parser.

For every proposed event (the *effect*), the LLM is asked for 3 to 5 events
that could have caused it.  The prompt is built from the data set's schema:

1. a system message describing the domain and the task, and the reply format;
2. a message listing the allowed relation names (the most frequent ones when
   the data set has many);
3. ``k`` demonstrations built from the training split, not written by hand:
   an effect event (user turn) and, as its causes, real earlier events linked
   to it — sharing an entity, within a time window, most related first —
   rendered exactly in the reply format (assistant turn);
4. the query effect event, with no field that would leak the answer.

The demonstrations, the query and the parser use one field vocabulary
(``event type``, ``subject name``, ``object name``, ``time``), and the parser
also accepts the variants LLMs produce (``event predicate``, ``relation``,
``predicate``, numbered or bulleted blocks, ``subject | relation | object``
lines, markdown, chatter).  Replies that parse to zero causes are counted; a
run where most do raises a loud warning (the authors' code silently parsed
nothing because its demonstrations and parser disagreed).

``Abductor(store, client=None)`` is the paper's "no LLM" ablation through the
same code path: each effect's own text is its only cause.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np

from lamp.data import EventStore
from lamp.text import display_name, event_text, format_time, normalize_name

__all__ = ["Cause", "ParseStats", "Abductor", "ReviewAbductor", "parse_causes", "ZeroCauseWarning"]


class ZeroCauseWarning(UserWarning):
    """Most LLM replies of a run parsed to zero causes: check the prompts and the model."""


@dataclass
class Cause:
    """One generated cause: its text, and ids when its names resolve against the data set."""

    text: str
    relation: str | None = None
    subject: str | None = None
    object: str | None = None
    time: str | None = None
    relation_id: int | None = None
    subject_id: int | None = None
    object_id: int | None = None


@dataclass
class ParseStats:
    """Counts of one run: replies, replies with zero causes, failed requests, causes."""

    replies: int = 0
    zero_cause_replies: int = 0
    failed_requests: int = 0
    causes: int = 0

    def as_dict(self) -> dict:
        return dict(vars(self))


_FIELD_PATTERNS = [
    ("relation", r"(?:event[ _]?type|event[ _]?predicate|predicate|relation(?:ship)?|action|event|"
                 r"(?:product[ _]?)?category)"),
    ("subject", r"(?:subject(?:[ _]?name)?|actor(?:[ _]?1)?|source)"),
    ("object", r"(?:object(?:[ _]?name)?|target|actor[ _]?2)"),
    ("time", r"(?:time|date|when)"),
    ("headline", r"(?:headline|(?:review[ _]?)?title|summary|review)"),
]
_FIELD_RE = re.compile(r"^\W*(?P<name>" + "|".join(f"(?P<{n}>{p})" for n, p in _FIELD_PATTERNS) +
                       r")\W*?\s*[:=\-–]\s*(?P<value>.+?)\s*$", re.IGNORECASE)
_ITEM_RE = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*•]|#+)\s+")
_DATE_RE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")


def _clean(value: str) -> str:
    value = re.sub(r"[*_`]+", "", value).strip().strip('"\'').strip().rstrip(";,.").strip()
    return re.sub(r"\s+", " ", value)


def _blocks(text: str) -> list[list[str]]:
    """Split a reply into items: numbered/bulleted starts or blank lines begin a new item.  The first
    line of an item that began with a number or bullet is marked with a leading NUL."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        is_item = bool(_ITEM_RE.match(line))
        if is_item and current:
            blocks.append(current)
            current = []
        current.append(("\0" if is_item else "") + _ITEM_RE.sub("", line).strip())
    if current:
        blocks.append(current)
    return blocks


def _merge_field_blocks(blocks: list[list[str]]) -> list[list[str]]:
    """Bulleted field lines ("- event type: ..." then "- subject name: ...") belong to one item:
    a new item starts only when a field repeats."""
    merged: list[list[str]] = []
    seen: set[str] = set()
    for block in blocks:
        fields = {_field_name(line) for line in block} - {None}
        only_fields = all(_field_name(line) for line in block)
        if merged and only_fields and len(block) == 1 and not (fields & seen) and seen:
            merged[-1].extend(block)
            seen |= fields
            continue
        merged.append(list(block))
        seen = set(fields)
    return merged


def _field_name(line: str) -> str | None:
    m = _FIELD_RE.match(line)
    if not m:
        return None
    return next(n for n, _ in _FIELD_PATTERNS if m.group(n))


def parse_causes(text: str | None, relation_index: dict | None = None, entity_index: dict | None = None,
                 max_causes: int = 5) -> list[Cause]:
    """Parse an LLM reply into causes.

    Parameters
    ----------
    text : str
        The reply.
    relation_index, entity_index : dict, optional
        ``normalize_name(name) -> id`` maps; names that resolve get ids.
    max_causes : int
        Keep at most this many causes.

    Returns
    -------
    list of Cause
        Each with ``.text`` (``subject | relation | object``, or the item's
        own words when it has no fields).  Items without any letter (e.g. a
        run of dates) are dropped.
    """
    if not text:
        return []
    causes: list[Cause] = []
    for block in _merge_field_blocks(_blocks(text)):
        is_item = block[0].startswith("\0")
        block = [line.lstrip("\0") for line in block]
        values: dict[str, str] = {}
        free: list[str] = []
        for line in block:
            m = _FIELD_RE.match(line)
            name = _field_name(line)
            if m and name and name not in values:
                values[name] = _clean(m.group("value"))
            else:
                free.append(_clean(line))
        if not values and free:
            line = " ".join(free)
            parts = [p.strip() for p in re.split(r"\s*[|;]\s*", line) if p.strip()]
            if len(parts) >= 3:
                values = {"subject": parts[0], "relation": parts[1], "object": parts[2]}
                if len(parts) > 3:
                    values["time"] = parts[3]
        core = [values.get("subject"), values.get("relation"), values.get("object")]
        if any(core):
            cause_text = " | ".join([c for c in core if c] + ([values["headline"]] if values.get("headline") else []))
        elif values.get("headline"):
            cause_text = values["headline"]
        elif is_item:
            cause_text = " ".join(free)
        else:
            continue  # unstructured chatter is not a cause
        cause_text = _clean(cause_text)
        if not re.search(r"[A-Za-z]", _DATE_RE.sub("", cause_text)):
            continue
        if cause_text.lower().startswith(("here are", "sure", "the following", "possible cause", "causes:")) \
                and not any(core):
            continue
        cause = Cause(text=cause_text, relation=values.get("relation"), subject=values.get("subject"),
                      object=values.get("object"), time=values.get("time"))
        if relation_index and cause.relation:
            cause.relation_id = relation_index.get(normalize_name(cause.relation))
        if entity_index:
            if cause.subject:
                cause.subject_id = entity_index.get(normalize_name(cause.subject))
            if cause.object:
                cause.object_id = entity_index.get(normalize_name(cause.object))
        causes.append(cause)
        if len(causes) >= max_causes:
            break
    return causes


_SYSTEM = (
    "You are an expert analyst of {domain}. Events are described by the fields: event type (the relation), "
    "subject name, object name and time.\n"
    "Given an effect event, list {low} to {high} earlier events that plausibly caused it. Every cause must have "
    "happened before the effect event. Answer with a numbered list and nothing else, each item in exactly this "
    "form:\n"
    "1. event type: <one of the allowed event types>\n"
    "   subject name: <who acts>\n"
    "   object name: <who is acted upon>\n"
    "   time: <YYYY-MM-DD>"
)


class Abductor:
    """Builds abductive prompts for a knowledge-graph data set and parses the LLM's causes.

    Parameters
    ----------
    store : EventStore
        A temporal knowledge graph (demonstrations come from ``store.train``).
    client : lamp.llm.ChatClient, optional
        The LLM; ``None`` is the "no LLM" ablation (the effect's own text is its only cause).
    num_shots : int
        Demonstrations per prompt (default 8).
    seed : int
        Seed of the deterministic choice of demonstrations.
    max_listed_relations : int
        The allowed-relations message lists the most frequent relations up to this many.
    window : float, optional
        Causes of a demonstration are at most this long before the effect (time
        units of the data set); default: 30 time steps.
    domain : str
        The domain named in the system message.
    """

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0,
                 max_listed_relations: int = 40, window: float | None = None, max_causes: int = 5,
                 domain: str = "international relations and political events"):
        if not isinstance(store, EventStore) or store.kind != "tkg":
            raise TypeError("Abductor needs a temporal knowledge graph EventStore")
        if num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots}")
        self.store, self.client = store, client
        self.num_shots, self.seed, self.max_causes, self.domain = int(num_shots), int(seed), max_causes, domain
        self.entities = [display_name(n) for n in store.entity_names]
        self.relations = [display_name(n) for n in store.relation_names]
        self.relation_index = {normalize_name(n): i for i, n in enumerate(store.relation_names)}
        self.entity_index = {normalize_name(n): i for i, n in enumerate(store.entity_names)}
        train = store.train.quadruples()
        counts = np.bincount(train[:, 1], minlength=store.num_relations)
        top = np.argsort(-counts, kind="stable")[:max_listed_relations]
        self.listed_relations = [self.relations[r] for r in sorted(top)]
        gaps = np.diff(np.unique(store.train.times))
        step = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
        self.window = float(window) if window is not None else 30.0 * step
        self.demonstrations = self._demonstrations(train)
        self.stats = ParseStats()

    # ------------------------------------------------------------------ rendering

    def _time(self, t: float) -> str:
        return format_time(t, self.store.time_unit, self.store.time_origin)

    def render_event(self, event, include_time: bool = True) -> str:
        """The fields of one event (s, r, o, t) in the reply format."""
        s, r, o, t = (int(event[0]), int(event[1]), int(event[2]), float(event[3]))
        lines = [f"event type: {self.relations[r]}", f"subject name: {self.entities[s]}",
                 f"object name: {self.entities[o]}"]
        if include_time:
            lines.append(f"time: {self._time(t)}")
        return "\n".join(lines)

    def event_text(self, event) -> str:
        """One-line text of an event (the text retrieval matches against)."""
        s, r, o = int(event[0]), int(event[1]), int(event[2])
        return event_text(self.entities[s], self.relations[r], self.entities[o])

    # ------------------------------------------------------------------ demonstrations

    def _demonstrations(self, train: np.ndarray) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """k (effect, causes) pairs from the training split: causes share an entity with the effect,
        lie within the window before it, both entities shared first, then the most recent."""
        if self.num_shots == 0:
            return []
        rng = np.random.default_rng(self.seed)
        times = train[:, 3].astype(float)
        by_entity: dict[int, list[int]] = {}
        for i, (s, _, o, _) in enumerate(train):
            by_entity.setdefault(int(s), []).append(i)
            if o != s:
                by_entity.setdefault(int(o), []).append(i)
        chosen: list[tuple[np.ndarray, list[np.ndarray]]] = []
        used_relations: set[int] = set()
        for i in rng.permutation(len(train)):
            effect = train[i]
            s, r, o, t = int(effect[0]), int(effect[1]), int(effect[2]), times[i]
            if r in used_relations and len(used_relations) < self.store.num_relations:
                continue  # vary the demonstrated event types
            pool = set(by_entity.get(s, [])) | set(by_entity.get(o, []))
            linked = [j for j in pool if t - self.window <= times[j] < t]
            if len(linked) < 3:
                continue
            both = {j for j in linked if {int(train[j][0]), int(train[j][2])} == {s, o}}
            linked.sort(key=lambda j: (j not in both, -times[j], j))
            causes, seen = [], set()
            for j in linked:
                key = tuple(train[j][:3])
                if key in seen or key == (s, r, o):
                    continue
                seen.add(key)
                causes.append(train[j])
                if len(causes) == 3:
                    break
            if len(causes) < 3:
                continue
            chosen.append((effect, sorted(causes, key=lambda c: c[3])))
            used_relations.add(r)
            if len(chosen) == self.num_shots:
                break
        return chosen

    # ------------------------------------------------------------------ prompts

    def build_prompt(self, effect, split: str = "test") -> list[dict]:
        """The chat messages asking for the causes of ``effect`` = (subject, relation, object, time).

        ``split`` is accepted for the interface shared with :class:`ReviewAbductor` (a knowledge-graph
        effect carries everything the prompt shows)."""
        messages = [{"role": "system", "content": _SYSTEM.format(domain=self.domain, low=3, high=5)},
                    {"role": "user", "content": "Allowed event types: " + "; ".join(self.listed_relations) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo_effect, causes in self.demonstrations:
            messages.append({"role": "user", "content": "Effect event:\n" + self.render_event(demo_effect)})
            items = [f"{k + 1}. " + self.render_event(c).replace("\n", "\n   ") for k, c in enumerate(causes)]
            messages.append({"role": "assistant", "content": "\n".join(items)})
        messages.append({"role": "user", "content": "Effect event:\n" + self.render_event(effect)})
        return messages

    # ------------------------------------------------------------------ the oracle abducer (a diagnostic)

    def oracle_replies(self, effects, is_true, split: str = "test", seed: int = 0, num_causes: int = 3) -> list[str]:
        """What a perfect abducer would answer, in the reply format, for each effect (s, r, o, t).

        For a true effect: its ``num_causes`` most related real earlier events (sharing its subject or
        object; the same pair first, then the same relation, then its object; most recent first).  For
        any other effect: invented events (random entities and relations).  It reads which effect is true,
        so what it gives is a ceiling of this proposer, matching and ranker, never a result.
        """
        quads, times = self.store.stream()
        effects = np.asarray(effects)
        rng = np.random.default_rng(seed)
        entities = np.concatenate([quads[:, 0], quads[:, 2]])
        rows = np.concatenate([np.arange(len(quads))] * 2)
        order = np.lexsort((rows, entities))
        ent_sorted, row_sorted = entities[order], rows[order]
        starts = np.searchsorted(ent_sorted, np.arange(self.store.num_entities + 1))
        out = []
        for effect, true in zip(effects, is_true):
            s, r, o, t = int(effect[0]), int(effect[1]), int(effect[2]), float(effect[3])
            if true:
                pool = np.unique(np.concatenate([row_sorted[starts[e]:starts[e + 1]] for e in {s, o}]))
                pool = pool[times[pool] < t]
                ev = quads[pool]
                pair = ((ev[:, 0] == s) & (ev[:, 2] == o)) | ((ev[:, 0] == o) & (ev[:, 2] == s))
                score = 4 * pair + 2 * (ev[:, 1] == r) + ((ev[:, 0] == o) | (ev[:, 2] == o))
                picked, seen = [], set()
                for i in np.lexsort((-times[pool], -score)):
                    key = tuple(ev[i, :3])
                    if key not in seen:
                        seen.add(key)
                        picked.append((*ev[i, :3], times[pool[i]]))
                    if len(picked) == num_causes:
                        break
                causes = sorted(picked, key=lambda c: c[3])
            else:
                causes = [(int(rng.integers(self.store.num_entities)), int(rng.integers(self.store.num_relations)),
                           int(rng.integers(self.store.num_entities)), t - float(rng.uniform(0.0, self.window)))
                          for _ in range(num_causes)]
            out.append("\n".join(f"{k + 1}. " + self.render_event(c).replace("\n", "\n   ")
                                  for k, c in enumerate(causes)))
        return out

    # ------------------------------------------------------------------ running

    def abduce(self, effects: np.ndarray, split: str = "test") -> list[list[Cause]]:
        """Causes of every effect event (rows (subject, relation, object, time)); ``split`` as in
        :meth:`build_prompt`.

        With a client, identical prompts are asked once; failed requests give
        no causes (counted in ``stats.failed_requests``).  Without a client,
        each effect's own text is its single cause.
        """
        effects = np.asarray(effects)
        if effects.ndim != 2 or effects.shape[1] != 4:
            raise ValueError(f"effects must be an array (n, 4) of (subject, relation, object, time), got "
                             f"{effects.shape}")
        if self.client is None:
            return [[Cause(text=self.event_text(e))] for e in effects]
        return self._ask([self.build_prompt(e) for e in effects])

    def _ask(self, prompts: list) -> list[list[Cause]]:
        """The client's answers to ``prompts``, parsed; identical prompts are asked (and parsed) once."""
        import json

        first: dict[str, int] = {}
        where = [first.setdefault(json.dumps(p, sort_keys=True), len(first)) for p in prompts]
        unique = [None] * len(first)
        for p, w in zip(prompts, where):
            unique[w] = p
        parsed = self._parse_results(self.client.chat(unique))
        return [parsed[w] for w in where]

    def _parse_results(self, results) -> list[list[Cause]]:
        out = []
        for result in results:
            if result.text is None:
                self.stats.failed_requests += 1
                out.append([])
                continue
            causes = parse_causes(result.text, self.relation_index, self.entity_index, self.max_causes)
            self.stats.replies += 1
            self.stats.causes += len(causes)
            self.stats.zero_cause_replies += not causes
            out.append(causes)
        if self.stats.replies and self.stats.zero_cause_replies > self.stats.replies / 2:
            warnings.warn(f"{self.stats.zero_cause_replies} of {self.stats.replies} LLM replies parsed to ZERO "
                          "causes: the model does not follow the reply format (look at a few replies in the cache)",
                          ZeroCauseWarning, stacklevel=2)
        return out


_REVIEW_SYSTEM = (
    "You are an expert analyst of {domain}. Each event is one review a customer wrote, described by the "
    "fields: category (the product's category), title, time and summary.\n"
    "Given the category and time of a customer's next review, list {low} to {high} earlier reviews by the same "
    "customer that plausibly led to it. Every cause must have happened before it. Answer with a numbered list and "
    "nothing else, each item in exactly this form:\n"
    "1. category: <one of the allowed categories>\n"
    "   title: <the review's title>\n"
    "   time: <YYYY-MM-DD>\n"
    "   summary: <one sentence about the product and the opinion>"
)


class ReviewAbductor(Abductor):
    """Abductive prompts for typed event sequences with text (the Amazon reviews data).

    An effect event is a (sequence index, event index) of ``split``; it is shown
    by its category and time only (its own title and review would reveal
    it).  Demonstrations come from the training split: the last review of a
    customer as the effect and that customer's earlier reviews, most recent
    first, as its causes.  Causes are parsed by :func:`parse_causes` (the
    ``category`` field resolves to a type id through ``relation_index``).
    """

    def __init__(self, store: EventStore, client=None, num_shots: int = 8, seed: int = 0, max_causes: int = 5,
                 summary_chars: int = 160, domain: str = "online shopping and product reviews"):
        if not isinstance(store, EventStore) or store.kind != "typed" or store.train is None:
            raise TypeError("ReviewAbductor needs typed sequences (an EventStore of kind 'typed' with a train split)")
        if num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots}")
        self.store, self.client = store, client
        self.num_shots, self.seed, self.max_causes, self.domain = int(num_shots), int(seed), max_causes, domain
        self.summary_chars = int(summary_chars)
        names = store.type_names or [f"type {k}" for k in range(store.num_types)]
        self.types = [display_name(n) for n in names]
        self.relation_index = {normalize_name(n): i for i, n in enumerate(names)}
        self.entity_index = {}
        self.listed_relations = self.types
        self.stats = ParseStats()
        self.demonstrations = self._review_demonstrations()

    def _review(self, seqs, i: int, with_text: bool = True, mark: int | None = None, time: float | None = None) -> str:
        with_text = with_text and seqs.texts is not None
        title = str(seqs.fields["review_title"][i]) if with_text and "review_title" in seqs.fields else ""
        lines = [f"category: {self.types[int(seqs.marks[i] if mark is None else mark)]}"]
        if with_text and title:
            lines.append(f"title: {title}")
        lines.append(f"time: {self._time(seqs.times[i] if time is None else time)}")
        if with_text:
            body = seqs.texts[i][len(title):].strip(" .") if seqs.texts[i].startswith(title) else seqs.texts[i]
            summary = " ".join(body.split())[:self.summary_chars]
            if summary:
                lines.append(f"summary: {summary}")
        return "\n".join(lines)

    def _review_demonstrations(self):
        if self.num_shots == 0:
            return []
        train = self.store.train
        rng = np.random.default_rng(self.seed)
        chosen = []
        for s in rng.permutation(train.num_sequences):
            b, e = int(train.offsets[s]), int(train.offsets[s + 1])
            if e - b < 3:
                continue
            effect = e - 1
            causes = list(range(max(b, effect - 3), effect))[::-1]
            chosen.append((effect, causes))
            if len(chosen) == self.num_shots:
                break
        return chosen

    def build_prompt(self, effect, split: str = "test") -> list[dict]:
        """Messages for the effect (sequence index, event index[, type[, time]]) of ``split``.

        The effect is shown by its category and time only; ``type`` and
        ``time``, when given, replace the event's own (a proposal is a
        candidate type, or a candidate time, for that event).
        """
        seqs = getattr(self.store, split)
        if seqs is None:
            raise ValueError(f"the data set has no {split} split")
        s, j = int(effect[0]), int(effect[1])
        mark = int(effect[2]) if len(effect) > 2 else None
        time = float(effect[3]) if len(effect) > 3 else None
        if mark is not None and not 0 <= mark < len(self.types):
            raise ValueError(f"effect type {mark} is out of range for {len(self.types)} types")
        if not 0 <= s < seqs.num_sequences or not 0 <= j < seqs.lengths[s]:
            raise ValueError(f"effect ({s}, {j}) is not an event of the {split} split")
        train = self.store.train
        messages = [{"role": "system", "content": _REVIEW_SYSTEM.format(domain=self.domain, low=2, high=4)},
                    {"role": "user", "content": "Allowed categories: " + "; ".join(self.types) + "."},
                    {"role": "assistant", "content": "Understood."}]
        for demo_effect, causes in self.demonstrations:
            messages.append({"role": "user", "content": "Next review:\n" + self._review(train, demo_effect, False)})
            items = [f"{k + 1}. " + self._review(train, c).replace("\n", "\n   ") for k, c in enumerate(causes)]
            messages.append({"role": "assistant", "content": "\n".join(items)})
        i = int(seqs.offsets[s]) + j
        messages.append({"role": "user", "content": "Next review:\n" + self._review(seqs, i, False, mark, time)})
        return messages

    def oracle_replies(self, effects, is_true, split: str = "test", seed: int = 0, num_causes: int = 3) -> list[str]:
        """What a perfect abducer would answer for each effect (sequence index, event index, type, time) of
        ``split``: for a true effect, its sequence's earlier reviews (the candidate's category first, then the
        most recent); for any other effect, invented reviews.  A ceiling, never a result (it reads the truth).
        """
        seqs = getattr(self.store, split)
        effects = np.asarray(effects)
        rng = np.random.default_rng(seed)
        out = []
        for effect, true in zip(effects, is_true):
            s, j, mark, t = int(effect[0]), int(effect[1]), int(effect[2]), float(effect[3])
            if true:
                b = int(seqs.offsets[s])
                history = np.arange(b, b + j)
                same = seqs.marks[history] == mark
                picked = history[np.lexsort((-history, ~same))][:num_causes]
                items = [self._review(seqs, int(i)) for i in sorted(picked)]
            else:
                items = [f"category: {self.types[int(rng.integers(len(self.types)))]}\ntitle: Invented item\n"
                         f"time: {self._time(t - float(rng.uniform(1.0, 30.0)))}\nsummary: nothing that happened"
                         for _ in range(num_causes)]
            out.append("\n".join(f"{k + 1}. " + item.replace("\n", "\n   ") for k, item in enumerate(items)))
        return out

    def event_text(self, event) -> str:
        return self.types[int(event[2])] if len(event) > 2 else ""

    def abduce(self, effects, split: str = "test") -> list[list[Cause]]:
        """Causes of every effect (rows (sequence index, event index[, type[, time]])) of ``split``.

        Without a client (the "no LLM" ablation) each effect's own category is
        its single cause: the ``type`` column when given, else the event's own
        type.
        """
        effects = np.asarray(effects)
        if effects.ndim != 2 or effects.shape[1] < 2:
            raise ValueError(f"effects must be an array (n, >= 2) of (sequence index, event index), got "
                             f"{effects.shape}")
        if self.client is None:
            seqs = getattr(self.store, split)
            marks = effects[:, 2].astype(np.int64) if effects.shape[1] > 2 else \
                seqs.marks[seqs.offsets[effects[:, 0].astype(np.int64)] + effects[:, 1].astype(np.int64)]
            return [[Cause(text=self.types[int(k)])] for k in marks]
        return self._ask([self.build_prompt(e, split) for e in effects])

"""Abductive reasoning with an LLM (LAMP's second stage): few-shot prompts, demonstrations, a tolerant parser.

- :mod:`lamp.abduction.kg` (:class:`Abductor`) and :mod:`lamp.abduction.reviews` (:class:`ReviewAbductor`):
  the prompts for knowledge graphs and for typed sequences with text, on one base class
  (:mod:`lamp.abduction.base`);
- :mod:`lamp.abduction.parse` (:func:`parse_causes`): a reply to causes, tolerant of the styles LLMs write
  (field-name synonyms, numbered or bulleted items, bold and ``#`` headings, one-line fields,
  ``subject | relation | object`` lines, markdown tables, JSON — fenced, wrapped or cut short —, chatter;
  see docs/abduction.md), read by :mod:`lamp.abduction.reply` and :mod:`lamp.abduction.reply_json`;
- :mod:`lamp.abduction.schema` (:func:`cause_list_schema`): the JSON schema of a structured reply;
- :mod:`lamp.abduction.oracle`: the oracle abducer (a diagnostic ceiling);
- abduction per event type (``abduction.unit: event_type``): :mod:`lamp.abduction.patterns` (cause
  patterns: reading them, instantiating them per candidate), :mod:`lamp.abduction.event_types` (one prompt
  per event type) and :mod:`lamp.abduction.rules` (patterns mined from data as temporal rules).

Replies that parse to zero causes are counted; a run where most do raises a loud warning (the authors'
code silently parsed nothing because its demonstrations and parser disagreed).  An abductor without a
client is the paper's "no LLM" ablation through the same code path: each effect's own text is its only
cause.
"""
from lamp.abduction.base import BaseAbductor
from lamp.abduction.event_types import EventTypeAbductor
from lamp.abduction.kg import Abductor
from lamp.abduction.parse import Cause, ParseStats, ZeroCauseWarning, parse_causes
from lamp.abduction.patterns import Pattern, instantiate, parse_patterns
from lamp.abduction.reviews import ReviewAbductor
from lamp.abduction.rules import mine_patterns, mine_split
from lamp.abduction.schema import cause_list_schema, pattern_list_schema

__all__ = ["Cause", "ParseStats", "BaseAbductor", "Abductor", "ReviewAbductor", "parse_causes", "cause_list_schema",
           "ZeroCauseWarning", "Pattern", "parse_patterns", "instantiate", "EventTypeAbductor", "mine_patterns",
           "mine_split", "pattern_list_schema"]

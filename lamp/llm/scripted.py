"""A chat client that answers from a given list of replies, in order: the oracle abducer's transport.

It lets diagnostic replies (``abduction.backend: oracle``) go through exactly
the path an LLM's do: the abductor's prompts, the reply parser, matching and
ranking.  Nothing is sent anywhere.
"""
from __future__ import annotations

import json
from typing import Sequence

from lamp.llm.client import ChatResult, RunStats

__all__ = ["ScriptedClient"]


class ScriptedClient:
    """Answers each request with the reply given for the same messages (``replies``: a list of
    ``(messages, reply)``; for messages listed twice the later reply wins)."""

    def __init__(self, replies: Sequence[tuple[list, str]]):
        self.replies = {_key(messages): text for messages, text in replies}
        self.stats = RunStats()

    def chat(self, requests: Sequence[list[dict]]) -> list[ChatResult]:
        keys = [_key(messages) for messages in requests]
        missing = sum(1 for k in keys if k not in self.replies)
        if missing:
            raise ValueError(f"ScriptedClient has no reply for {missing} of {len(keys)} requests")
        self.stats.misses += len(keys)
        return [ChatResult(self.replies[k]) for k in keys]


def _key(messages) -> str:
    return json.dumps(messages, sort_keys=True)

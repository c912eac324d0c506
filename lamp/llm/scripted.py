"""A chat client that answers from a given list of replies, in order: the oracle abducer's transport.

It lets diagnostic replies (``abduction.backend: oracle``) go through exactly
the path an LLM's do: the abductor's prompts, the reply parser, matching and
ranking.  Nothing is sent anywhere.
"""
from __future__ import annotations

from typing import Sequence

from lamp.llm.client import ChatResult, RunStats

__all__ = ["ScriptedClient"]


class ScriptedClient:
    """Answers the i-th request of its next ``chat`` call with ``replies[i]``."""

    def __init__(self, replies: Sequence[str]):
        self.replies = list(replies)
        self.stats = RunStats()

    def chat(self, requests: Sequence[list[dict]]) -> list[ChatResult]:
        requests = list(requests)
        if len(requests) != len(self.replies):
            raise ValueError(f"ScriptedClient holds {len(self.replies)} replies but was asked {len(requests)} requests")
        self.stats.misses += len(requests)
        return [ChatResult(text) for text in self.replies]

"""LLM access for abduction: an OpenAI-compatible client over the C transport, the same requests as
batch jobs (OpenAI's Batch API), a durable SQLite cache, a local llama.cpp backend and a fault-injecting
test server."""
from lamp.llm.batch import BatchClient
from lamp.llm.cache import AnswerCache, request_key
from lamp.llm.client import ChatClient, ChatResult, LLMError, ReplayMissError, RunStats

__all__ = ["AnswerCache", "BatchClient", "ChatClient", "ChatResult", "LLMError", "ReplayMissError", "RunStats",
           "request_key", "LocalServer"]


def __getattr__(name):
    if name == "LocalServer":
        from lamp.llm.local import LocalServer

        return LocalServer
    raise AttributeError(f"module 'lamp.llm' has no attribute {name!r}")

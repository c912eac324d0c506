"""Stage 2: the LLM's causes of every candidate of every query (through the answer cache)."""
from __future__ import annotations

import os

import numpy as np

from lamp.errors import LLMError
from lamp.pipeline.propose import proposals_fingerprint
from lamp.pipeline.tasks import Queries, StageContext, excludes_inserted

__all__ = ["effects", "make_abductor", "make_client", "oracle_client", "abduce"]

# abduction settings that change what is asked or who answers (and so the stage's fingerprint)
ANSWER_SETTINGS = ("backend", "base_url", "model", "model_path", "num_shots", "temperature", "max_tokens")


def effects(ctx: StageContext, q: Queries, prop: dict) -> np.ndarray:
    """The effect event of every candidate, (Q * M, 4) rows.

    Knowledge graphs: int64 (subject, relation, object, time) with the
    candidate in the asked column.  Typed sequences: float64 (sequence index,
    event index, candidate type, candidate time).
    """
    candidates = prop["candidates"]
    n, m = candidates.shape
    flat = candidates.reshape(-1)
    if ctx.kind == "typed":
        rows = np.zeros((n * m, 4), dtype=np.float64)
        rows[:, 0] = np.repeat(q.events[:, 0], m)
        rows[:, 1] = np.repeat(q.events[:, 1], m)
        rows[:, 2] = flat
        rows[:, 3] = prop["times"].reshape(-1)
        return rows
    ev = np.repeat(q.events, m, axis=0).copy()
    if ctx.task == "object":
        ev[:, 2] = flat
    elif ctx.task == "pair":
        ne = ctx.store.num_entities
        ev[:, 1], ev[:, 2] = flat // ne, flat % ne
    else:
        ev[:, 1] = flat
    return ev


def make_abductor(ctx: StageContext):
    """The prompt builder and reply parser of the data kind (no client yet)."""
    from lamp.abduction import Abductor, ReviewAbductor

    cls = Abductor if ctx.kind == "tkg" else ReviewAbductor
    return cls(ctx.store, None, num_shots=int(ctx.settings["abduction"]["num_shots"]), seed=ctx.seed)


def make_client(ctx: StageContext, settings: dict, prompts: list):
    """The chat client of the configured backend and the local server it started (or None).

    The local llama.cpp server is started only when the cache misses a prompt.
    """
    from lamp.llm import AnswerCache, ChatClient, request_key

    backend = settings["backend"]
    cache_path = ctx.resolve_path(settings["cache"]) if settings["cache"] else ctx.path("llm_cache.sqlite")
    cache = AnswerCache(cache_path)
    sampling = {"temperature": settings["temperature"], "max_tokens": settings["max_tokens"]}
    common = dict(cache=cache, concurrency=settings["concurrency"], max_retries=settings["max_retries"],
                  timeout=settings["timeout"], temperature=settings["temperature"], max_tokens=settings["max_tokens"],
                  verify_tls=settings["verify_tls"])
    if backend == "openai":
        if not settings["base_url"] or not settings["model"]:
            raise LLMError("abduction.backend 'openai' needs abduction.base_url and abduction.model")
        return ChatClient(settings["base_url"], settings["model"], api_key_env=settings["api_key_env"], **common), None
    from lamp.llm.local import DEFAULT_MODEL_NAME, LocalServer, default_model_path

    model = settings["model"] or (os.path.basename(settings["model_path"]) if settings["model_path"]
                                  else DEFAULT_MODEL_NAME)
    if backend == "replay":
        return ChatClient("http://127.0.0.1:9/v1", model, replay=True, **common), None
    model_path = settings["model_path"] or default_model_path()
    missing = len(prompts) - len(cache.get_many({request_key(model, p, sampling) for p in prompts}))
    if missing == 0:
        return ChatClient("http://127.0.0.1:9/v1", model, replay=True, **common), None
    ctx.say(f"abduction: {missing} prompts are not cached; starting the local llama.cpp server "
            f"({os.path.basename(model_path)})")
    server = LocalServer(model_path).start()
    return ChatClient(server.base_url, model, **dict(common, concurrency=1)), server


def oracle_client(ctx: StageContext, abductor, effects_of_split: np.ndarray, truth: np.ndarray, split: str):
    """The oracle abducer's client for one split: replies naming real earlier events for the true
    candidate and invented ones for the others (:meth:`lamp.abduction.Abductor.oracle_replies`)."""
    from lamp.llm.scripted import ScriptedClient

    m = len(effects_of_split) // max(1, len(truth))
    is_true = (np.arange(m)[None, :] == np.asarray(truth)[:, None]).reshape(-1)
    return ScriptedClient(abductor.oracle_replies(effects_of_split, is_true, split=split, seed=ctx.seed))


def uncovered_test_candidates(ctx: StageContext, proposals: dict) -> np.ndarray | None:
    """With ``evaluation.skip_uncovered`` (default true), a flag per test candidate (Q * M) whose query's
    truth is not among its proposals: no metric can change there (MR and the rest are computed over covered
    queries), so those candidates are not sent to the LLM.  None when nothing is skipped (and for
    ``next_time``, whose test queries have no true candidate)."""
    if not ctx.settings["evaluation"].get("skip_uncovered", True) or ctx.task == "next_time":
        return None
    test = proposals["test"]
    uncovered = np.repeat(test["truth"] < 0, test["candidates"].shape[1])
    return uncovered if uncovered.any() else None


def abduce(ctx: StageContext, queries: dict[str, Queries], proposals: dict, abductor) -> dict:
    """LLM causes of every candidate of every query: ``{split: list (Q * M) of list of cause texts}``.

    ``abduction.backend: oracle`` answers with :func:`oracle_client` instead of an LLM (a diagnostic
    ceiling); every other backend goes through :func:`make_client` and the answer cache.
    """
    settings = ctx.settings["abduction"]
    effs = {split: effects(ctx, q, proposals[split]) for split, q in queries.items()}
    keep = {k: settings.get(k) for k in ANSWER_SETTINGS}
    oracle = settings["backend"] == "oracle"
    skip = None if oracle else uncovered_test_candidates(ctx, proposals)
    max_failed = float(settings.get("max_failed_fraction", 0.0) or 0.0)

    asks = {split: ~skip if split == "test" and skip is not None else np.ones(len(ev), dtype=bool)
            for split, ev in effs.items()}
    if excludes_inserted(ctx) and not oracle:  # training queries the ranker will not train on: nothing to ask
        asks["train"] = ~np.repeat(proposals["train"]["inserted"], proposals["train"]["candidates"].shape[1])

    def compute():
        client = server = None
        if not oracle:
            prompts = [abductor.build_prompt(e, split=split) for split, ev in effs.items() for e in ev[asks[split]]]
            client, server = make_client(ctx, settings, prompts)
        try:
            out, stats, failed, asked = {}, [], {}, {}
            for split, ev in effs.items():
                ask = asks[split]
                if oracle:  # the oracle costs nothing: it answers every candidate
                    client = oracle_client(ctx, abductor, ev, proposals[split]["truth"], split)
                skipped = int((~ask).sum())
                ctx.say(f"abduction: {int(ask.sum())} prompts for the {split} candidates" +
                        (f" ({skipped} skipped: their query's truth is not among the proposals, so no metric "
                         "can change)" if skipped else "") + (" (oracle abducer: a diagnostic ceiling)" if oracle else ""))
                abductor.client = client
                before = abductor.stats.failed_requests
                causes = [[] for _ in range(len(ev))]
                for i, cs in zip(np.flatnonzero(ask), abductor.abduce(ev[ask], split=split)):
                    causes[i] = [c.text for c in cs]
                out[f"{split}_causes"] = causes
                failed[split], asked[split] = abductor.stats.failed_requests - before, int(ask.sum())
                stats.append(str(client.stats))
            out["stats"] = {**abductor.stats.as_dict(), "llm": "; ".join(stats) if oracle else stats[-1],
                            "failed_by_split": failed, "skipped_uncovered": 0 if skip is None else int(skip.sum())}
            total_failed, total = sum(failed.values()), sum(asked.values())
            if total_failed > max_failed * total:
                raise LLMError(f"abduction: {total_failed} of {total} LLM requests failed ("
                               + ", ".join(f"{k} {v}" for k, v in failed.items()) + "); the stage is not kept. "
                               "Every answer received is cached: rerun to send only the failed requests (after "
                               "fixing the server or abduction.base_url), or allow some failures with "
                               "abduction.max_failed_fraction")
            return out
        finally:
            abductor.client = None
            if server is not None:
                server.stop()

    fp_settings = {**keep, "seed": ctx.seed, "effects": effs}
    if skip is not None:
        fp_settings["skip_uncovered"] = True
    if not asks["train"].all():
        fp_settings["skip_inserted"] = True
    out = ctx.stage("abduction", fp_settings, [proposals_fingerprint(proposals)], compute)
    ctx.say(f"abduction: {out['stats']}")
    return {split: out[f"{split}_causes"] for split in queries}

"""Stage 2: the LLM's causes of every candidate of every query (through the answer cache)."""
from __future__ import annotations

import os

import numpy as np

from lamp.errors import LLMError
from lamp.pipeline.propose import proposals_fingerprint
from lamp.pipeline.tasks import Queries, StageContext, excludes_inserted

__all__ = ["effects", "make_abductor", "make_client", "oracle_client", "abduce", "requests", "plan", "plan_text"]

# abduction settings that change what is asked or who answers (and so the stage's fingerprint)
ANSWER_SETTINGS = ("backend", "base_url", "model", "model_path", "num_shots", "temperature", "max_tokens",
                   "response_format")


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
    return cls(ctx.store, None, num_shots=int(ctx.settings.abduction.num_shots), seed=ctx.seed)


def response_schema(ctx: StageContext, settings: dict) -> dict | None:
    """The ``response_format`` requests carry (``abduction.response_format``): ``json_schema`` sends the
    cause list's JSON schema — as OpenAI structured outputs (``{"type": "json_schema", ...}``, which vLLM's
    guided decoding reads too) for ``backend: openai``, and in llama-cpp-python's form (``{"type":
    "json_object", "schema": ...}``: grammar-constrained decoding) for the local llama.cpp server and its
    replays (``backend: local``, or ``replay`` without ``abduction.model``); ``text`` sends none;
    ``auto`` is ``text`` (structured output was measured not to help SmolLM2: docs/abduction.md)."""
    if settings.response_format != "json_schema":
        return None
    from lamp.abduction import cause_list_schema

    schema = cause_list_schema("tkg" if ctx.kind == "tkg" else "review")
    llama_cpp = settings.backend == "local" or (settings.backend == "replay" and not settings.model)
    return {"type": "json_object", "schema": schema} if llama_cpp else schema


def make_client(ctx: StageContext, settings: dict, prompts: list):
    """The chat client of the configured backend and the local server it started (or None).

    The local llama.cpp server is started only when the cache misses a prompt.
    """
    from lamp.llm import AnswerCache, ChatClient, request_key
    from lamp.llm.client import request_params

    backend = settings.backend
    cache_path = ctx.resolve_path(settings.cache) if settings.cache else ctx.path("llm_cache.sqlite")
    cache = AnswerCache(cache_path)
    sampling = request_params(settings.temperature, settings.max_tokens, response_schema(ctx, settings))
    common = dict(cache=cache, concurrency=settings.concurrency, max_retries=settings.max_retries,
                  timeout=settings.timeout, temperature=settings.temperature, max_tokens=settings.max_tokens,
                  verify_tls=settings.verify_tls, response_format=response_schema(ctx, settings))
    if backend == "openai":
        if not settings.base_url or not settings.model:
            raise LLMError("abduction.backend 'openai' needs abduction.base_url and abduction.model")
        return ChatClient(settings.base_url, settings.model, api_key_env=settings.api_key_env, **common), None
    from lamp.llm.local import LocalServer, default_model_path

    model = model_name(settings)
    if backend == "replay":
        return ChatClient("http://127.0.0.1:9/v1", model, replay=True, **common), None
    model_path = settings.model_path or default_model_path()
    missing = len(prompts) - len(cache.get_many({request_key(model, p, sampling) for p in prompts}))
    if missing == 0:
        return ChatClient("http://127.0.0.1:9/v1", model, replay=True, **common), None
    ctx.say(f"abduction: {missing} prompts are not cached; starting the local llama.cpp server "
            f"({os.path.basename(model_path)})")
    server = LocalServer(model_path).start()
    return ChatClient(server.base_url, model, **dict(common, concurrency=1)), server


def oracle_client(ctx: StageContext, abductor, effects_of_split: np.ndarray, truth: np.ndarray, split: str):
    """The oracle abducer's client for one split: replies naming real earlier events for the true
    candidate and invented ones for the others (:func:`lamp.abduction.oracle.oracle_replies`)."""
    from lamp.abduction.oracle import oracle_replies
    from lamp.llm.scripted import ScriptedClient

    m = len(effects_of_split) // max(1, len(truth))
    is_true = (np.arange(m)[None, :] == np.asarray(truth)[:, None]).reshape(-1)
    replies = oracle_replies(abductor, effects_of_split, is_true, split=split, seed=ctx.seed)
    prompts = [abductor.build_prompt(e, split=split) for e in effects_of_split]
    # identical prompts (the same effect event in two queries) are asked once: a true one's reply wins
    order = np.argsort(is_true, kind="stable")
    return ScriptedClient([(prompts[i], replies[i]) for i in order])


def uncovered_test_candidates(ctx: StageContext, proposals: dict) -> np.ndarray | None:
    """With ``evaluation.skip_uncovered`` (default true), a flag per test candidate (Q * M) whose query's
    truth is not among its proposals: no metric can change there (MR and the rest are computed over covered
    queries), so those candidates are not sent to the LLM.  None when nothing is skipped (and for
    ``next_time``, whose test queries have no true candidate)."""
    if not ctx.settings.evaluation.skip_uncovered or ctx.task == "next_time":
        return None
    test = proposals["test"]
    uncovered = np.repeat(test["truth"] < 0, test["candidates"].shape[1])
    return uncovered if uncovered.any() else None


def requests(ctx: StageContext, queries: dict[str, Queries], proposals: dict):
    """What the abduction stage asks: ``(effects, asks, skipped)`` with ``effects[split]`` every candidate's
    effect event, ``asks[split]`` a flag per candidate (False: not sent, see :func:`uncovered_test_candidates`
    and ``ranker.train_on_inserted``) and ``skipped`` the test flags of uncovered queries (or None)."""
    effs = {split: effects(ctx, q, proposals[split]) for split, q in queries.items()}
    skip = uncovered_test_candidates(ctx, proposals)  # the oracle too: its answers there could change nothing
    asks = {split: ~skip if split == "test" and skip is not None else np.ones(len(ev), dtype=bool)
            for split, ev in effs.items()}
    if excludes_inserted(ctx) and "train" in proposals:
        # training queries the ranker will not train on: nothing to ask
        asks["train"] = ~np.repeat(proposals["train"]["inserted"], proposals["train"]["candidates"].shape[1])
    return effs, asks, skip


def abduce(ctx: StageContext, queries: dict[str, Queries], proposals: dict, abductor) -> dict:
    """LLM causes of every candidate of every query: ``{split: list (Q * M) of list of cause texts}``.

    ``abduction.backend: oracle`` answers with :func:`oracle_client` instead of an LLM (a diagnostic
    ceiling); every other backend goes through :func:`make_client` and the answer cache.
    """
    settings = ctx.settings.abduction
    keep = {k: getattr(settings, k) for k in ANSWER_SETTINGS}
    oracle = settings.backend == "oracle"
    effs, asks, skip = requests(ctx, queries, proposals)
    max_failed = settings.max_failed_fraction

    def compute():
        client = server = None
        if not oracle:
            prompts = [abductor.build_prompt(e, split=split) for split, ev in effs.items() for e in ev[asks[split]]]
            client, server = make_client(ctx, settings, prompts)
        try:
            out, stats, failed, asked = {}, [], {}, {}
            for split, ev in effs.items():
                ask = asks[split]
                if oracle:
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
            counts = (f"abduction: {total_failed} of {total} LLM requests failed ("
                      + ", ".join(f"{k} {v}" for k, v in failed.items()) + ")")
            if total_failed > max_failed * total:
                raise LLMError(f"{counts}; the stage is not kept. "
                               "Every answer received is cached: rerun to send only the failed requests (after "
                               "fixing the server or abduction.base_url), or allow some failures with "
                               "abduction.max_failed_fraction")
            if total_failed:
                ctx.say(f"{counts}, within abduction.max_failed_fraction {max_failed:g}: the run goes on without "
                        "their causes, and the stage is not recorded as finished: the next run sends only the failed "
                        "requests")
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
    out = ctx.stage("abduction", fp_settings, [proposals_fingerprint(proposals)], compute,
                    complete=lambda o: not sum(o["stats"]["failed_by_split"].values()))
    ctx.say(f"abduction: {out['stats']}")
    return {split: out[f"{split}_causes"] for split in queries}


# ---------------------------------------------------------------------------- the cost plan

# seconds per request per concurrent slot when abduction.seconds_per_request is not set: SmolLM2-135M on
# 2 cores through llama.cpp (measured, docs/abduction.md); a hosted chat completion of ~100 tokens
SECONDS_PER_REQUEST = {"local": 1.3, "openai": 2.0}
CHARS_PER_TOKEN = 4.0  # the estimate when neither tiktoken nor cached answers calibrate it (English text)


def model_name(settings: dict) -> str:
    """The model name requests carry (and the cache keys on)."""
    if settings.model:
        return settings.model
    from lamp.llm.local import DEFAULT_MODEL_NAME

    return os.path.basename(settings.model_path) if settings.model_path else DEFAULT_MODEL_NAME


def _chars(messages: list) -> int:
    return sum(len(str(m.get("content", ""))) for m in messages)


def _token_counter(settings: dict, model: str):
    """tiktoken's count for OpenAI models when its encoding can be loaded here, else None."""
    if settings.backend != "openai":
        return None, None
    try:
        import tiktoken

        enc = tiktoken.encoding_for_model(model)
    except Exception:  # not installed, unknown model, or no encoding files offline
        return None, None
    # OpenAI's chat format adds ~4 tokens per message and 3 for the reply's priming
    return (lambda msgs: sum(4 + len(enc.encode(str(m.get("content", "")))) for m in msgs) + 3), \
        f"tiktoken {enc.name}"


def plan(ctx: StageContext, queries: dict[str, Queries], proposals: dict, abductor) -> dict:
    """What abduction will cost, without calling the LLM: per split the candidates, the prompts to ask
    (after ``skip_uncovered`` and the training queries the ranker leaves out), the unique ones, how many the
    cache already answers and how many will be sent; prompt and completion token estimates; the cost at
    ``abduction.price_per_mtok`` and the wall time at the configured concurrency."""
    from lamp.llm import AnswerCache, request_key

    settings = ctx.settings.abduction
    backend = settings.backend
    out = {"backend": backend, "splits": {}, "to_send": 0}
    if backend in ("none", "oracle"):
        out["note"] = "no LLM is asked" + (" (the oracle abducer answers from the data)" if backend == "oracle"
                                           else "")
        return out
    model = model_name(settings)
    from lamp.llm.client import request_params

    sampling = request_params(settings.temperature, settings.max_tokens, response_schema(ctx, settings))
    cache_path = ctx.resolve_path(settings.cache) if settings.cache else ctx.path("llm_cache.sqlite")
    cache = AnswerCache(cache_path) if os.path.exists(cache_path) else None
    effs, asks, _ = requests(ctx, queries, proposals)
    counter, method = _token_counter(settings, model)
    send_prompts, cached_rows = [], []
    for split, ev in effs.items():
        prompts = [abductor.build_prompt(e, split=split) for e in ev[asks[split]]]
        keys = {}
        for p in prompts:
            keys.setdefault(request_key(model, p, sampling), p)
        hits = cache.get_many(set(keys)) if cache is not None else {}
        cached_rows += [(keys[k], row) for k, row in hits.items()]
        send_prompts += [p for k, p in keys.items() if k not in hits]
        out["splits"][split] = {"candidates": int(len(ev)), "to_ask": len(prompts), "unique": len(keys),
                                "cached": len(hits), "to_send": len(keys) - len(hits)}
    n = out["to_send"] = len(send_prompts)
    calib = [(row["usage"].get("prompt_tokens"), _chars(p)) for p, row in cached_rows
             if row.get("usage") and row["usage"].get("prompt_tokens")]
    if counter is not None:
        prompt_tokens = sum(counter(p) for p in send_prompts)
    elif calib:
        per_char = sum(t for t, _ in calib) / max(1, sum(c for _, c in calib))
        prompt_tokens = int(round(per_char * sum(_chars(p) for p in send_prompts)))
        method = f"calibrated on {len(calib)} cached answers of this model"
    else:
        prompt_tokens = int(round(sum(_chars(p) for p in send_prompts) / CHARS_PER_TOKEN))
        method = f"estimate: {CHARS_PER_TOKEN:g} characters per token"
    done = [row["usage"].get("completion_tokens") for _, row in cached_rows
            if row.get("usage") and row["usage"].get("completion_tokens")]
    per_reply = sum(done) / len(done) if done else float(settings.max_tokens)
    out["tokens"] = {"prompt": prompt_tokens, "completion": int(round(per_reply * n)), "prompt_method": method,
                     "completion_method": f"mean of {len(done)} cached answers" if done else
                     "at most max_tokens per reply"}
    prices = settings.price_per_mtok
    if prices.prompt is not None and prices.completion is not None:
        out["cost"] = (prompt_tokens * prices.prompt + per_reply * n * prices.completion) / 1e6
    endpoints = settings.base_url if isinstance(settings.base_url, list) else [settings.base_url]
    slots = 1 if backend == "local" else int(settings.concurrency) * max(1, len(endpoints))
    seconds = float(settings.seconds_per_request or SECONDS_PER_REQUEST.get(backend, 2.0))
    out["wall_seconds"] = n * seconds / slots
    out["wall_basis"] = f"{seconds:g} s per request, {slots} at a time"
    return out


def plan_text(p: dict) -> str:
    """The plan as the lines ``lamp plan`` and ``lamp run`` print."""
    if "note" in p:
        return f"plan: abduction backend {p['backend']!r}: {p['note']}"
    lines = [f"plan: abduction backend {p['backend']!r}",
             f"  {'split':6s} {'candidates':>10s} {'to ask':>8s} {'unique':>8s} {'cached':>8s} {'to send':>8s}"]
    for split, s in p["splits"].items():
        lines.append(f"  {split:6s} {s['candidates']:10d} {s['to_ask']:8d} {s['unique']:8d} {s['cached']:8d} "
                     f"{s['to_send']:8d}")
    t = p["tokens"]
    lines.append(f"  prompt tokens to send: ~{t['prompt']:,} ({t['prompt_method']}); completion tokens: "
                 f"~{t['completion']:,} ({t['completion_method']})")
    if "cost" in p:
        lines.append(f"  cost: ~${p['cost']:,.2f} at abduction.price_per_mtok")
    else:
        lines.append("  cost: set abduction.price_per_mtok {prompt: USD, completion: USD} per million tokens")
    minutes = p["wall_seconds"] / 60
    lines.append(f"  wall time: ~{minutes:,.1f} min ({p['wall_basis']}; abduction.seconds_per_request)")
    return "\n".join(lines)

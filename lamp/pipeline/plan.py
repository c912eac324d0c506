"""The cost plan of the abduction stage (``lamp plan``, and the lines ``lamp run`` prints first): what will be
asked, what the cache already answers, tokens, cost and wall time, without calling the LLM."""
from __future__ import annotations

import os

from lamp.config.names import LLM_BACKENDS
from lamp.pipeline.abduce import model_name, prompts_by_split, requests, response_schema
from lamp.pipeline.tasks import Queries, StageContext

__all__ = ["plan", "plan_text", "SECONDS_PER_REQUEST", "CHARS_PER_TOKEN"]

# seconds per request per concurrent slot when abduction.seconds_per_request is not set: SmolLM2-135M on
# 2 cores through llama.cpp (measured, docs/abduction.md); a hosted chat completion of ~100 tokens
SECONDS_PER_REQUEST = {"local": 1.3, "openai": 2.0}
CHARS_PER_TOKEN = 4.0  # the estimate when neither tiktoken nor cached answers calibrate it (English text)


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
    """What abduction will cost, without calling the LLM: per split the candidates, the prompts to ask (after
    ``skip_uncovered`` and the training queries the ranker leaves out; with ``unit: event_type`` one per
    event type), the distinct ones not listed by an earlier split, how many the cache already answers and how
    many will be sent; prompt and completion token estimates; the cost at ``abduction.price_per_mtok`` (times
    its ``batch_discount`` for a batch job) and the wall time at the configured concurrency."""
    from lamp.llm import AnswerCache, request_key
    from lamp.llm.client import request_params

    settings = ctx.settings.abduction
    backend = settings.backend
    out = {"backend": backend, "unit": settings.unit, "batch": settings.batch, "splits": {}, "to_send": 0}
    if backend not in LLM_BACKENDS:
        out["note"] = "no LLM is asked" + {"oracle": " (the oracle abducer answers from the data: a ceiling)",
                                           "rules": " (cause patterns mined from the training split)"}.get(backend, "")
        return out
    model = model_name(settings)
    sampling = request_params(settings.temperature, settings.max_tokens, response_schema(ctx, settings))
    cache_path = ctx.resolve_path(settings.cache) if settings.cache else ctx.path("llm_cache.sqlite")
    cache = AnswerCache(cache_path) if os.path.exists(cache_path) else None
    effs, asks, _ = requests(ctx, queries, proposals)
    counter, method = _token_counter(settings, model)
    send_prompts, cached_rows, listed = [], [], set()
    for split, prompts in prompts_by_split(ctx, abductor, effs, asks).items():
        keys = {}
        for p in prompts:
            key = request_key(model, p, sampling)
            if key not in listed:
                keys.setdefault(key, p)
        listed.update(keys)
        hits = cache.get_many(set(keys)) if cache is not None else {}
        cached_rows += [(keys[k], row) for k, row in hits.items()]
        send_prompts += [p for k, p in keys.items() if k not in hits]
        out["splits"][split] = {"candidates": int(len(effs[split])), "to_ask": int(asks[split].sum()),
                                "unique": len(keys), "cached": len(hits), "to_send": len(keys) - len(hits)}
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
        cost = (prompt_tokens * prices.prompt + per_reply * n * prices.completion) / 1e6
        out["cost"] = cost * prices.batch_discount if settings.batch else cost
        if settings.batch:
            out["cost_without_batch"] = cost
    if settings.batch:
        out["wall_seconds"] = None
        out["wall_basis"] = "a batch job: answered within its completion window of 24 h, often much sooner"
        return out
    endpoints = settings.base_url if isinstance(settings.base_url, list) else [settings.base_url]
    slots = 1 if backend == "local" else int(settings.concurrency) * max(1, len(endpoints))
    seconds = float(settings.seconds_per_request or SECONDS_PER_REQUEST.get(backend, 2.0))
    out["wall_seconds"] = n * seconds / slots
    out["wall_basis"] = f"{seconds:g} s per request, {slots} at a time"
    # the client-side rate limits pace the run when they are slower (a request counts its body / 4 + max_tokens)
    rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
    for limited, rate, what, key in ((n * 60 / rpm if rpm else 0.0, rpm, "requests", "requests_per_minute"),
                                     ((prompt_tokens + n * settings.max_tokens) * 60 / tpm if tpm else 0.0, tpm,
                                      "tokens", "tokens_per_minute")):
        if limited > out["wall_seconds"]:
            out["wall_seconds"] = limited
            out["wall_basis"] = (f"{seconds:g} s per request, {slots} at a time, slowed to {rate:g} {what} per "
                                 f"minute by abduction.{key}")
    return out


def plan_text(p: dict) -> str:
    """The plan as the lines ``lamp plan`` and ``lamp run`` print."""
    if "note" in p:
        return f"plan: abduction backend {p['backend']!r}: {p['note']}"
    unit = " (one prompt per event type)" if p.get("unit") == "event_type" else ""
    lines = [f"plan: abduction backend {p['backend']!r}{unit}" + (", as a batch job" if p.get("batch") else ""),
             f"  {'split':6s} {'candidates':>10s} {'to ask':>8s} {'unique':>8s} {'cached':>8s} {'to send':>8s}"]
    for split, s in p["splits"].items():
        lines.append(f"  {split:6s} {s['candidates']:10d} {s['to_ask']:8d} {s['unique']:8d} {s['cached']:8d} "
                     f"{s['to_send']:8d}")
    t = p["tokens"]
    lines.append(f"  prompt tokens to send: ~{t['prompt']:,} ({t['prompt_method']}); completion tokens: "
                 f"~{t['completion']:,} ({t['completion_method']})")
    if "cost_without_batch" in p:
        lines.append(f"  cost: ~${p['cost']:,.2f} at abduction.price_per_mtok as a batch job (x "
                     f"{p['cost'] / p['cost_without_batch'] if p['cost_without_batch'] else 0:g}; "
                     f"~${p['cost_without_batch']:,.2f} without)")
    elif "cost" in p:
        lines.append(f"  cost: ~${p['cost']:,.2f} at abduction.price_per_mtok")
    else:
        lines.append("  cost: set abduction.price_per_mtok {prompt: USD, completion: USD} per million tokens")
    if p["wall_seconds"] is None:
        lines.append(f"  wall time: {p['wall_basis']}")
    else:
        minutes = p["wall_seconds"] / 60
        lines.append(f"  wall time: ~{minutes:,.1f} min ({p['wall_basis']}; abduction.seconds_per_request)")
    return "\n".join(lines)

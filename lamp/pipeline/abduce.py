"""Stage 2: the causes of every candidate of every query, from an LLM (through the answer cache), the data
(``rules``) or the truth (``oracle``), asked per candidate or per event type (``abduction.unit``)."""
from __future__ import annotations

import os

import numpy as np

from lamp.config.names import LLM_BACKENDS
from lamp.errors import LLMError
from lamp.pipeline.propose import proposals_fingerprint
from lamp.pipeline.tasks import Queries, StageContext, excludes_inserted

__all__ = ["effects", "make_abductor", "make_client", "oracle_client", "abduce", "requests", "prompts_by_split",
           "model_name", "train_patterns", "ANSWER_SETTINGS"]

# abduction settings that change what is asked or who answers (and so the stage's fingerprint)
ANSWER_SETTINGS = ("backend", "base_url", "model", "model_path", "num_shots", "temperature", "max_tokens",
                   "response_format", "unit", "domain", "max_causes", "window_steps", "min_support")


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


def train_patterns(ctx: StageContext) -> dict:
    """Cause patterns mined from the training split (:func:`lamp.abduction.rules.mine_split`): the ``rules``
    backend's answers, and the demonstrations of the event-type prompts."""
    from lamp.abduction.rules import mine_split

    s = ctx.settings.abduction
    return mine_split(ctx.store, "train", s.window_steps, s.min_support, s.max_causes)


def make_abductor(ctx: StageContext):
    """The prompt builder and reply parser of the data kind and ``abduction.unit`` (no client yet)."""
    from lamp.abduction import Abductor, EventTypeAbductor, ReviewAbductor

    s = ctx.settings.abduction
    if s.unit == "event_type":
        demos = train_patterns(ctx) if s.backend in LLM_BACKENDS and s.num_shots else {}
        return EventTypeAbductor(ctx.store, None, demos=demos, num_shots=s.num_shots, max_patterns=s.max_causes,
                                 domain=s.domain)
    if ctx.kind == "tkg":
        return Abductor(ctx.store, None, num_shots=s.num_shots, seed=ctx.seed, max_causes=s.max_causes,
                        window=s.window_steps * ctx.store.time_step(), domain=s.domain)
    return ReviewAbductor(ctx.store, None, num_shots=s.num_shots, seed=ctx.seed, max_causes=s.max_causes,
                          domain=s.domain)


def response_schema(ctx: StageContext, settings: dict) -> dict | None:
    """The ``response_format`` requests carry (``abduction.response_format``): ``json_schema`` sends the
    cause list's JSON schema — as OpenAI structured outputs (``{"type": "json_schema", ...}``, which vLLM's
    guided decoding reads too) for ``backend: openai``, and in llama-cpp-python's form (``{"type":
    "json_object", "schema": ...}``: grammar-constrained decoding) for the local llama.cpp server and its
    replays (``backend: local``, or ``replay`` without ``abduction.model``); ``text`` sends none;
    ``auto`` is ``text`` (structured output was measured not to help SmolLM2: docs/abduction.md)."""
    if settings.response_format != "json_schema":
        return None
    from lamp.abduction import cause_list_schema, pattern_list_schema

    if settings.unit == "event_type":
        schema = pattern_list_schema(ctx.kind)
    else:
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
                  verify_tls=settings.verify_tls, response_format=response_schema(ctx, settings),
                  requests_per_minute=settings.requests_per_minute, tokens_per_minute=settings.tokens_per_minute)
    if backend == "openai":
        if settings.batch:
            from lamp.llm import BatchClient

            return BatchClient(settings.base_url, settings.model, api_key_env=settings.api_key_env, cache=cache,
                               state_dir=ctx.path("abduction_batch"), temperature=settings.temperature,
                               max_tokens=settings.max_tokens, response_format=common["response_format"],
                               timeout=settings.timeout, verify_tls=settings.verify_tls,
                               max_retries=settings.max_retries, poll_interval=settings.batch_poll_seconds,
                               say=ctx.say), None
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


def prompts_by_split(ctx: StageContext, abductor, effs: dict, asks: dict) -> dict:
    """The prompts each split asks: one per asked candidate (``unit: candidate``) or one per asked
    candidate's event type (``unit: event_type``; the same prompt for every candidate of a type)."""
    if ctx.settings.abduction.unit == "event_type":
        from lamp.abduction.patterns import effect_types

        typed = ctx.kind == "typed"
        return {split: [abductor.build_prompt(t) for t in effect_types(ev[asks[split]], typed)]
                for split, ev in effs.items()}
    return {split: [abductor.build_prompt(e, split=split) for e in ev[asks[split]]] for split, ev in effs.items()}


def _check_failures(ctx: StageContext, failed: dict, total: int, what: str) -> None:
    """Raise when more requests failed than ``abduction.max_failed_fraction`` allows; say so when some did."""
    max_failed = ctx.settings.abduction.max_failed_fraction
    total_failed = sum(failed.values())
    counts = (f"abduction: {total_failed} of {total} LLM requests{what} failed ("
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


def abduce(ctx: StageContext, queries: dict[str, Queries], proposals: dict, abductor) -> dict:
    """The causes of every candidate of every query: ``{split: list (Q * M) of list of cause texts}``.

    ``abduction.unit: candidate`` asks about each candidate (:func:`_candidate_causes`); ``event_type`` asks
    about each event type among the candidates and instantiates its patterns for every candidate
    (:func:`_event_type_causes`).  ``backend: oracle`` answers from the truth instead of an LLM (a
    diagnostic ceiling), ``rules`` from the training split; the LLM backends go through :func:`make_client`
    and the answer cache.
    """
    settings = ctx.settings.abduction
    effs, asks, skip = requests(ctx, queries, proposals)
    compute = (_event_type_causes if settings.unit == "event_type" else _candidate_causes)(
        ctx, proposals, abductor, effs, asks, skip)
    fp_settings = {**{k: getattr(settings, k) for k in ANSWER_SETTINGS}, "seed": ctx.seed, "effects": effs}
    if skip is not None:
        fp_settings["skip_uncovered"] = True
    if not asks["train"].all():
        fp_settings["skip_inserted"] = True
    out = ctx.stage("abduction", fp_settings, [proposals_fingerprint(proposals)], compute,
                    complete=lambda o: not sum(o["stats"]["failed_by_split"].values()))
    ctx.say(f"abduction: {out['stats']}")
    return {split: out[f"{split}_causes"] for split in queries}


def _say_asked(ctx: StageContext, split: str, asked: int, skipped: int, what: str, note: str = "") -> None:
    """``abduction: <asked> <what> (<skipped> skipped: ...)<note>``; ``what`` may name ``{split}``."""
    ctx.say(f"abduction: {asked} {what.format(split=split)}" +
            (f" ({skipped} skipped: their query's truth is not among the proposals, so no metric can change)"
             if skipped else "") + note)


def _candidate_causes(ctx: StageContext, proposals: dict, abductor, effs: dict, asks: dict, skip):
    """The stage's computation for ``unit: candidate``: one prompt (or oracle reply) per asked candidate."""
    settings = ctx.settings.abduction
    oracle = settings.backend == "oracle"

    def compute():
        out, failed = {}, {}
        for split, ev in effs.items():
            _say_asked(ctx, split, int(asks[split].sum()), int((~asks[split]).sum()), "prompts for the {split} candidates",
                       " (oracle abducer: a diagnostic ceiling)" if oracle else "")
            out[f"{split}_causes"] = [[] for _ in range(len(ev))]
        if oracle:  # its replies depend on each split's truth: one scripted client per split
            clients = []
            for split, ev in effs.items():
                abductor.client = oracle_client(ctx, abductor, ev, proposals[split]["truth"], split)
                clients.append(abductor.client)
                prompts = [abductor.build_prompt(e, split) for e in ev[asks[split]]]
                _store(out, split, asks[split], prompts, abductor.ask(prompts), failed)
            abductor.client = None
            llm = "; ".join(str(c.stats) for c in clients)
        else:  # every split's prompts in one call of the client: one batch job for a batch client
            prompts = prompts_by_split(ctx, abductor, effs, asks)
            client, server = make_client(ctx, settings, [p for ps in prompts.values() for p in ps])
            try:
                abductor.client = client
                answers = abductor.ask([p for split in effs for p in prompts[split]])
                at = 0
                for split in effs:
                    n = len(prompts[split])
                    _store(out, split, asks[split], prompts[split], answers[at:at + n], failed)
                    at += n
                llm = str(client.stats)
            finally:
                abductor.client = None
                if server is not None:
                    server.stop()
        out["stats"] = {**abductor.stats.as_dict(), "llm": llm, "failed_by_split": failed,
                        "skipped_uncovered": 0 if skip is None else int(skip.sum())}
        _check_failures(ctx, failed, sum(int(a.sum()) for a in asks.values()), "")
        return out

    return compute


def _store(out: dict, split: str, ask: np.ndarray, prompts: list, answers: list, failed: dict) -> None:
    """The parsed answers of one split's asked candidates into ``out``; the distinct failed requests counted in
    ``failed``."""
    import json

    causes = out[f"{split}_causes"]
    for i, answer in zip(np.flatnonzero(ask), answers):
        causes[i] = [c.text for c in answer or []]
    failed[split] = len({json.dumps(p, sort_keys=True) for p, a in zip(prompts, answers) if a is None})


def _event_type_causes(ctx: StageContext, proposals: dict, abductor, effs: dict, asks: dict, skip):
    """The stage's computation for ``unit: event_type``: the cause patterns of every event type among the
    asked candidates — from the LLM (one prompt per type), the training split (``rules``) or the test split
    itself (``oracle``: it reads the future, a ceiling) — instantiated with each candidate's entities."""
    from lamp.abduction.patterns import effect_types, instantiate, pattern_text
    from lamp.abduction.rules import mine_split
    from lamp.text import EventTexts

    settings = ctx.settings.abduction
    typed = ctx.kind == "typed"
    wanted = sorted({int(t) for split, ev in effs.items() for t in effect_types(ev[asks[split]], typed)})

    def compute():
        texts = EventTexts(ctx.store)
        names = texts.types if typed else texts.relations
        stats = {"event_types": len(wanted), "skipped_uncovered": 0 if skip is None else int(skip.sum())}
        failed = {"event_types": 0}
        for split, ev in effs.items():
            ask = asks[split]
            _say_asked(ctx, split, int(ask.sum()), int((~ask).sum()), "{split} candidates to find causes for",
                       f" ({len(set(effect_types(ev[ask], typed).tolist()))} event types)")
        if settings.backend in LLM_BACKENDS:
            prompts = [abductor.build_prompt(t) for t in wanted]
            ctx.say(f"abduction: {len(prompts)} prompts, one per event type among the candidates")
            client, server = make_client(ctx, settings, prompts)
            try:
                abductor.client = client
                patterns = abductor.abduce_types(wanted)
                stats.update(abductor.stats.as_dict(), llm=str(client.stats))
                failed["event_types"] = abductor.stats.failed_requests
            finally:
                abductor.client = None
                if server is not None:
                    server.stop()
        else:
            split = "test" if settings.backend == "oracle" else "train"
            ctx.say(f"abduction: cause patterns mined from the {split} split" +
                    (" (the event-type oracle reads the future: a diagnostic ceiling)" if split == "test" else ""))
            mined = mine_split(ctx.store, split, settings.window_steps, settings.min_support, settings.max_causes)
            patterns = {t: mined.get(t, []) for t in wanted}
            stats["mined_from"] = split
        stats["with_patterns"] = sum(bool(patterns.get(t)) for t in wanted)
        stats["patterns"] = sum(len(patterns.get(t, ())) for t in wanted)
        out = {"patterns": {str(t): [p.as_list() for p in patterns.get(t, ())] for t in wanted},
               "patterns_text": {names[t]: [pattern_text(p, names, typed) for p in patterns.get(t, ())]
                                 for t in wanted}}
        for split, ev in effs.items():
            causes = [[] for _ in range(len(ev))]
            for i, cs in zip(np.flatnonzero(asks[split]), instantiate(patterns, ev[asks[split]], texts)):
                causes[i] = cs
            out[f"{split}_causes"] = causes
        out["stats"] = {**stats, "failed_by_split": failed}
        if settings.backend in LLM_BACKENDS:
            _check_failures(ctx, failed, len(wanted), " (one per event type)")
        return out

    return compute


def model_name(settings) -> str:
    """The model name requests carry (and the cache keys on)."""
    if settings.model:
        return settings.model
    from lamp.llm.local import DEFAULT_MODEL_NAME

    return os.path.basename(settings.model_path) if settings.model_path else DEFAULT_MODEL_NAME

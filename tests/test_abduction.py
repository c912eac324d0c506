"""Prompts, demonstrations and the tolerant parser of the abduction stage."""
import json
import warnings

import numpy as np
import pytest

from lamp.abduction import Abductor, ZeroCauseWarning, parse_causes
from lamp.llm import ChatClient, ReplayMissError
from lamp.llm.testserver import CANNED_REPLY, TestServer
from lamp.text import normalize_name


@pytest.fixture(scope="module")
def abductor(icews14):
    return Abductor(icews14, num_shots=4, seed=0)


def test_prompt_structure(abductor, icews14):
    effect = icews14.test.quadruples()[0]
    msgs = abductor.build_prompt(effect)
    assert msgs[0]["role"] == "system" and "3 to 5" in msgs[0]["content"]
    assert msgs[1]["content"].startswith("Allowed event types:") and "Make statement" in msgs[1]["content"]
    demos = msgs[3:-1]
    assert len(demos) == 2 * 4 and [m["role"] for m in demos] == ["user", "assistant"] * 4
    assert msgs[-1]["role"] == "user" and abductor.entities[effect[0]] in msgs[-1]["content"]
    # the demonstrations are written in the very format the parser reads (the authors' bug)
    for answer in demos[1::2]:
        causes = parse_causes(answer["content"], abductor.relation_index, abductor.entity_index)
        assert len(causes) == 3 and all(c.relation_id is not None and c.subject_id is not None for c in causes)


def test_demonstrations_come_from_train_and_precede_their_effect(abductor, icews14):
    train = {tuple(q) for q in icews14.train.quadruples()}
    for effect, causes in abductor.demonstrations:
        assert tuple(effect) in train
        for c in causes:
            assert tuple(c) in train and c[3] < effect[3] and c[3] >= effect[3] - abductor.window
            assert {c[0], c[2]} & {effect[0], effect[2]}
    again = Abductor(icews14, num_shots=4, seed=0)
    assert [tuple(e) for e, _ in again.demonstrations] == [tuple(e) for e, _ in abductor.demonstrations]
    other = Abductor(icews14, num_shots=4, seed=1)
    assert [tuple(e) for e, _ in other.demonstrations] != [tuple(e) for e, _ in abductor.demonstrations]


@pytest.mark.parametrize("reply, expected", [
    (CANNED_REPLY, ["Government (Nigeria) | Consult | Citizen (Nigeria)"]),
    ("1. **Event predicate:** Threaten\n   **Subject name:** Police\n   **Object name:** Protester\n",
     ["Police | Threaten | Protester"]),
    ("Sure! Here are some causes:\n- relation: Consult; \n\n2) Iran | Make statement | China | 2014-05-01\n",
     ["Consult", "Iran | Make statement | China"]),
    ("* event type = Host a visit\n* subject: Kuwait\n* object: Catherine Ashton\n", ["Kuwait | Host a visit | Catherine Ashton"]),
    ("1. 2014-12-31: 2014-12-31: 2014-12-31\n2. 12/01/2014", []),
    ("", []),
])
def test_parser_variants(reply, expected):
    got = [c.text for c in parse_causes(reply)]
    assert got[:len(expected)] == expected and (expected or not got)


def test_parser_resolves_names(abductor):
    causes = parse_causes("1. event type: Make statement\n   subject name: Citizen (Nigeria)\n   object name: China",
                          abductor.relation_index, abductor.entity_index)
    assert causes[0].relation_id == 0 and causes[0].subject_id == 2 and causes[0].object_id == 0


def test_no_llm_mode_and_zero_cause_warning(icews14):
    effects = icews14.test.quadruples()[:3]
    plain = Abductor(icews14, num_shots=2).abduce(effects)
    assert [len(c) for c in plain] == [1, 1, 1] and "|" in plain[0][0].text
    with TestServer(reply="I cannot help with that.") as server:
        client = ChatClient(server.base_url, "test")
        ab = Abductor(icews14, client, num_shots=2)
        with pytest.warns(ZeroCauseWarning, match="3 of 3"):
            assert ab.abduce(effects) == [[], [], []]
    with TestServer() as server:
        ab = Abductor(icews14, ChatClient(server.base_url, "test"), num_shots=2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            causes = ab.abduce(effects)
        assert all(len(c) == 3 for c in causes) and ab.stats.zero_cause_replies == 0


def test_bad_input(icews14):
    with pytest.raises(ValueError, match="num_shots"):
        Abductor(icews14, num_shots=-1)
    with pytest.raises(ValueError, match="effects must be"):
        Abductor(icews14, num_shots=0).abduce(np.zeros((2, 3)))


@pytest.mark.llm
def test_real_local_model_end_to_end(icews14):
    from lamp.llm.local import LocalServer

    ab = Abductor(icews14, num_shots=2)
    with LocalServer() as server:
        ab.client = ChatClient(server.base_url, server.model, max_tokens=120, timeout=120)
        causes = ab.abduce(icews14.test.quadruples()[:2])
    assert ab.stats.replies == 2 and sum(len(c) for c in causes) >= 1


@pytest.mark.llm
def test_real_local_model_structured_output(icews14):
    # llama-cpp-python's form of the cause list's schema: grammar-constrained decoding gives JSON that
    # parse_causes reads (the parse rates of both modes: scripts/measure_response_format.py)
    import json as _json

    from lamp.llm.local import LocalServer

    ab = Abductor(icews14, num_shots=2)
    fmt = {"type": "json_object", "schema": cause_list_schema("tkg")}
    with LocalServer() as server:
        client = ChatClient(server.base_url, server.model, max_tokens=200, timeout=120, response_format=fmt)
        replies = client.chat([ab.build_prompt(e) for e in icews14.test.quadruples()[:2]])
    assert all(r.error is None for r in replies)
    parsed = [_json.loads(r.text) for r in replies]  # valid JSON (200 tokens: not cut short here)
    assert all(isinstance(p, dict) and isinstance(p.get("causes"), list) for p in parsed)
    assert sum(len(parse_causes(r.text)) for r in replies) >= 1


# --- typed events with text (Amazon reviews) ----------------------------------------------------

from lamp.abduction import ReviewAbductor  # noqa: E402
from lamp.datasets import load_amazon_sample  # noqa: E402


@pytest.fixture(scope="module")
def amazon():
    return load_amazon_sample()


def test_review_prompt_structure_and_no_leak(amazon):
    ab = ReviewAbductor(amazon, num_shots=3, seed=0)
    msgs = ab.build_prompt((0, 4), split="test")
    assert msgs[1]["content"].startswith("Allowed categories:")
    assert len(msgs) == 3 + 2 * 3 + 1
    i = int(amazon.test.offsets[0]) + 4
    query = msgs[-1]["content"]
    assert ab.types[amazon.test.marks[i]] in query
    title = amazon.test.fields["review_title"][i]
    assert title not in query and "summary" not in query  # the effect's own text is not shown
    # demonstrations: earlier reviews of the same training customer, most recent first, parseable
    for effect, causes in ab.demonstrations:
        s = np.searchsorted(amazon.train.offsets, effect, side="right") - 1
        assert all(amazon.train.offsets[s] <= c < effect for c in causes)
        assert list(causes) == sorted(causes, reverse=True)
    parsed = parse_causes(msgs[4]["content"], ab.relation_index)
    assert len(parsed) == len(ab.demonstrations[0][1]) and all(c.relation_id is not None for c in parsed)
    assert all("|" in c.text for c in parsed)  # category | title


def test_review_abduction_through_the_client(amazon, icews14):
    reply = "1. category: Buy a Kindle\n   title: Great read\n   time: 2021-01-02\n   summary: loved it"
    with TestServer(reply=reply) as server:
        ab = ReviewAbductor(amazon, ChatClient(server.base_url, "test"), num_shots=2)
        causes = ab.abduce(np.array([[0, 4], [1, 4]]), split="test")
    assert [c[0].text for c in causes] == ["Buy a Kindle | Great read"] * 2
    assert causes[0][0].relation_id == amazon.type_names.index("Buy a Kindle")
    plain = ReviewAbductor(amazon, num_shots=0).abduce(np.array([[0, 4]]), split="test")
    assert plain[0][0].text == ReviewAbductor(amazon, num_shots=0).types[amazon.test.marks[4]]
    with pytest.raises(ValueError, match="not an event of the test split"):
        ReviewAbductor(amazon, num_shots=0).build_prompt((999, 0))
    with pytest.raises(TypeError, match="typed sequences"):
        ReviewAbductor(icews14)


def test_review_prompt_shows_the_candidate_not_the_event(amazon):
    """A proposal is a candidate type (and time) for an event: the prompt and the no-LLM cause show the
    candidate, never the event's own type."""
    ab = ReviewAbductor(amazon, num_shots=1, seed=0)
    i = int(amazon.test.offsets[0]) + 4
    own = int(amazon.test.marks[i])
    other = (own + 1) % amazon.num_types
    query = ab.build_prompt((0, 4, other), split="test")[-1]["content"]
    assert f"category: {ab.types[other]}\n" in query and f"category: {ab.types[own]}\n" not in query
    timed = ab.build_prompt((0, 4, other, 18000.0), split="test")[-1]["content"]
    assert "time: 2019-04-14" in timed  # day 18000 since 1970-01-01
    plain = ReviewAbductor(amazon, num_shots=0).abduce(np.array([[0, 4, other, 0]]), split="test")
    assert plain[0][0].text == ab.types[other]
    with pytest.raises(ValueError, match="out of range"):
        ab.build_prompt((0, 4, amazon.num_types), split="test")


# --- structured output (a JSON schema sent as response_format) -----------------------------------

from lamp.abduction import cause_list_schema  # noqa: E402
from lamp.llm.testserver import CANNED_CAUSES, response_format_problem, schema_instance  # noqa: E402


def _structured(schema):
    return {"type": "json_schema", "json_schema": {"name": "causes", "schema": schema, "strict": True}}


@pytest.mark.parametrize("kind", ["tkg", "review"])
def test_schema_request_gets_conforming_json_that_parses(kind):
    jsonschema = pytest.importorskip("jsonschema")
    schema = cause_list_schema(kind)
    with TestServer() as server:
        (result,) = ChatClient(server.base_url, "test", response_format=schema).chat(
            [[{"role": "user", "content": "causes?"}]])
    assert server.requests[0]["response_format"] == _structured(schema)  # sent as OpenAI's structured outputs
    reply = json.loads(result.text)
    jsonschema.validate(reply, schema)
    causes = parse_causes(result.text)
    if kind == "tkg":
        assert [(c.relation, c.subject, c.object, c.time) for c in causes] == \
            [(c["relation"], c["subject"], c["object"], c["time"]) for c in CANNED_CAUSES]
    else:
        assert [c.text for c in causes] == [f"{c['category']} | {c['title']}" for c in CANNED_CAUSES]


def test_abductor_through_a_schema_client(icews14):
    effects = icews14.test.quadruples()[:2]
    with TestServer() as server:
        client = ChatClient(server.base_url, "test", response_format=cause_list_schema("tkg"))
        ab = Abductor(icews14, client, num_shots=2)
        causes = ab.abduce(effects)
    assert [len(c) for c in causes] == [3, 3] and ab.stats.zero_cause_replies == 0
    assert causes[0][0].relation_id == ab.relation_index[normalize_name("Consult")]
    assert causes[0][0].subject_id == ab.entity_index[normalize_name("Government (Nigeria)")]


@pytest.mark.parametrize("fmt, message", [
    ("json", "must be an object"),
    ({"type": "xml"}, "response_format.type"),
    ({"type": "json_schema"}, "json_schema must be an object"),
    ({"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {"type": "object"}}}, "name"),
    ({"type": "json_schema", "json_schema": {"name": "causes"}}, "schema must be an object"),
    ({"type": "json_schema", "json_schema": {"name": "causes", "schema": {"type": "thing"}}}, "type must be one of"),
    ({"type": "json_schema", "json_schema": {"name": "causes", "strict": "yes", "schema": {"type": "object"}}},
     "strict must be a boolean"),
    ({"type": "json_schema", "json_schema": {"name": "causes", "strict": True,
                                             "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}},
     "additionalProperties"),
    ({"type": "json_schema", "json_schema": {"name": "causes", "strict": True, "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": [], "additionalProperties": False}}},
     "every property in required"),
    ({"type": "json_schema", "json_schema": {"name": "causes", "schema": {"type": "array"}}}, "items must be"),
])
def test_malformed_response_format_is_rejected_with_400(fmt, message):
    assert message in response_format_problem(fmt)
    with TestServer() as server:
        client = ChatClient(server.base_url, "test", max_retries=2, backoff_base=0.01)
        client.response_format = fmt  # bypass the client's own wrapping: send it as is
        (result,) = client.chat([[{"role": "user", "content": "causes?"}]])
    assert result.text is None and "HTTP 400" in result.error and message in result.error
    assert server.total == 1  # a 400 is final


def test_valid_formats_and_generated_instances():
    jsonschema = pytest.importorskip("jsonschema")
    assert response_format_problem({"type": "text"}) is None and response_format_problem({"type": "json_object"}) is None
    schema = {"type": "object", "properties": {
        "causes": {"type": "array", "items": {"anyOf": [{"type": "object", "properties": {
            "relation": {"type": "string", "enum": ["Consult", "Threaten"]}, "score": {"type": ["number", "null"]},
            "ok": {"type": "boolean"}}, "required": ["relation", "score", "ok"], "additionalProperties": False}]}},
        "note": {"type": "string"}}, "required": ["causes", "note"], "additionalProperties": False}
    assert response_format_problem(_structured(schema)) is None
    jsonschema.validate(schema_instance(schema), schema)
    with TestServer() as server:
        (result,) = ChatClient(server.base_url, "test", response_format={"type": "json_object"}).chat(
            [[{"role": "user", "content": "causes?"}]])
    assert [c.relation for c in parse_causes(result.text)] == [c["relation"] for c in CANNED_CAUSES]


def test_schema_is_part_of_the_cache_key(tmp_path):
    cache = str(tmp_path / "cache.sqlite")
    msgs = [[{"role": "user", "content": "causes?"}]]
    with TestServer() as server:
        text = ChatClient(server.base_url, "test", cache=cache).chat(msgs)[0]
        tkg = ChatClient(server.base_url, "test", cache=cache, response_format=cause_list_schema("tkg")).chat(msgs)[0]
        review = ChatClient(server.base_url, "test", cache=cache,
                            response_format=cause_list_schema("review")).chat(msgs)[0]
        assert server.total == 3 and not (text.cached or tkg.cached or review.cached)
        assert text.text == CANNED_REPLY and json.loads(tkg.text) != json.loads(review.text)
        again = [ChatClient(server.base_url, "test", cache=cache, response_format=f).chat(msgs)[0]
                 for f in (None, cause_list_schema("tkg"), cause_list_schema("review"))]
        assert server.total == 3 and all(r.cached for r in again)
        assert [r.text for r in again] == [text.text, tkg.text, review.text]
    replay = ChatClient("http://127.0.0.1:9/v1", "test", cache=cache, replay=True,
                        response_format={"type": "object", "properties": {}})
    with pytest.raises(ReplayMissError):
        replay.chat(msgs)


def test_client_response_format_argument():
    schema = cause_list_schema("tkg")
    client = ChatClient("http://127.0.0.1:9/v1", "m", response_format=schema)
    assert client.response_format == _structured(schema)
    given = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    assert ChatClient("http://127.0.0.1:9/v1", "m", response_format=given).response_format == given
    assert ChatClient("http://127.0.0.1:9/v1", "m").response_format is None
    with pytest.raises(TypeError, match="response_format"):
        ChatClient("http://127.0.0.1:9/v1", "m", response_format="json")
    with pytest.raises(TypeError, match="JSON-serializable"):
        ChatClient("http://127.0.0.1:9/v1", "m", response_format={"type": "object", "x": object()})


@pytest.mark.parametrize("backend, model, form", [
    ("openai", "gpt-4o-mini", "openai"), ("local", None, "llama.cpp"), ("replay", None, "llama.cpp"),
    ("replay", "gpt-4o-mini", "openai")])
def test_pipeline_sends_the_schema_in_the_backends_form(backend, model, form):
    from types import SimpleNamespace

    from lamp.config.schema import Abduction
    from lamp.pipeline.abduce import response_schema

    ctx = SimpleNamespace(kind="tkg")
    settings = Abduction(backend=backend, model=model, response_format="json_schema")
    got = response_schema(ctx, settings)
    if form == "llama.cpp":  # llama-cpp-python's server reads only {"type": "json_object", "schema": ...}
        assert got == {"type": "json_object", "schema": cause_list_schema("tkg")}
    else:  # a bare schema: the client wraps it as OpenAI's structured outputs
        assert got == cause_list_schema("tkg")
        assert ChatClient("http://127.0.0.1:9/v1", "m", response_format=got).response_format == _structured(got)
    for other in ("auto", "text"):
        assert response_schema(ctx, settings.model_copy(update={"response_format": other})) is None

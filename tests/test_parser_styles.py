"""parse_causes on the reply styles real models write (fixtures), and property tests of the parser."""
import glob
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lamp.abduction import Cause, cause_list_schema, parse_causes
from lamp.text import normalize_name

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "replies")
FIXTURES = sorted(p for p in glob.glob(os.path.join(HERE, "*.json")) if not p.endswith("index.json"))
INDEX = json.load(open(os.path.join(HERE, "index.json"), encoding="utf-8"))
FIELDS = ("text", "relation", "subject", "object", "time", "relation_id", "subject_id", "object_id")


def _indexes(kind):
    if kind == "review":
        return {normalize_name(n): i for i, n in enumerate(INDEX["categories"])}, {}
    return ({normalize_name(n): i for i, n in enumerate(INDEX["relations"])},
            {normalize_name(n): i for i, n in enumerate(INDEX["entities"])})


def test_fixture_corpus_is_large_and_varied():
    data = [json.load(open(p, encoding="utf-8")) for p in FIXTURES]
    assert len(data) >= 40
    assert {d["kind"] for d in data} == {"tkg", "review"}
    assert len({d["style"] for d in data}) == len(data)


@pytest.mark.parametrize("path", FIXTURES, ids=[os.path.basename(p)[:-5] for p in FIXTURES])
def test_reply_styles(path):
    fixture = json.load(open(path, encoding="utf-8"))
    relation_index, entity_index = _indexes(fixture["kind"])
    got = parse_causes(fixture["reply"], relation_index, entity_index)
    assert [{f: getattr(c, f) for f in FIELDS} for c in got] == fixture["expected"], fixture["style"]


# --- property tests -----------------------------------------------------------------------------

_WORD = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=2,
                max_size=9)
_NAME = st.lists(_WORD, min_size=1, max_size=3).map(" ".join)
_PAREN = st.tuples(_NAME, st.one_of(st.none(), _WORD)).map(lambda t: t[0] + (f" ({t[1]})" if t[1] else ""))
_DATE = st.dates(min_value=__import__("datetime").date(1950, 1, 1), max_value=__import__("datetime").date(2060, 12, 31))
_CAUSE = st.tuples(_NAME, _PAREN, _PAREN, _DATE)  # relation, subject, object, date
_DATE_FORMATS = (lambda d: d.isoformat(), lambda d: d.strftime("%m/%d/%Y"), lambda d: d.strftime("%B %-d, %Y"),
                 lambda d: d.strftime("%-d %b %Y"))
_LABELS = {"relation": ["event type", "Event Type", "event predicate", "Predicate", "relation", "action"],
           "subject": ["subject name", "Subject", "actor", "source"],
           "object": ["object name", "Object", "target"],
           "time": ["time", "Date", "event time"]}


@st.composite
def _layout(draw):
    causes = draw(st.lists(_CAUSE, min_size=1, max_size=5))
    style = draw(st.sampled_from(["numbered", "bulleted", "bold", "hash", "semicolon", "pipe", "positional",
                                  "json", "json_wrapped", "json_fenced", "table"]))
    labels = {k: draw(st.sampled_from(v)) for k, v in _LABELS.items()}
    fmt = draw(st.sampled_from(_DATE_FORMATS))
    preamble = draw(st.sampled_from(["", "Sure! Here are the causes:\n\n", "Here are some plausible causes.\n"]))
    closing = draw(st.sampled_from(["", "\n\nI hope this helps!", "\n\nThese events precede the effect."]))
    items = []
    for k, (r, s, o, d) in enumerate(causes):
        fields = [(labels["relation"], r), (labels["subject"], s), (labels["object"], o), (labels["time"], fmt(d))]
        if style == "numbered":
            items.append(f"{k + 1}. " + "\n   ".join(f"{n}: {v}" for n, v in fields))
        elif style == "bulleted":
            items.append("\n".join(f"- {n}: {v}" for n, v in fields) + "\n")
        elif style == "bold":
            items.append(f"**Cause {k + 1}**\n" + "\n".join(f"- **{n}:** {v}" for n, v in fields) + "\n")
        elif style == "hash":
            items.append(f"### Cause {k + 1}\n" + "\n".join(f"{n}: {v}" for n, v in fields) + "\n")
        elif style == "semicolon":
            items.append(f"{k + 1}. " + "; ".join(f"{n}: {v}" for n, v in fields))
        elif style == "pipe":
            items.append("- " + " | ".join(f"{n}: {v}" for n, v in fields))
        elif style == "positional":
            items.append(f"{k + 1}. {s} | {r} | {o} | {fmt(d)}")
    if style.startswith("json"):
        body = json.dumps([{"event_type": r, "subject_name": s, "object_name": o, "time": fmt(d)}
                           for r, s, o, d in causes], indent=draw(st.sampled_from([None, 2])))
        text = {"json": body, "json_wrapped": '{"causes": ' + body + "}",
                "json_fenced": "```json\n" + body + "\n```"}[style]
    elif style == "table":
        text = "| Event type | Subject | Object | Date |\n|---|---|---|---|\n" + "\n".join(
            f"| {r} | {s} | {o} | {fmt(d)} |" for r, s, o, d in causes)
    else:
        text = "\n".join(items)
    return preamble + text + closing, causes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_layout())
def test_random_layouts_of_known_causes_parse_back(case):
    text, causes = case
    got = parse_causes(text, max_causes=10)
    assert [(c.relation, c.subject, c.object, c.time) for c in got] == \
        [(r, s, o, d.isoformat()) for r, s, o, d in causes], text


def _check(out):
    assert isinstance(out, list) and all(isinstance(c, Cause) for c in out) and len(out) <= 5
    for c in out:
        assert isinstance(c.text, str) and c.text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text):
    _check(parse_causes(text))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data):
    _check(parse_causes(data.decode("utf-8", errors="replace"), {"consult": 0}, {"iran": 0}))


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["[", "{", "(", '{"causes": [', '[{"a": ', "{'x': ["]), st.integers(1, 5000),
       st.sampled_from(["", "]", "}", '"', "event type: Consult"]))
def test_deeply_nested_brackets_never_raise(opener, depth, tail):
    _check(parse_causes(opener * depth + tail))
    _check(parse_causes("Here:\n```json\n" + opener * depth + "\n```"))


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["event type: ", "a | ", "x" * 7, "subject: Iran; ", '"time": "', "1. ", "**"]),
       st.integers(1_000, 20_000))
def test_very_long_lines_never_raise(piece, repeat):
    _check(parse_causes(piece * repeat))
    _check(parse_causes("1. event type: Consult\n   subject name: " + piece * repeat + "\n   object name: China"))


def test_non_string_input():
    assert parse_causes(None) == [] and parse_causes("") == [] and parse_causes(b"1. a | b | c") == []


# --- the structured-output schema ------------------------------------------------------------------

def test_cause_list_schema_is_strict_and_parsed():
    for kind, keys in (("tkg", ["event_type", "subject_name", "object_name", "time"]),
                       ("review", ["category", "title", "time", "summary"])):
        schema = cause_list_schema(kind)
        assert schema["required"] == ["causes"] and schema["additionalProperties"] is False
        item = schema["properties"]["causes"]["items"]
        assert list(item["properties"]) == keys and item["required"] == keys
        assert item["additionalProperties"] is False
        reply = json.dumps({"causes": [{k: f"{k} value" if k != "time" else "2014-03-01" for k in keys}]})
        (cause,) = parse_causes(reply)
        assert cause.relation == (f"{keys[0]} value") and cause.time == "2014-03-01"
    with pytest.raises(ValueError, match="kind"):
        cause_list_schema("graph")

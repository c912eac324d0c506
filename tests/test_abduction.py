"""Prompts, demonstrations and the tolerant parser of the abduction stage."""
import warnings

import numpy as np
import pytest

from lamp.abduction import Abductor, ZeroCauseWarning, parse_causes
from lamp.llm import ChatClient
from lamp.llm.testserver import CANNED_REPLY, TestServer


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

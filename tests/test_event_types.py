"""Abduction per event type: reading pattern replies, instantiating patterns, the rules miner, the prompts."""
import numpy as np
import pytest

from lamp.abduction.event_types import EventTypeAbductor
from lamp.abduction.patterns import ANYONE, OBJECT, SUBJECT, Pattern, instantiate, parse_patterns, role_of
from lamp.abduction.rules import mine_patterns
from lamp.data import EventSequences, EventStore
from lamp.llm.scripted import ScriptedClient
from lamp.text import EventTexts, normalize_name

RELATIONS = ["Make a visit", "Host a visit", "Consult", "Use conventional military force"]
INDEX = {normalize_name(n): i for i, n in enumerate(RELATIONS)}
VISIT, HOST, CONSULT, FORCE = range(4)


def _kg_store(quads=None, names=("Alpha Land", "Beta Land", "Gamma")):
    """A tiny knowledge graph: (subject, relation, object, time) rows split 60/20/20 by time."""
    if quads is None:
        rng = np.random.default_rng(0)
        quads = np.stack([rng.integers(0, len(names), 60), rng.integers(0, len(RELATIONS), 60),
                          rng.integers(0, len(names), 60), np.sort(rng.integers(0, 50, 60))], axis=1)
    quads = np.asarray(quads)
    cut1, cut2 = int(len(quads) * 0.6), int(len(quads) * 0.8)

    def split(rows):
        return EventSequences(rows[:, 3].astype(float), rows[:, 1], None, len(RELATIONS), subjects=rows[:, 0],
                              objects=rows[:, 2])

    return EventStore(name="toy", kind="tkg", train=split(quads[:cut1]), valid=split(quads[cut1:cut2]),
                      test=split(quads[cut2:]), num_types=len(RELATIONS), entity_names=list(names),
                      relation_names=[n.replace(" ", "_") for n in RELATIONS])


# --------------------------------------------------------------------------------------- reading replies

REPLIES = {
    "lamp's own format": ("""1. event type: Make a visit
   subject: Y
   object: X
2. event type: Consult
   subject: X
   object: someone else""", [(VISIT, OBJECT, SUBJECT), (CONSULT, SUBJECT, ANYONE)], 0),
    "arrows": ("""Here are the patterns:
1. Make a visit(Y -> X)
2. Consult (X -> Z)
- Use conventional military force: Y -> X""", [(VISIT, OBJECT, SUBJECT), (CONSULT, SUBJECT, ANYONE),
                                           (FORCE, OBJECT, SUBJECT)], 0),
    "role words": ("""1. event type: Make a visit; subject: the effect's object; object: the effect's subject
2. event type: Consult; subject: the subject of the effect; object: a third party""",
                   [(VISIT, OBJECT, SUBJECT), (CONSULT, SUBJECT, ANYONE)], 0),
    "JSON in a fence": ("""```json
{"patterns": [{"event_type": "Make a visit", "subject": "Y", "object": "X"},
              {"event_type": "Host a visit", "subject": "X", "object": "Y"}]}
```""", [(VISIT, OBJECT, SUBJECT), (HOST, SUBJECT, OBJECT)], 0),
    "markdown table": ("""| event type | subject | object |
|---|---|---|
| Make a visit | Y | X |
| Consult | X | Y |""", [(VISIT, OBJECT, SUBJECT), (CONSULT, SUBJECT, OBJECT)], 0),
    "s | r | o lines": ("""1. Y | Make a visit | X
2. X | Consult | Y""", [(VISIT, OBJECT, SUBJECT), (CONSULT, SUBJECT, OBJECT)], 0),
    "small-model noise": ("""Sure! Causes of this event:
1. event type: Make a visit
   subject: Y
   object: X
2. event type: Make a visit
   subject: Y
   object: X
3. event type: Sacrifice a goat
   subject: X
   object: Y
4. event type: Consult
   subject: China
   object: Y
5. event type: Cons""", [(VISIT, OBJECT, SUBJECT), (CONSULT, ANYONE, OBJECT)], 2),  # the goat and "Cons"
}


@pytest.mark.parametrize("style", sorted(REPLIES))
def test_pattern_replies_in_every_style(style):
    text, expected, unknown = REPLIES[style]
    patterns, dropped = parse_patterns(text, INDEX)
    assert [(p.relation, p.subject, p.object) for p in patterns] == expected
    assert dropped == unknown


def test_pattern_parser_limits_and_never_raises():
    many = "\n".join(f"{k + 1}. {RELATIONS[k % 4]}(X -> {'Y' if k < 4 else 'Z'})" for k in range(8))
    assert len(parse_patterns(many, INDEX, max_patterns=3)[0]) == 3
    for junk in (None, "", "   ", "{[(", "1.", "event type:", 42, "\x00" * 50, "X -> Y" * 1000):
        assert parse_patterns(junk, INDEX)[0] == []
    # typed sequences: event types only, from fields or bare item lines
    typed, unknown = parse_patterns("1. event type: Consult\n2. Host a visit\n3. Dancing", INDEX, typed=True)
    assert [(p.relation, p.subject, p.object) for p in typed] == [(CONSULT, ANYONE, ANYONE), (HOST, ANYONE, ANYONE)]
    assert unknown == 1


@pytest.mark.parametrize("text, role", [("X", SUBJECT), ("Y", OBJECT), ("Z", ANYONE), ("someone else", ANYONE),
                                        ("Y (the effect's object)", OBJECT), ("the effect's subject", SUBJECT),
                                        ("an actor", SUBJECT), ("target", OBJECT), ("China", ANYONE), (None, ANYONE),
                                        ("subject or object", ANYONE)])
def test_roles(text, role):
    assert role_of(text) == role


# --------------------------------------------------------------------------------------- instantiation

def test_instantiation_puts_each_candidates_entities_in_their_roles():
    texts = EventTexts(_kg_store())
    patterns = {HOST: [Pattern(VISIT, OBJECT, SUBJECT), Pattern(CONSULT, SUBJECT, ANYONE),
                       Pattern(CONSULT, ANYONE, OBJECT), Pattern(HOST, SUBJECT, OBJECT)]}
    effects = np.array([[1, HOST, 0, 30],    # Beta Land hosts Alpha Land
                        [2, HOST, 1, 30],    # the same type, another candidate object
                        [1, CONSULT, 0, 30]])  # a type without patterns
    causes = instantiate(patterns, effects, texts)
    assert causes[0] == ["Alpha Land | Make a visit | Beta Land", "Beta Land | Consult", "Consult | Alpha Land",
                         "Beta Land | Host a visit | Alpha Land"]
    assert causes[1] == ["Beta Land | Make a visit | Gamma", "Gamma | Consult", "Consult | Beta Land",
                         "Gamma | Host a visit | Beta Land"]
    assert causes[2] == []


def test_instantiation_for_typed_sequences_names_the_type():
    seqs = EventSequences.from_lists([[1.0, 2.0, 3.0]], [[0, 1, 2]], num_types=3)
    store = EventStore(name="typed", kind="typed", train=seqs, valid=seqs, test=seqs, num_types=3,
                       type_names=["Books", "Toys", "Garden"])
    effects = np.array([[0, 2, 1, 3.0], [0, 2, 2, 3.0]])  # (sequence, index, candidate type, time)
    causes = instantiate({1: [Pattern(0), Pattern(2)]}, effects, EventTexts(store))
    assert causes == [["Books", "Garden"], []]


# --------------------------------------------------------------------------------------- the rules miner

# A=0, B=1, C=2; window 3.  Worked by hand in the comments of test_miner_against_a_hand_computed_example.
HAND = np.array([[0, VISIT, 1, 1],     # e1 A visits B
                 [1, HOST, 0, 2],      # e2 B hosts A      <- e1: visit(object -> subject)
                 [0, VISIT, 2, 5],     # e3 A visits C
                 [2, HOST, 0, 6],      # e4 C hosts A      <- e3: visit(object -> subject)
                 [0, VISIT, 1, 20],    # e5 A visits B     (followed by nothing)
                 [2, CONSULT, 0, 21],  # e6 C consults A
                 [0, HOST, 2, 22]])    # e7 A hosts C      <- e6: consult(object -> subject); e5 shares A only


def test_miner_against_a_hand_computed_example():
    """Heads "host": e2, e4 (bodies e1, e3: visit with the roles swapped) and e7 (body e6: consult swapped;
    e5 shares one entity only, and cyclic rules bind both).  visit(object -> subject): support 2 (e2, e4);
    confidence 2/3 (of the three visits e1, e3, e5, two are followed by the swapped host within 3);
    chance 3/7 (of all seven events, e1, e3 and e6 are followed by a host with the roles swapped); score
    2/3 - 3/7 = 5/21.  consult(object -> subject): support 1, confidence 1/1, score 1 - 3/7 = 4/7.  Ranked
    by support x score: consult (4/7 = 0.571) before visit (10/21 = 0.476)."""
    rows, times = HAND[:, :3], HAND[:, 3].astype(float)
    mined = mine_patterns(rows, times, rows, times, num_types=4, window=3, min_support=1)
    assert set(mined) == {HOST}
    consult, visit = mined[HOST]
    assert (consult.relation, consult.subject, consult.object, consult.support) == (CONSULT, OBJECT, SUBJECT, 1)
    assert (visit.relation, visit.subject, visit.object, visit.support) == (VISIT, OBJECT, SUBJECT, 2)
    assert consult.score == pytest.approx(4 / 7) and visit.score == pytest.approx(5 / 21)
    # a minimum support of 2 keeps only the visit; every cause is one step before its effect, so a window
    # of 1 finds the same and a window of 0.5 none
    assert [p.relation for p in mine_patterns(rows, times, rows, times, 4, 3, min_support=2)[HOST]] == [VISIT]
    assert mine_patterns(rows, times, rows, times, 4, 1, min_support=1) == mined
    assert mine_patterns(rows, times, rows, times, 4, 0.5, min_support=1) == {}
    # a body strictly before its head: events at the head's own time are not causes
    same_time = np.array([[0, VISIT, 1, 5], [1, HOST, 0, 5]])
    assert mine_patterns(same_time[:, :3], same_time[:, 3], same_time[:, :3], same_time[:, 3], 4, 3, 1) == {}


def test_miner_typed_sequences_and_bad_input():
    # sequence 0: a, b, a, b; sequence 1: a, c (rows (sequence, type, sequence)); every b follows an a
    rows = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 1, 0], [1, 0, 1], [1, 2, 1]])
    times = np.array([1.0, 2.0, 3.0, 4.0, 1.0, 2.0])
    mined = mine_patterns(rows, times, rows, times, num_types=3, window=1.5, min_support=1, typed=True)
    assert [(p.relation, p.support) for p in mined[1]] == [(0, 2)]
    assert mined[1][0].score == pytest.approx(2 / 3 - 2 / 6)  # 2 of 3 a's followed by b; 2 of 6 events
    with pytest.raises(ValueError, match="window"):
        mine_patterns(rows, times, rows, times, 3, 0)
    with pytest.raises(ValueError, match="event types"):
        mine_patterns(rows, times, rows, times, 2, 1.0)
    with pytest.raises(ValueError, match="one time per row"):
        mine_patterns(rows, times[:3], rows, times, 3, 1.0)


# --------------------------------------------------------------------------------------- the prompts

def test_one_prompt_per_event_type_with_mined_demonstrations_never_its_own():
    store = _kg_store()
    demos = {VISIT: [Pattern(HOST, OBJECT, SUBJECT), Pattern(CONSULT, SUBJECT, OBJECT)],
             HOST: [Pattern(VISIT, OBJECT, SUBJECT), Pattern(CONSULT, SUBJECT, OBJECT)]}
    ab = EventTypeAbductor(store, demos=demos, num_shots=1)
    prompt = ab.build_prompt(HOST)
    shown = "\n".join(m["content"] for m in prompt)
    assert prompt[-1]["content"] == "Effect event:\nevent type: Host a visit\nsubject: X\nobject: Y"
    assert sum("Effect event:" in m["content"] for m in prompt) == 2  # one demonstration, then the query
    assert "event type: Make a visit\nsubject: X" in shown or "Make a visit" in prompt[-3]["content"]
    assert "Host a visit" not in prompt[-3]["content"]  # the demonstration is of another type than the query's
    replies = {HOST: "1. Make a visit(Y -> X)\n2. Bribe a judge(X -> Y)", FORCE: "nothing useful",
               CONSULT: "1. Consult the stars(X -> Y)"}
    ab.client = ScriptedClient([(ab.build_prompt(t), reply) for t, reply in replies.items()])
    with pytest.warns(UserWarning, match="ZERO cause patterns"):  # two of three replies gave no usable pattern
        out = ab.abduce_types([HOST, FORCE, HOST, CONSULT])
    assert out == {HOST: [Pattern(VISIT, OBJECT, SUBJECT)], FORCE: [], CONSULT: []}
    assert ab.client.stats.misses == 3  # one prompt per event type, a repeated type asked once
    assert (ab.stats.replies, ab.stats.patterns, ab.stats.unknown_event_types, ab.stats.zero_pattern_replies) == \
        (3, 1, 2, 2)
    with pytest.raises(ValueError, match="out of range"):
        ab.build_prompt(99)

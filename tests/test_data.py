"""The event store and its loaders: real counts, round trips, and every kind of bad input."""
import gzip
import json
import os
import pickle

import numpy as np
import pytest

from lamp import _core
from lamp._reference.events import first_bad_event
from lamp.data import (DataError, EventSequences, load_amazon_jsonl, load_easytpp, load_easytpp_splits,
                       load_tkg, save_easytpp_json)
from lamp.datasets import load_amazon_sample, load_gdelt_sample


# --- the C validation kernel against its NumPy reference ----------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_check_sequences_matches_reference(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 6, size=rng.integers(1, 6))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    times = np.concatenate([np.sort(rng.uniform(0, 10, size=k)) for k in lengths]) if n else np.zeros(0)
    marks = rng.integers(0, 4, size=n)
    if n and rng.random() < 0.7:  # corrupt one event
        i = rng.integers(n)
        kind = rng.integers(3)
        if kind == 0:
            times[i] = np.nan
        elif kind == 1:
            times[i] -= 20
        else:
            marks[i] = rng.choice([-1, 4, 100])
    expected = first_bad_event(times, marks, offsets, 4)
    if expected is None:
        _core.check_sequences(times, marks, offsets, 4)
    else:
        with pytest.raises(ValueError) as info:
            _core.check_sequences(times, marks, offsets, 4)
        assert (info.value.sequence, info.value.event) == expected
        assert f"sequence {expected[0]}, event {expected[1]}" in str(info.value)


def test_check_sequences_rejects_wrong_dtypes_and_shapes():
    with pytest.raises(TypeError, match="'marks'"):
        _core.check_sequences(np.zeros(2), np.array([0.5, 1.0]), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="'marks'"):
        _core.check_sequences(np.zeros(2), np.array([0, 1, 1]), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="'times' must have 1 dimension"):
        _core.check_sequences(np.zeros((2, 1)), np.array([0, 1]), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="offsets"):
        _core.check_sequences(np.zeros(2), np.array([0, 1]), np.array([0, 3]), 2)
    # non-contiguous input is converted, not misread
    times = np.arange(10.0)[::2]
    _core.check_sequences(times, np.zeros(5, dtype=np.int32), np.array([0, 5]), 1)


# --- the real data sets ------------------------------------------------------------------------

def test_icews14_counts(icews14):
    assert (len(icews14.train), len(icews14.valid), len(icews14.test)) == (74845, 8514, 7371)
    assert icews14.num_entities == 7128 and icews14.num_relations == 230
    assert icews14.kind == "tkg" and icews14.num_types == 230
    assert icews14.entity_names[2] == "Citizen_(Nigeria)"
    assert icews14.relation_names[0] == "Make_statement"
    # first test line of the file: 30 13 18 8016
    assert tuple(icews14.test.quadruples()[0]) == (30, 13, 18, 8016)
    assert icews14.train.times.max() < icews14.valid.times.min() <= icews14.valid.times.max() < \
        icews14.test.times.min()
    assert "ICEWS" in icews14.attribution


def test_bundled_icews14_equals_shared_copy(shared_data, icews14):
    shared = load_tkg(os.path.join(shared_data, "icews14"))
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(shared, split).quadruples(), getattr(icews14, split).quadruples())
    assert shared.entity_names == icews14.entity_names


def test_gdelt_sample_loads(shared_data):
    with pytest.warns(UserWarning, match="chronologically"):
        store = load_tkg(os.path.join(shared_data, "gdelt_sample"))
    assert len(store.train) + len(store.valid) + len(store.test) == 20000
    assert store.num_entities == 7691 and store.num_relations == 240
    # no timestamp straddles two splits
    assert store.train.times.max() < store.valid.times.min()
    assert store.valid.times.max() < store.test.times.min()
    bundled = load_gdelt_sample()
    np.testing.assert_array_equal(bundled.test.quadruples(), store.test.quadruples())


def test_amazon_loads(shared_data):
    seqs = load_amazon_jsonl(os.path.join(shared_data, "amazon_reviews_sample", "test.jsonl"))
    assert seqs.num_sequences == 23 and len(seqs) == 23 * 5
    assert np.all(seqs.lengths == 5)
    assert len(seqs.texts) == len(seqs) and all(isinstance(t, str) and t for t in seqs.texts)
    assert seqs.type_names == sorted(seqs.type_names)
    first = json.loads(open(os.path.join(shared_data, "amazon_reviews_sample", "test.jsonl")).readline())
    assert seqs.sequence_ids[0] == first["user_id"]
    assert seqs.times[0] == pytest.approx(int(first["history"][0]["timestamp_ms"]) / 86_400_000)
    assert seqs.texts[0].startswith(first["history"][0]["review_title"])
    store = load_amazon_sample()
    assert len(store.train) + len(store.valid) == 70 * 5 and len(store.test) == 23 * 5
    assert store.train.type_names == store.test.type_names


# --- EasyTPP formats ---------------------------------------------------------------------------

def _easytpp_pickle(path, sequences, k=3, split="train"):
    data = {"dim_process": k, split: [[{"time_since_start": t, "time_since_last_event": d, "type_event": m}
                                       for t, d, m in seq] for seq in sequences]}
    with open(path, "wb") as f:
        pickle.dump(data, f)


def test_easytpp_pickle_and_json_round_trip(tmp_path):
    seqs = [[(0.5, 0.5, 0), (1.0, 0.5, 2), (2.5, 1.5, 1)], [(0.1, 0.1, 1)], [(3.0, 0.7, 2), (3.0, 0.0, 2)]]
    _easytpp_pickle(tmp_path / "train.pkl", seqs)
    data = load_easytpp(tmp_path / "train.pkl")
    assert data.num_sequences == 3 and len(data) == 6 and data.num_types == 3
    np.testing.assert_array_equal(data.lengths, [3, 1, 2])
    # time_since_last_event is kept as given, not recomputed (0.7 is not a diff)
    assert data.time_deltas()[4] == 0.7
    save_easytpp_json(data, tmp_path / "train.json")
    back = load_easytpp(tmp_path / "train.json")
    for name in ("times", "marks", "offsets"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    np.testing.assert_array_equal(back.time_deltas(), data.time_deltas())
    assert back.num_types == 3
    # JSON array form (HuggingFace style) reads too
    records = [json.loads(line) for line in open(tmp_path / "train.json")]
    with open(tmp_path / "array.json", "w") as f:
        json.dump(records, f)
    np.testing.assert_array_equal(load_easytpp(tmp_path / "array.json").times, data.times)


def test_easytpp_splits_store(tmp_path):
    _easytpp_pickle(tmp_path / "train.pkl", [[(0.5, 0.5, 0)]], split="train")
    _easytpp_pickle(tmp_path / "dev.pkl", [[(0.5, 0.5, 1)]], split="dev")
    store = load_easytpp_splits(tmp_path / "train.pkl", tmp_path / "dev.pkl", None)
    assert len(store.train) == 1 and len(store.valid) == 1 and store.test is None


@pytest.mark.parametrize("events, message", [
    ([[(1.0, 1.0, 0), (0.5, 0.1, 1)]], "before the previous time"),
    ([[(1.0, 1.0, 0), (float("nan"), 0.1, 1)]], "not finite"),
    ([[(1.0, 1.0, 0), (float("inf"), 0.1, 1)]], "not finite"),
    ([[(1.0, 1.0, 3)]], "outside"),
    ([[(1.0, 1.0, -1)]], "outside"),
    ([[(1.0, 1.0, 1.5)]], "integers"),
])
def test_easytpp_bad_events(tmp_path, events, message):
    _easytpp_pickle(tmp_path / "bad.pkl", [[(0.1, 0.1, 0)]] + events)
    with pytest.raises(DataError, match=message) as info:
        load_easytpp(tmp_path / "bad.pkl")
    assert "bad.pkl" in str(info.value) and "sequence 1" in str(info.value)


def test_easytpp_missing_empty_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        load_easytpp(tmp_path / "nope.pkl")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_easytpp(tmp_path / "empty.json")
    (tmp_path / "bad.json").write_text('{"time_since_start": [0.1], "type_event": [0], "dim_process": 2}\n')
    with pytest.raises(DataError, match="time_since_last_event") as info:
        load_easytpp(tmp_path / "bad.json")
    assert "sequence 0" in str(info.value)
    (tmp_path / "garbage.json").write_text('{"a": 1}\n{not json\n')
    with pytest.raises(DataError, match="line 2"):
        load_easytpp(tmp_path / "garbage.json")
    with open(tmp_path / "two.pkl", "wb") as f:
        pickle.dump({"dim_process": 2, "train": [], "test": []}, f)
    with pytest.raises(DataError, match="pass split="):
        load_easytpp(tmp_path / "two.pkl")


# --- TKG folders -------------------------------------------------------------------------------

def _tkg_folder(tmp_path, train="0\t0\t1\t0\t-1\n1\t1\t0\t24\t-1\n", valid="0\t1\t1\t48\t-1\n",
                test="1\t0\t0\t72\t-1\n"):
    (tmp_path / "entity2id.txt").write_text("Citizen_(Nigeria)\t0\nUnited States\t1\n")
    (tmp_path / "relation2id.txt").write_text("Make statement\t0\nConsult\t1\n")
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (tmp_path / f"{name}.txt").write_text(text)
    return tmp_path


def test_tkg_names_with_spaces_and_gzip(tmp_path):
    store = load_tkg(_tkg_folder(tmp_path))
    assert store.entity_names == ["Citizen_(Nigeria)", "United States"]
    assert len(store.train) == 2
    with gzip.open(tmp_path / "test.txt.gz", "wt") as f:
        f.write("1\t0\t0\t72\n")
    os.remove(tmp_path / "test.txt")
    assert len(load_tkg(tmp_path).test) == 1


@pytest.mark.parametrize("line, message", [
    ("0\t0\t1\n", "at least 4 columns"),
    ("0\t0\t1\tnoon\t-1\n", "not a number"),
    ("0\t0\t7\t10\t-1\n", "object id 7 is not in entity2id"),
    ("9\t0\t1\t10\t-1\n", "subject id 9"),
    ("0\t5\t1\t10\t-1\n", "relation id 5"),
    ("0\t0\t1\tnan\t-1\n", "not finite"),
])
def test_tkg_malformed_lines_name_file_and_line(tmp_path, line, message):
    _tkg_folder(tmp_path, train="0\t0\t1\t0\t-1\n" + line)
    with pytest.raises(DataError, match=message) as info:
        load_tkg(tmp_path)
    assert "train.txt" in str(info.value) and "line 2" in str(info.value)


def test_tkg_out_of_order_is_sorted_with_warning(tmp_path):
    _tkg_folder(tmp_path, train="0\t0\t1\t24\t-1\n1\t1\t0\t0\t-1\n")
    with pytest.warns(UserWarning, match="sorted"):
        store = load_tkg(tmp_path)
    np.testing.assert_array_equal(store.train.times, [0, 24])
    np.testing.assert_array_equal(store.train.subjects, [1, 0])


def test_tkg_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        load_tkg(tmp_path / "missing")
    _tkg_folder(tmp_path)
    (tmp_path / "valid.txt").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_tkg(tmp_path)
    os.remove(tmp_path / "entity2id.txt")
    with pytest.raises(FileNotFoundError, match="entity2id.txt"):
        load_tkg(tmp_path)


def test_tkg_duplicate_ids(tmp_path):
    _tkg_folder(tmp_path)
    (tmp_path / "entity2id.txt").write_text("A\t0\nB\t0\n")
    with pytest.raises(DataError, match="appears twice"):
        load_tkg(tmp_path)


# --- Amazon bad input --------------------------------------------------------------------------

def test_amazon_bad_input(tmp_path):
    good = {"user_id": "u", "history": [{"timestamp_ms": "1000", "rating": "4.0", "review_title": "t",
                                         "review_full": "r", "product": {"main_category": "Books"}}],
            "heldout": {"timestamp_ms": "2000", "rating": "5.0", "review_title": "t2", "review_full": "r2",
                        "product": "{'main_category': 'Toys'}"}}
    (tmp_path / "a.jsonl").write_text(json.dumps(good) + "\n")
    seqs = load_amazon_jsonl(tmp_path / "a.jsonl")
    assert seqs.type_names == ["Books", "Toys"] and list(seqs.marks) == [0, 1]
    bad = dict(good, history=[dict(good["history"][0], timestamp_ms="soon")])
    (tmp_path / "b.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match="timestamp_ms") as info:
        load_amazon_jsonl(tmp_path / "b.jsonl")
    assert "line 2" in str(info.value)
    with pytest.raises(DataError, match="not in the given categories"):
        load_amazon_jsonl(tmp_path / "a.jsonl", categories=["Books"])


# --- the store itself --------------------------------------------------------------------------

def test_event_sequences_views_and_errors():
    seqs = EventSequences.from_lists([[0.0, 1.0], [2.0]], [[0, 1], [1]], 2, sequence_ids=["a", "b"])
    assert len(seqs) == 3 and seqs.num_sequences == 2
    one = seqs.sequence(1)
    assert len(one) == 1 and one.sequence_ids == ["b"] and one.times[0] == 2.0
    np.testing.assert_array_equal(seqs.time_deltas(), [0.0, 1.0, 0.0])
    with pytest.raises(IndexError):
        seqs.sequence(2)
    with pytest.raises(TypeError, match="'marks' must hold integers"):
        EventSequences([0.0, 1.0], [0.0, 1.5])
    with pytest.raises(DataError, match="outside"):
        EventSequences.from_lists([[0.0]], [[5]], 2)
    with pytest.raises(ValueError, match="'subjects' has 1 entries"):
        EventSequences([0.0, 1.0], [0, 1], subjects=[0])

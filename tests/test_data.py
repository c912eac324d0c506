"""The event store and its loaders: real counts, round trips, and every kind of bad input."""
import gzip
import json
import os
import pickle
import textwrap

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


# --- pickles: only data, never code --------------------------------------------------------------

class _Payload:
    """Unpickles to ``func(*args)``: what a malicious pickle does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _malicious_pickles(tmp_path):
    marker = tmp_path / "payload_ran"
    import subprocess
    return marker, {
        "os.system": pickle.dumps(_Payload(os.system, f"touch {marker}")),
        "builtins.open": pickle.dumps({"dim_process": 2, "train": [[_Payload(open, str(marker), "w")]]}, protocol=2),
        "subprocess.Popen": pickle.dumps(_Payload(subprocess.Popen, ["touch", str(marker)]), protocol=0),
        "builtins.exec": pickle.dumps(_Payload(exec, f"open({str(marker)!r}, 'w')"), protocol=4),
    }


@pytest.mark.parametrize("which", ["os.system", "builtins.open", "subprocess.Popen", "builtins.exec"])
def test_pickle_payload_is_refused_and_runs_nothing(tmp_path, which):
    marker, payloads = _malicious_pickles(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(payloads[which])
    asked = {"os.system": "system", "builtins.open": "open", "subprocess.Popen": "Popen", "builtins.exec": "exec"}
    for load in (lambda: load_easytpp(path), lambda: load_easytpp_splits(path, path, path)):
        with pytest.raises(DataError, match=f"refusing to load this pickle: it asks for .*{asked[which]}; "
                                            "lamp loads only") as info:
            load()
        assert str(path) in str(info.value) and info.value.path == str(path)
    assert not marker.exists()
    assert os.listdir(tmp_path) == ["evil.pkl"]


@pytest.mark.parametrize("data_format", ["json", "pkl"])
def test_pickle_payload_refused_through_a_config_data_section(tmp_path, data_format):
    """``data_format: json`` with .pkl paths reaches the pickle reader too: the same refusal."""
    from lamp import data as lamp_data
    from lamp import datasets
    marker, payloads = _malicious_pickles(tmp_path)
    path = tmp_path / "train.pkl"
    path.write_bytes(payloads["os.system"])
    section = {"data_format": data_format, "train_dir": str(path), "valid_dir": None, "test_dir": None}
    for load_section in (lamp_data.load_section, datasets.load_section):
        with pytest.raises(DataError, match="refusing to load") as info:
            load_section(section, name="evil")
        assert str(path) in str(info.value)
    assert not marker.exists()


def test_real_easytpp_pickles_load(tmp_path):
    """EasyTPP pickles as published: Python 3 (any protocol), NumPy scalars and arrays, and Python 2 files."""
    seqs = [[(0.5, 0.5, 0), (1.0, 0.5, 2)], [(0.25, 0.25, 1)]]
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        _easytpp_pickle(tmp_path / "plain.pkl", seqs)
        data = {"dim_process": np.int64(3), "dev": [[{"time_since_start": np.float64(t), "time_since_last_event":
                                                       np.float32(d), "type_event": np.int64(m)} for t, d, m in seq]
                                                     for seq in seqs],
                "seq_lengths": np.array([2, 1]), "times": np.array([[0.5, 1.0]], dtype=np.float32)}
        with open(tmp_path / "numpy.pkl", "wb") as f:
            pickle.dump(data, f, protocol=protocol)
        for name in ("plain.pkl", "numpy.pkl"):
            got = load_easytpp(tmp_path / name)
            np.testing.assert_array_equal(got.times, [0.5, 1.0, 0.25])
            np.testing.assert_array_equal(got.marks, [0, 2, 1])
            np.testing.assert_array_equal(got.offsets, [0, 2, 3])
            np.testing.assert_array_equal(got.time_deltas(), [0.5, 0.5, 0.25])
            assert got.num_types == 3
    # a Python 2 pickle (protocol 0, str as bytes, numpy.core names), read as Latin-1
    py2 = (b"(dp0\nS'dev'\np1\n(lp2\n(lp3\n(dp4\nS'time_since_last_event'\np5\nF0.5\nsS'type_event'\np6\nI1\n"
           b"sS'time_since_start'\np7\ncnumpy.core.multiarray\nscalar\np20\n(cnumpy\ndtype\np21\n(S'f8'\nI0\nI1\n"
           b"tRp22\n(I3\nS'<'\nNNNI-1\nI-1\nI0\ntbS'\\x00\\x00\\x00\\x00\\x00\\x00\\xe0?'\ntRp23\n"
           b"saasS'dim_process'\np8\nI2\nsS'seq_times'\np30\ncnumpy.core.multiarray\n_reconstruct\np31\n"
           b"(cnumpy\nndarray\np32\n(I0\ntp33\nS'b'\np34\ntp35\nRp36\n(I1\n(I2\ntp37\ng21\n(S'f8'\nI0\nI1\n"
           b"tRp38\n(I3\nS'<'\nNNNI-1\nI-1\nI0\ntbI00\nS'\\x00\\x00\\x00\\x00\\x00\\x00\\xe0?\\x00\\x00\\x00"
           b"\\x00\\x00\\x00\\xf0?'\ntp39\nbs.")
    (tmp_path / "py2.pkl").write_bytes(py2)
    got = load_easytpp(tmp_path / "py2.pkl")
    assert list(got.times) == [0.5] and list(got.marks) == [1] and got.num_types == 2


@pytest.mark.parametrize("via", ["load_easytpp_splits", "pkl", "json"])
def test_easytpp_splits_unpickle_each_file_once(tmp_path, monkeypatch, via):
    """Each file is unpickled once, by the restricted unpickler (never plain pickle.load): through
    load_easytpp_splits and through a config's data section (what `lamp run` and the Pipeline read), also
    under data_format: json with .pkl paths."""
    from lamp.data import easytpp, load_section
    with open(tmp_path / "all.pkl", "wb") as f:
        pickle.dump({"dim_process": 2, "train": [[{"time_since_start": 1.0, "time_since_last_event": 1.0,
                                                   "type_event": 0}]], "dev": [], "test": []}, f)
    _easytpp_pickle(tmp_path / "test.pkl", [[(0.5, 0.5, 1)]], k=2, split="test")
    calls = []
    real = easytpp.load_pickle
    monkeypatch.setattr(easytpp, "load_pickle", lambda p: calls.append(os.path.basename(p)) or real(p))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("plain pickle.load was called"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("plain pickle.loads was called"))
    if via == "load_easytpp_splits":
        store = load_easytpp_splits(tmp_path / "all.pkl", tmp_path / "all.pkl", tmp_path / "test.pkl")
    else:
        store = load_section({"data_format": via, "train_dir": str(tmp_path / "all.pkl"),
                              "valid_dir": str(tmp_path / "all.pkl"), "test_dir": str(tmp_path / "test.pkl")})
    assert calls == ["all.pkl", "test.pkl"]
    assert (len(store.train), len(store.valid), len(store.test)) == (1, 0, 1)


@pytest.mark.slow
def test_gzip_bomb_is_a_data_error(tmp_path):
    """A 1 MiB gzip file that decompresses to 1 GiB, read under a memory limit: a DataError naming the file
    (MemoryError caught), for the TKG and the EasyTPP loaders."""
    import subprocess
    import sys
    import zlib

    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1 << 20)
    bomb = co.compress(b"[") + b"".join(co.compress(chunk) for _ in range(1024)) + co.flush()
    (tmp_path / "train.json.gz").write_bytes(bomb)
    tkg = tmp_path / "tkg"
    tkg.mkdir()
    (tkg / "entity2id.txt.gz").write_bytes(bomb)
    (tkg / "relation2id.txt").write_text("Consult\t0\n")
    for f in ("train.txt", "valid.txt", "test.txt"):
        (tkg / f).write_text("0\t0\t0\t0\n")
    code = textwrap.dedent(f"""
        import resource
        from lamp.data import load_easytpp, load_tkg
        from lamp.errors import DataError
        vm = int([l for l in open('/proc/self/status') if l.startswith('VmSize')][0].split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + (400 << 20), vm + (400 << 20)))
        for load, path, name in ((load_easytpp, {str(tmp_path / "train.json.gz")!r}, "train.json.gz"),
                                 (load_tkg, {str(tkg)!r}, "entity2id.txt.gz")):
            try:
                load(path)
            except DataError as exc:
                assert name in str(exc) and "memory" in str(exc), str(exc)
                print("ok", name)
            else:
                raise SystemExit("loaded a bomb")
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH")) if p))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0 and result.stdout.split() == ["ok", "train.json.gz", "ok", "entity2id.txt.gz"], \
        result.stdout + result.stderr[-2000:]


# --- the number rule, the time range, the BOM, the id bound ---------------------------------------

@pytest.mark.parametrize("text, ok", [
    ("12", True), ("-3", True), ("+7", True), ("0012", True),
    ("1_000", False), ("\u0661\u0662", False), ("１２", False), (" 12", False), ("12 ", False), ("1e3", False),
    ("1.0", False), ("", False), ("-", False), ("0x10", False), ("99999999999999999999", False),
])
def test_integer_rule(text, ok):
    from lamp.data.validate import parse_int
    if ok:
        assert parse_int(text, "id") == int(text)
    else:
        with pytest.raises(DataError, match="id"):
            parse_int(text, "id")


@pytest.mark.parametrize("text, ok", [
    ("24", True), ("-1.5", True), ("+.5", True), ("3.", True), ("1e3", True), ("2.5E-2", True),
    ("1_000", False), ("\u0661\u0662", False), ("nan", False), ("-inf", False), ("Infinity", False), ("1e300", False),
    ("4611686018427387904", False), ("-4611686018427387904", False), ("0x1p3", False), ("", False), ("1,5", False),
])
def test_time_rule(text, ok):
    from lamp.data.validate import MAX_TIME, parse_time
    if ok:
        assert parse_time(text, "time") == float(text)
    else:
        with pytest.raises(DataError, match="time"):
            parse_time(text, "time")
    assert MAX_TIME == 2.0 ** 62


def test_utf8_bom_is_stripped(tmp_path):
    _tkg_folder(tmp_path)
    bom = "\ufeff"
    (tmp_path / "entity2id.txt").write_text(bom + "Citizen_(Nigeria)\t0\nUnited States\t1\n", encoding="utf-8")
    with gzip.open(tmp_path / "relation2id.txt.gz", "wt", encoding="utf-8") as f:
        f.write(bom + "Make statement\t0\nConsult\t1\n")
    os.remove(tmp_path / "relation2id.txt")
    (tmp_path / "train.txt").write_text(bom + "0\t0\t1\t0\t-1\n", encoding="utf-8")
    store = load_tkg(tmp_path)
    assert store.entity_names[0] == "Citizen_(Nigeria)" and store.relation_names[0] == "Make statement"
    assert tuple(store.train.quadruples()[0]) == (0, 0, 1, 0)
    seqs = [[(0.5, 0.5, 0)]]
    _easytpp_pickle(tmp_path / "x.pkl", seqs)
    save_easytpp_json(load_easytpp(tmp_path / "x.pkl"), tmp_path / "x.json")
    (tmp_path / "bom.json").write_text(bom + (tmp_path / "x.json").read_text())
    assert list(load_easytpp(tmp_path / "bom.json").times) == [0.5]
    (tmp_path / "a.jsonl").write_text(bom + json.dumps({"user_id": "u", "history": [{"timestamp_ms": 86400000}]}))
    assert list(load_amazon_jsonl(tmp_path / "a.jsonl").times) == [1.0]


def test_tkg_id_bounded_by_the_file(tmp_path):
    """A 3-line entity2id.txt with id 10**9 is an error at that line (no 10**9-long list is built)."""
    _tkg_folder(tmp_path)
    (tmp_path / "entity2id.txt").write_text("A\t0\nB\t1\nC\t1000000000\n")
    with pytest.raises(DataError, match="entity id 1000000000 is out of range: the file has 3 names") as info:
        load_tkg(tmp_path)
    assert "entity2id.txt, line 3" in str(info.value)


def test_tkg_time_beyond_the_event_clock(tmp_path):
    _tkg_folder(tmp_path, train="0\t0\t1\t0\t-1\n0\t0\t1\t1e300\t-1\n")
    with pytest.raises(DataError, match="time 1e.300 is out of range") as info:
        load_tkg(tmp_path)
    assert "train.txt, line 2" in str(info.value)


def test_easytpp_string_is_not_a_list_of_digits(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"dim_process": 3, "time_since_start": "013",
                                                 "time_since_last_event": [0, 1, 2], "type_event": [0, 0, 0]}))
    with pytest.raises(DataError, match="time_since_start must be a list, got str") as info:
        load_easytpp(tmp_path / "s.json")
    assert "s.json, line 1" in str(info.value)


def test_easytpp_negative_dtime(tmp_path):
    _easytpp_pickle(tmp_path / "d.pkl", [[(0.5, 0.5, 0), (1.0, -0.5, 1)]])
    with pytest.raises(DataError, match=r"train\[0\]\[1\].time_since_last_event -0.5 is negative"):
        load_easytpp(tmp_path / "d.pkl")


# --- the corpus of malformed files (tests/data/bad, written by make_bad.py) ------------------------

BAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bad")

# file -> fragments its DataError must contain (besides the file's path)
BAD_CASES = {
    "tkg/time_1e300.txt": ["line 3", "time", "out of range"],
    "tkg/time_nan.txt": ["line 3", "time", "not finite"],
    "tkg/time_inf.txt": ["line 3", "time", "not finite"],
    "tkg/time_underscore.txt": ["line 3", "time '1_000' is not a number"],
    "tkg/time_arabic_digits.txt": ["line 3", "time", "not a number"],
    "tkg/subject_arabic_digits.txt": ["line 3", "subject id", "not an integer"],
    "tkg/object_not_integer.txt": ["line 3", "object id '1.0' is not an integer"],
    "tkg/object_unknown.txt": ["line 3", "object id 7 is not in entity2id.txt"],
    "tkg/relation_huge.txt": ["line 3", "relation id", "out of range"],
    "tkg/too_few_columns.txt": ["line 3", "at least 4 columns"],
    "tkg/not_utf8.txt": ["line 3", "not UTF-8"],
    "tkg/empty.txt": ["empty"],
    "tkg/gzip_truncated.txt.gz": ["not a readable gzip file"],
    "tkg/gzip_corrupt.txt.gz": ["not a readable gzip file"],
    "tkg/not_gzip.txt.gz": ["not a readable gzip file"],
    "tkg_entity_id_beyond_size/entity2id.txt": ["line 3", "entity id 1000000000 is out of range"],
    "tkg_entity_id_negative/entity2id.txt": ["line 2", "entity id -1 is out of range"],
    "tkg_entity_no_tab/entity2id.txt": ["line 2", "<name><TAB><id>"],
    "tkg_relation_id_underscore/relation2id.txt": ["line 2", "relation id '1_0' is not an integer"],
    "tkg_relation_not_utf8/relation2id.txt": ["line 2", "not UTF-8"],
    "easytpp_time_since_start_string.json": ["line 2", "time_since_start must be a list, got str '013'"],
    "easytpp_negative_dtime.json": ["line 2", "time_since_last_event[1] -0.5 is negative"],
    "easytpp_nan_time.json": ["line 2", "time_since_start[1] nan is not finite"],
    "easytpp_time_1e300.json": ["line 2", "time_since_start[1]", "out of range"],
    "easytpp_time_1e999.json": ["line 2", "time_since_start[1] inf is not finite"],
    "easytpp_time_as_string_in_list.json": ["[1].time_since_start[1] must be a number, got str"],
    "easytpp_type_out_of_range.json": ["line 2", "type_event[1] 3 is outside [0, 3)"],
    "easytpp_type_bool.json": ["line 2", "type_event[1] must hold integers, got bool"],
    "easytpp_type_huge.json": ["line 2", "type_event[1]", "is outside [0, 3)"],
    "easytpp_dim_process_string.json": ["line 2", "sequence 1", "dim_process must hold integers, got str"],
    "easytpp_seq_len_mismatch.json": ["line 2", "seq_len is 4"],
    "easytpp_missing_type_event.json": ["line 2", "type_event"],
    "easytpp_record_not_object.json": ["line 2", "must be an object"],
    "easytpp_truncated.json": ["line 2", "invalid JSON"],
    "easytpp_deep_nesting.json": ["invalid JSON: nested too deeply"],
    "easytpp_huge_integer.json": ["line 2", "invalid JSON"],
    "easytpp_not_utf8.json": ["line 2", "not UTF-8"],
    "easytpp_gzip_truncated.json.gz": ["not a readable gzip file"],
    "easytpp_pickle_asks_for_io_open.pkl": ["refusing to load this pickle: it asks for io.open"],
    "easytpp_pickle_asks_for_os_system.pkl": ["refusing to load this pickle: it asks for posix.system"],
    "easytpp_pickle_asks_for_eval.pkl": ["refusing to load this pickle: it asks for __builtin__.eval"],
    "easytpp_pickle_truncated.pkl": ["not a readable pickle"],
    "easytpp_pickle_garbage.pkl": ["not a readable pickle"],
    "easytpp_pickle_time_since_start_string.pkl": ["train[1][0].time_since_start must be a number, got str '013'"],
    "easytpp_pickle_negative_dtime.pkl": ["train[0][1].time_since_last_event -0.5 is negative"],
    "easytpp_pickle_inf_time.pkl": ["train[0][1].time_since_start inf is not finite"],
    "easytpp_pickle_not_a_dict.pkl": ["expected a dict"],
    "easytpp_pickle_event_not_a_dict.pkl": ["train[0][0] must be a dict"],
    "easytpp_pickle_shared_references.pkl": ["more events than bytes"],
    "easytpp_pickle_memo_index_huge.pkl": ["expected a dict", "got list"],
    "easytpp_pickle_deep_nesting.pkl": ["dim_process must hold integers", "[[[[...]]]]"],
    "amazon_timestamp_underscore.jsonl": ["line 2", "history[0].timestamp_ms '1_588_615' is not a number"],
    "amazon_timestamp_arabic_digits.jsonl": ["line 2", "history[0].timestamp_ms", "not a number"],
    "amazon_timestamp_nan.jsonl": ["line 2", "history[0].timestamp_ms 'nan' is not finite"],
    "amazon_timestamp_1e300.jsonl": ["line 2", "history[0].timestamp_ms", "out of range"],
    "amazon_rating_not_a_number.jsonl": ["line 2", "heldout.rating 'great' is not a number"],
    "amazon_history_not_a_list.jsonl": ["line 2", "history must be a list"],
    "amazon_review_not_an_object.jsonl": ["line 2", "history[1] must be an object"],
    "amazon_main_category_not_a_string.jsonl": ["line 2", "history[0].product.main_category must be a string"],
    "amazon_product_literal_too_deep.jsonl": ["line 2", "history[0].product"],
    "amazon_invalid_json.jsonl": ["line 2", "invalid JSON"],
    "amazon_deep_nesting.jsonl": ["line 2", "nested too deeply"],
    "amazon_not_utf8.jsonl": ["line 2", "not UTF-8"],
    "amazon_gzip_bad_length.jsonl.gz": ["not a readable gzip file"],
}


def _load_bad(name):
    path = os.path.join(BAD, name)
    folder, base = os.path.split(name)
    if folder == "tkg":
        return load_tkg(os.path.join(BAD, "tkg"), stream=base)
    if folder:
        return load_tkg(os.path.join(BAD, folder))
    if base.startswith("easytpp"):
        return load_easytpp(path)
    return load_amazon_jsonl(path)


def test_bad_corpus_is_complete():
    """Every file of tests/data/bad is a listed case (besides the generator, the shared id files and the
    valid files of the id-file cases' folders), and every listed case exists."""
    assert all(os.path.isfile(os.path.join(BAD, c)) for c in BAD_CASES)
    listed = set()
    for entry in os.listdir(BAD):
        if entry in ("make_bad.py", "__pycache__"):
            continue
        if entry == "tkg":
            listed |= {f"tkg/{f}" for f in os.listdir(os.path.join(BAD, "tkg"))
                       if f not in ("entity2id.txt", "relation2id.txt")}
        elif os.path.isdir(os.path.join(BAD, entry)):
            cases = [c for c in BAD_CASES if c.startswith(entry + "/")]
            assert len(cases) == 1, (entry, cases)
            listed.add(cases[0])
        else:
            listed.add(entry)
    assert listed == set(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_corpus(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the pickles' payload would create a file here
    with pytest.raises(DataError) as info:
        _load_bad(name)
    message = str(info.value)
    assert os.path.join(BAD, name) in message and info.value.path == os.path.join(BAD, name)
    for fragment in BAD_CASES[name]:
        assert fragment in message, (fragment, message)
    assert os.listdir(tmp_path) == []


def test_icews14_actors_typed_sequences():
    """The typed data set built from ICEWS14: actor-month sequences of CAMEO root codes, thousands of them."""
    from lamp.datasets import ATTRIBUTION, load_icews14, load_icews14_actors

    store = load_icews14_actors()
    assert store.kind == "typed" and store.num_types == 20 and len(store.type_names) == 20
    assert store.type_names[0].startswith("01 ") and store.type_names[-1].startswith("20 ")
    sizes = [store.train.num_sequences, store.valid.num_sequences, store.test.num_sequences]
    assert sum(sizes) > 3000 and sizes[0] > 4 * sizes[2]
    for seqs in (store.train, store.valid, store.test):
        assert seqs.lengths.min() >= 5 and seqs.lengths.max() <= 64
        assert np.all(np.diff(seqs.times)[np.diff(np.repeat(np.arange(seqs.num_sequences), seqs.lengths)) == 0] >= 0)
        assert len(seqs.texts) == len(seqs) and all(t for t in seqs.texts[:100])
    assert "CAMEO" in ATTRIBUTION["icews14_actors"] and "ICEWS" in store.attribution
    # the types are the relations' CAMEO roots: 'Make statement' is root 01, 'Consult' root 04
    kg = load_icews14()
    first = store.test.sequence_ids[0]
    assert " month " in first and first.split(" month ")[0] in kg.entity_names
    assert len({int(m) for m in store.train.marks}) == 20

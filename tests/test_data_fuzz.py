"""Fuzzing the loaders: whatever the bytes, a loader returns the data it was given or raises a DataError
naming the file; nothing else escapes (no UnicodeDecodeError, zlib.error, EOFError, KeyError, TypeError,
RecursionError, OverflowError, ...).  Bounded: every test has a fixed number of examples."""
import gzip
import json
import os
import pickle
import shutil
import tempfile
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lamp.data import (DataError, EventSequences, load_amazon_jsonl, load_easytpp, load_tkg,  # noqa: E402
                       save_easytpp_json)

# Fixed examples (derandomized) so a run is reproducible and quick (the file runs in about 10 s);
# LAMP_FUZZ_SCALE=50 multiplies the examples and draws fresh random ones, for a long hunt.
SCALE = int(os.environ.get("LAMP_FUZZ_SCALE", "1"))
FUZZ = settings(max_examples=150 * SCALE, deadline=None, derandomize=SCALE == 1, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "bad")


class _Folder:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="lamp_fuzz_")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def _attempt(load, files):
    """``load()``, or None after a DataError that names one of ``files``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load()
    except DataError as exc:
        assert exc.path in files, (exc.path, files, str(exc))
        assert exc.path in str(exc)
        return None


# --- value strategies ----------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.text(max_size=8),
                         st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                  st.dictionaries(st.text(max_size=6), inner,
                                                                                  max_size=3)), max_leaves=8)
# tokens a text column may hold: mostly numbers, sometimes anything
number_tokens = st.one_of(st.integers(-5, 30).map(str), st.floats(-1e3, 1e3, allow_nan=False).map(repr),
                          st.sampled_from(["1_0", "\u0661", "１", "nan", "-inf", "1e300", "0x1", "", "+", "1e", "٣",
                                           "99999999999999999999", "4611686018427387904", "1.5", "-0"]),
                          st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4))


# --- TKG ------------------------------------------------------------------------------------------

@st.composite
def tkg_folders(draw):
    n_e = draw(st.integers(1, 4))
    n_r = draw(st.integers(1, 3))
    quads = draw(st.lists(st.tuples(st.integers(0, n_e - 1), st.integers(0, n_r - 1), st.integers(0, n_e - 1),
                                     st.integers(0, 10 ** 6)), min_size=1, max_size=8))
    entities = [draw(st.text(alphabet=st.characters(blacklist_characters="\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                                                    blacklist_categories=("Cs",)), min_size=1, max_size=6)
                     .filter(lambda s: s.strip() and not s.startswith("\ufeff"))) for _ in range(n_e)]
    lines = [f"{s}\t{r}\t{o}\t{t}\t-1" for s, r, o, t in quads]
    corrupt = draw(st.sampled_from([None, "token", "line", "entity_id"]))
    if corrupt == "token":
        i = draw(st.integers(0, len(lines) - 1))
        cols = lines[i].split("\t")
        cols[draw(st.integers(0, 3))] = draw(number_tokens)
        lines[i] = "\t".join(cols)
    elif corrupt == "line":
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=20)))
    ids = list(range(n_e))
    if corrupt == "entity_id":
        ids[draw(st.integers(0, n_e - 1))] = draw(st.one_of(st.integers(-3, 10 ** 12).map(str), number_tokens))
    entity_text = "".join(f"{name}\t{i}\n" for name, i in zip(entities, ids))
    relation_text = "".join(f"rel {j}\t{j}\n" for j in range(n_r))
    return entities, n_r, quads, entity_text, relation_text, "\n".join(lines) + "\n", corrupt


@pytest.mark.slow
@FUZZ
@given(tkg_folders())
def test_fuzz_tkg(case):
    entities, n_r, quads, entity_text, relation_text, train_text, corrupt = case
    with _Folder() as folder:
        files = {name: os.path.join(folder, name) for name in ("entity2id.txt", "relation2id.txt", "train.txt")}
        _write(files["entity2id.txt"], entity_text)
        _write(files["relation2id.txt"], relation_text)
        _write(files["train.txt"], train_text)
        store = _attempt(lambda: load_tkg(folder), set(files.values()))
        if corrupt is None:
            assert store is not None
        if store is None:
            return
        got = store.train.quadruples()
        if corrupt is None:
            expected = np.array(sorted(quads, key=lambda q: q[3]), dtype=np.int64)
            np.testing.assert_array_equal(got, expected)
            assert store.entity_names == entities
        # round trip: write what was read, read it again
        with _Folder() as again:
            _write(os.path.join(again, "entity2id.txt"),
                   "".join(f"{n}\t{i}\n" for i, n in enumerate(store.entity_names)))
            _write(os.path.join(again, "relation2id.txt"),
                   "".join(f"{n}\t{i}\n" for i, n in enumerate(store.relation_names)))
            _write(os.path.join(again, "train.txt"), "".join(f"{s}\t{r}\t{o}\t{float(t)!r}\n" for (s, r, o, _), t in
                                                             zip(got, store.train.times)))
            back = load_tkg(again)
            np.testing.assert_array_equal(back.train.times, store.train.times)
            np.testing.assert_array_equal(back.train.quadruples(), got)
            assert back.entity_names == store.entity_names


# --- EasyTPP JSON ---------------------------------------------------------------------------------

@st.composite
def easytpp_records(draw):
    k = draw(st.integers(1, 4))
    records = []
    for i in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, 5))
        gaps = draw(st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n))
        times = list(np.cumsum(gaps)) if n else []
        records.append({"dim_process": k, "seq_len": n, "seq_idx": i, "time_since_start": [float(t) for t in times],
                        "time_since_last_event": [float(g) for g in gaps],
                        "type_event": draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))})
    corrupt = draw(st.sampled_from([None, "field", "element", "record"]))
    if corrupt == "field":
        rec = draw(st.sampled_from(records))
        rec[draw(st.sampled_from(sorted(rec)))] = draw(json_values)
    elif corrupt == "element":
        rec = draw(st.sampled_from(records))
        key = draw(st.sampled_from(["time_since_start", "time_since_last_event", "type_event"]))
        if rec[key]:
            rec[key][draw(st.integers(0, len(rec[key]) - 1))] = draw(json_values)
    elif corrupt == "record":
        records[draw(st.integers(0, len(records) - 1))] = draw(json_values)
    return records, draw(st.booleans()), corrupt


@FUZZ
@given(easytpp_records())
def test_fuzz_easytpp_json(case):
    records, as_array, corrupt = case
    with _Folder() as folder:
        path = os.path.join(folder, "data.json")
        text = json.dumps(records) if as_array else "".join(json.dumps(r) + "\n" for r in records)
        _write(path, text)
        data = _attempt(lambda: load_easytpp(path), {path})
        if corrupt is None:
            assert data is not None
            np.testing.assert_array_equal(data.times, [t for r in records for t in r["time_since_start"]])
            np.testing.assert_array_equal(data.marks, [m for r in records for m in r["type_event"]])
        if data is None:
            return
        assert np.all(np.isfinite(data.times)) and np.all(np.abs(data.times) < 2.0 ** 62)
        assert np.all(data.time_deltas() >= 0)
        save_easytpp_json(data, os.path.join(folder, "back.json"))
        back = load_easytpp(os.path.join(folder, "back.json"))
        for name in ("times", "marks", "offsets"):
            np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
        np.testing.assert_array_equal(back.time_deltas(), data.time_deltas())


# --- Amazon JSONL ---------------------------------------------------------------------------------

@st.composite
def amazon_users(draw):
    users = []
    for u in range(draw(st.integers(1, 3))):
        reviews = [{"timestamp_ms": draw(st.one_of(st.integers(0, 2 * 10 ** 12),
                                                   st.integers(0, 2 * 10 ** 12).map(str))),
                    "rating": draw(st.sampled_from([1.0, 5, "4.0", None])),
                    "review_title": draw(st.text(max_size=5)), "review_full": draw(st.text(max_size=5)),
                    "product": draw(st.sampled_from([{"title": "x", "main_category": "Books"},
                                                     "{'main_category': 'Toys'}", {}, None]))}
                   for _ in range(draw(st.integers(1, 3)))]
        users.append({"user_id": f"U{u}", "history": reviews[:-1], "heldout": reviews[-1]})
    corrupt = draw(st.sampled_from([None, "user", "review", "value"]))
    if corrupt == "user":
        user = draw(st.sampled_from(users))
        user[draw(st.sampled_from(sorted(user)))] = draw(json_values)
    elif corrupt == "review":
        user = draw(st.sampled_from(users))
        user["heldout"] = draw(json_values)
    elif corrupt == "value":
        review = draw(st.sampled_from(users))["heldout"]
        review[draw(st.sampled_from(sorted(review)))] = draw(st.one_of(json_values, number_tokens))
    return users, corrupt


@FUZZ
@given(amazon_users())
def test_fuzz_amazon_jsonl(case):
    users, corrupt = case
    with _Folder() as folder:
        path = os.path.join(folder, "reviews.jsonl")
        _write(path, "".join(json.dumps(u) + "\n" for u in users))
        seqs = _attempt(lambda: load_amazon_jsonl(path), {path})
        if corrupt is None:
            assert seqs is not None
            for s, user in enumerate(users):
                reviews = user["history"] + [user["heldout"]]
                expected = sorted(int(r["timestamp_ms"]) / 86_400_000.0 for r in reviews)
                np.testing.assert_array_equal(seqs.sequence(s).times, expected)
        if seqs is None:
            return
        assert seqs.num_sequences == len(users) and len(seqs.texts) == len(seqs)
        assert np.all(np.isfinite(seqs.times)) and seqs.type_names == sorted(seqs.type_names)


# --- byte-level mutations of valid files ------------------------------------------------------------

def _valid_files():
    """(name, bytes, loader kind) of small valid files of every format, plain and gzipped."""
    tkg = b"0\t0\t1\t0\t-1\n1\t1\t0\t24\t-1\n0\t1\t1\t48\t-1\n"
    seqs = EventSequences.from_lists([[0.5, 1.0, 2.5], [0.25]], [[0, 2, 1], [1]], 3, dtimes=[0.5, 0.5, 1.5, 0.25])
    with _Folder() as folder:
        save_easytpp_json(seqs, os.path.join(folder, "x.json"))
        easytpp_json = open(os.path.join(folder, "x.json"), "rb").read()
    events = {"dim_process": 3, "train": [[{"time_since_start": 0.5, "time_since_last_event": 0.5, "type_event": 0},
                                           {"time_since_start": np.float64(1.0), "time_since_last_event": 0.5,
                                            "type_event": np.int64(2)}]], "lengths": np.array([2])}
    review = {"timestamp_ms": "1588615855070", "rating": 4.0, "review_title": "Nice", "review_full": "Works",
              "product": {"title": "Lamp", "main_category": "Home"}}
    amazon = (json.dumps({"user_id": "U", "history": [review], "heldout": dict(review, timestamp_ms=1588615955070)})
              + "\n").encode()
    files = [("train.txt", tkg, "tkg"), ("entity2id.txt", b"A\t0\nB C\t1\n", "tkg_ids"),
             ("data.json", easytpp_json, "easytpp"), ("data.pkl", pickle.dumps(events, protocol=2), "easytpp"),
             ("data4.pkl", pickle.dumps(events, protocol=4), "easytpp"), ("reviews.jsonl", amazon, "amazon")]
    return files + [(n + ".gz", gzip.compress(b, mtime=0), kind) for n, b, kind in files if not n.endswith(".pkl")]


VALID = _valid_files()


@st.composite
def mutations(draw):
    name, data, kind = draw(st.sampled_from(VALID))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "bom"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "truncate":
            data = data[:i]
        elif op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from(
                [b"\xff", b"\xc3", b"\xef\xbb\xbf", b"_", "\u0661".encode(), b"[" * 3000, b"nan", b"e300"]))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 4))]
        elif op == "bom":
            data[0:0] = b"\xef\xbb\xbf"
    return name, bytes(data), kind


def _load(kind, folder, path):
    if kind == "tkg":
        return lambda: load_tkg(folder)
    if kind == "tkg_ids":
        return lambda: load_tkg(folder)
    if kind == "easytpp":
        return lambda: load_easytpp(path)
    return lambda: load_amazon_jsonl(path)


@settings(FUZZ, max_examples=500 * SCALE)
@given(mutations())
def test_fuzz_byte_mutations(case):
    name, data, kind = case
    with _Folder() as folder:
        path = os.path.join(folder, name)
        _write(path, data)
        files = {path}
        if kind.startswith("tkg"):
            for other, text in (("entity2id.txt", "A\t0\nB C\t1\n"), ("relation2id.txt", "r0\t0\nr1\t1\n"),
                                ("train.txt", "0\t0\t1\t0\n")):
                if not name.startswith(other):
                    _write(os.path.join(folder, other), text)
                    files.add(os.path.join(folder, other))
        _attempt(_load(kind, folder, path), files)


@settings(FUZZ, max_examples=100 * SCALE)
@given(st.sampled_from(sorted(f for f in os.listdir(BAD) if f.startswith(("easytpp", "amazon")))),
       st.integers(0, 10 ** 6), st.binary(max_size=3))
def test_fuzz_bad_corpus_mutations(name, where, insert):
    """The malformed corpus as seeds: each file, with bytes inserted somewhere, still fails cleanly."""
    data = open(os.path.join(BAD, name), "rb").read()
    i = where % (len(data) + 1)
    with _Folder() as folder:
        path = os.path.join(folder, name)
        _write(path, data[:i] + insert + data[i:])
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            _attempt(lambda: load_easytpp(path) if name.startswith("easytpp") else load_amazon_jsonl(path), {path})
        finally:
            os.chdir(cwd)
        assert not os.path.exists(os.path.join(folder, "LAMP_PICKLE_PAYLOAD_RAN"))

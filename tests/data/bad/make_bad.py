"""Writes the corpus of malformed data files beside this script (deterministic; rerun to refresh).

Each file is named by what is wrong with it; ``tests/test_data.py::test_bad_corpus`` loads each one
and expects a DataError naming the file (and the line or field).  The TKG stream cases share the
valid ``tkg/entity2id.txt`` and ``tkg/relation2id.txt``; the id-file cases are folders of their own.
The pickles that ask for a global are harmless even when loaded by plain ``pickle``: their payload
only creates an empty file ``LAMP_PICKLE_PAYLOAD_RAN`` in the working directory.
"""
import gzip
import json
import os
import pickle

HERE = os.path.dirname(os.path.abspath(__file__))
ENTITIES = "Alpha\t0\nBeta Gamma\t1\nDelta\t2\n"
RELATIONS = "Meet\t0\nConsult\t1\n"
GOOD_TKG = "0\t0\t1\t0\t-1\n1\t1\t2\t24\t-1\n"


def write(name, data):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def record(t, d, m, k=3, **extra):
    return json.dumps(dict({"dim_process": k, "seq_len": len(t), "seq_idx": 0, "time_since_start": t,
                            "time_since_last_event": d, "type_event": m}, **extra))


GOOD_RECORD = record([0.5, 1.0], [0.5, 0.5], [0, 1])


class Payload:
    """Unpickles to a call of ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def easytpp(events, k=3, split="train"):
    return {"dim_process": k, split: [[{"time_since_start": t, "time_since_last_event": d, "type_event": m}
                                       for t, d, m in seq] for seq in events]}


def main():
    # --- TKG streams (loaded with load_tkg(bad/tkg, stream=NAME)) ---
    write("tkg/entity2id.txt", ENTITIES)
    write("tkg/relation2id.txt", RELATIONS)
    good = GOOD_TKG
    write("tkg/time_1e300.txt", good + "0\t0\t1\t1e300\t-1\n")
    write("tkg/time_nan.txt", good + "0\t0\t1\tnan\t-1\n")
    write("tkg/time_inf.txt", good + "0\t0\t1\t-inf\t-1\n")
    write("tkg/time_underscore.txt", good + "0\t0\t1\t1_000\t-1\n")
    write("tkg/time_arabic_digits.txt", good + "0\t0\t1\t\u0661\u0662\t-1\n")
    write("tkg/subject_arabic_digits.txt", good + "\u0661\t0\t1\t30\t-1\n")
    write("tkg/object_not_integer.txt", good + "0\t0\t1.0\t30\t-1\n")
    write("tkg/object_unknown.txt", good + "0\t0\t7\t30\t-1\n")
    write("tkg/relation_huge.txt", good + "0\t99999999999999999999999\t1\t30\t-1\n")
    write("tkg/too_few_columns.txt", good + "0\t0\t1\n")
    write("tkg/not_utf8.txt", good.encode() + b"0\t0\t1\t3\xff0\t-1\n")
    write("tkg/empty.txt", "")
    write("tkg/gzip_truncated.txt.gz", gz(good.encode() * 50)[:40])
    corrupt = bytearray(gz(good.encode() * 50))
    corrupt[15:25] = b"\xff" * 10
    write("tkg/gzip_corrupt.txt.gz", bytes(corrupt))
    write("tkg/not_gzip.txt.gz", good)
    # --- TKG id files (a folder each, loaded with load_tkg(folder)) ---
    for case, entities, relations in (
            ("tkg_entity_id_beyond_size", "Alpha\t0\nBeta\t1\nDelta\t1000000000\n", RELATIONS),
            ("tkg_entity_id_negative", "Alpha\t0\nBeta\t-1\nDelta\t2\n", RELATIONS),
            ("tkg_entity_no_tab", "Alpha\t0\nBeta 1\nDelta\t2\n", RELATIONS),
            ("tkg_relation_id_underscore", ENTITIES, "Meet\t0\nConsult\t1_0\n"),
            ("tkg_relation_not_utf8", ENTITIES, b"Meet\t0\nCons\xc3\x28ult\t1\n")):
        write(f"{case}/entity2id.txt", entities)
        write(f"{case}/relation2id.txt", relations)
        write(f"{case}/train.txt", good)
    # --- EasyTPP JSON (load_easytpp) ---
    write("easytpp_time_since_start_string.json", GOOD_RECORD + "\n" +
          json.dumps({"dim_process": 3, "time_since_start": "013", "time_since_last_event": [0.0, 1.0, 2.0],
                      "type_event": [0, 1, 2]}) + "\n")
    write("easytpp_negative_dtime.json", GOOD_RECORD + "\n" + record([1.0, 2.0], [1.0, -0.5], [0, 1]) + "\n")
    write("easytpp_nan_time.json", GOOD_RECORD + "\n" + record([1.0, float("nan")], [1.0, 0.5], [0, 1]) + "\n")
    write("easytpp_time_1e300.json", GOOD_RECORD + "\n" + record([1.0, 1e300], [1.0, 0.5], [0, 1]) + "\n")
    write("easytpp_time_1e999.json", GOOD_RECORD + "\n" + record([1.0, 2.0], [1.0, 0.5], [0, 1])
          .replace("2.0]", "1e999]", 1) + "\n")
    write("easytpp_time_as_string_in_list.json", "[" + GOOD_RECORD + ",\n" +
          record([1.0, "2.0"], [1.0, 1.0], [0, 1]) + "]\n")
    write("easytpp_type_out_of_range.json", GOOD_RECORD + "\n" + record([1.0, 2.0], [1.0, 1.0], [0, 3]) + "\n")
    write("easytpp_type_bool.json", GOOD_RECORD + "\n" + record([1.0, 2.0], [1.0, 1.0], [0, True]) + "\n")
    write("easytpp_type_huge.json", GOOD_RECORD + "\n" + record([1.0, 2.0], [1.0, 1.0], [0, 10 ** 30]) + "\n")
    write("easytpp_dim_process_string.json", GOOD_RECORD + "\n" + record([1.0], [1.0], [0], k="3") + "\n")
    write("easytpp_seq_len_mismatch.json", GOOD_RECORD + "\n" + record([1.0], [1.0], [0], seq_len=4) + "\n")
    write("easytpp_missing_type_event.json", GOOD_RECORD + "\n" +
          json.dumps({"dim_process": 3, "time_since_start": [1.0], "time_since_last_event": [1.0]}) + "\n")
    write("easytpp_record_not_object.json", GOOD_RECORD + "\n[1, 2, 3]\n")
    write("easytpp_truncated.json", GOOD_RECORD + "\n" + GOOD_RECORD[:40] + "\n")
    write("easytpp_deep_nesting.json", "[" * 20000 + "]" * 20000 + "\n")
    write("easytpp_huge_integer.json", GOOD_RECORD + "\n" + record([1.0], [1.0], [0])
          .replace('"seq_idx": 0', '"seq_idx": ' + "9" * 5000) + "\n")
    write("easytpp_not_utf8.json", GOOD_RECORD.encode() + b"\n" + b'{"dim_process": 3, "x": "\xe9"}\n')
    write("easytpp_gzip_truncated.json.gz", gz((GOOD_RECORD + "\n").encode() * 20)[:50])
    # --- EasyTPP pickles (load_easytpp) ---
    write("easytpp_pickle_asks_for_io_open.pkl",
          pickle.dumps(Payload(open, "LAMP_PICKLE_PAYLOAD_RAN", "w"), protocol=2))
    write("easytpp_pickle_asks_for_os_system.pkl",
          pickle.dumps({"dim_process": 3, "train": [Payload(os.system, "touch LAMP_PICKLE_PAYLOAD_RAN")]},
                       protocol=4))
    write("easytpp_pickle_asks_for_eval.pkl",
          pickle.dumps(Payload(eval, "open('LAMP_PICKLE_PAYLOAD_RAN', 'w')"), protocol=0))
    write("easytpp_pickle_truncated.pkl", pickle.dumps(easytpp([[(0.5, 0.5, 0), (1.0, 0.5, 1)]]))[:-9])
    write("easytpp_pickle_garbage.pkl", bytes(range(7, 200, 3)))
    write("easytpp_pickle_time_since_start_string.pkl", pickle.dumps(easytpp([[(0.5, 0.5, 0)], [("013", 0.5, 1)]])))
    write("easytpp_pickle_negative_dtime.pkl", pickle.dumps(easytpp([[(0.5, 0.5, 0), (1.0, -0.5, 1)]])))
    write("easytpp_pickle_inf_time.pkl", pickle.dumps(easytpp([[(0.5, 0.5, 0), (float("inf"), 0.5, 1)]])))
    write("easytpp_pickle_not_a_dict.pkl", pickle.dumps([1, 2, 3]))
    write("easytpp_pickle_event_not_a_dict.pkl", pickle.dumps({"dim_process": 3, "train": [[(0.5, 0.5, 0)]]}))
    seq = easytpp([[(0.5 + i, 0.5, 0) for i in range(100)]])["train"][0]
    write("easytpp_pickle_shared_references.pkl", pickle.dumps({"dim_process": 3, "train": [seq] * 2000}))
    # a valid pickle of [] whose memo index (LONG_BINPUT 10**9) would make the C unpickler allocate gigabytes
    write("easytpp_pickle_memo_index_huge.pkl", b"\x80\x02]r" + (10 ** 9).to_bytes(4, "little") + b".")
    # dim_process and a type nested 100,000 lists deep (built by the unpickler without recursion; printing
    # them in a message would recurse)
    deep = 100_000
    write("easytpp_pickle_deep_nesting.pkl", b"\x80\x02}X\x0b\x00\x00\x00dim_process" + b"]" * deep + b"a" * (deep - 1)
          + b"sX\x05\x00\x00\x00train]s.")
    # --- Amazon JSONL (load_amazon_jsonl) ---
    review = {"timestamp_ms": "1588615855070", "rating": 4.0, "review_title": "Nice", "review_full": "Works.",
              "product": {"title": "Lamp", "main_category": "Home"}}
    user = {"user_id": "U1", "history": [review], "heldout": dict(review, timestamp_ms="1588615955070")}

    def amazon(name, bad_user):
        write(name, json.dumps(user) + "\n" + (bad_user if isinstance(bad_user, str) else json.dumps(bad_user))
              + "\n")

    amazon("amazon_timestamp_underscore.jsonl", dict(user, history=[dict(review, timestamp_ms="1_588_615")]))
    amazon("amazon_timestamp_arabic_digits.jsonl", dict(user, history=[dict(review, timestamp_ms="\u0661\u0662")]))
    amazon("amazon_timestamp_nan.jsonl", dict(user, history=[dict(review, timestamp_ms="nan")]))
    amazon("amazon_timestamp_1e300.jsonl", dict(user, history=[dict(review, timestamp_ms=1e300)]))
    amazon("amazon_rating_not_a_number.jsonl", dict(user, heldout=dict(review, rating="great")))
    amazon("amazon_history_not_a_list.jsonl", dict(user, history="abc"))
    amazon("amazon_review_not_an_object.jsonl", dict(user, history=[review, 5]))
    amazon("amazon_main_category_not_a_string.jsonl",
           dict(user, history=[dict(review, product={"main_category": ["Home"]})]))
    amazon("amazon_product_literal_too_deep.jsonl", dict(user, history=[dict(review, product="[" * 5000)]))
    amazon("amazon_invalid_json.jsonl", json.dumps(user)[:-5])
    amazon("amazon_deep_nesting.jsonl", "[" * 20000)
    write("amazon_not_utf8.jsonl", json.dumps(user).encode() + b"\n" + json.dumps(user).encode()[:30] + b"\x80\n")
    corrupt = bytearray(gz((json.dumps(user) + "\n").encode() * 20))
    corrupt[-6:] = b"\x00" * 6
    write("amazon_gzip_bad_length.jsonl.gz", bytes(corrupt))


if __name__ == "__main__":
    main()

"""Does structured output help SmolLM2 answer in a form lamp can use?  (issue: response_format)

    python scripts/measure_response_format.py CACHE [N]

Takes the first N (default 60) prompts of an answer cache written by a live main-job run
(``runs/LAMP_icews14_main/smollm2/llm_cache.sqlite``), whose replies are free text, asks the same
prompts again of the local llama.cpp server with llama.cpp's JSON-schema constrained decoding
(``response_format: {"type": "json_object", "schema": <the cause list's schema>}``), parses both
with :func:`lamp.abduction.parse_causes` and prints, per mode: the share of replies with at least
one cause, causes per reply, the share of causes whose event type and both entities resolve to
ICEWS14 ids, and seconds per reply.
"""
import json
import sqlite3
import sys
import tempfile
import time

from lamp import datasets
from lamp.abduction import cause_list_schema, normalize_name, parse_causes
from lamp.llm import ChatClient
from lamp.llm.local import DEFAULT_MODEL_NAME, LocalServer


def summary(texts, seconds, relation_index, entity_index):
    parsed = [parse_causes(t, relation_index, entity_index) for t in texts]
    causes = [c for cs in parsed for c in cs]
    resolved = [c for c in causes if c.relation_id is not None and c.subject_id is not None
                and c.object_id is not None]
    n = max(len(texts), 1)
    return {"replies": len(texts), "with_a_cause": sum(bool(cs) for cs in parsed) / n,
            "causes_per_reply": len(causes) / n, "resolved_share": len(resolved) / max(len(causes), 1),
            "resolved_per_reply": len(resolved) / n, "seconds_per_reply": seconds / n}


def main() -> int:
    cache, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT request, text FROM answers ORDER BY created LIMIT ?", (n,)).fetchall()
    requests = [json.loads(r)["messages"] for r, _ in rows]
    text_replies = [t for _, t in rows]
    store = datasets.load_icews14()
    rel = {normalize_name(x): i for i, x in enumerate(store.relation_names)}
    ent = {normalize_name(x): i for i, x in enumerate(store.entity_names)}
    schema = {"type": "json_object", "schema": cause_list_schema("tkg")}
    with LocalServer() as server, tempfile.TemporaryDirectory() as tmp:
        out = {}
        for mode, fmt in (("text", None), ("json_object + schema", schema)):
            client = ChatClient(server.base_url, DEFAULT_MODEL_NAME, cache=f"{tmp}/{len(out)}.sqlite", concurrency=1,
                                temperature=0.0, max_tokens=100, response_format=fmt,
                                progress=False)
            started = time.time()
            replies = [r.text for r in client.chat(requests)]
            out[mode] = summary(replies, time.time() - started, rel, ent)
            if mode == "text":
                same = sum(a == b for a, b in zip(replies, text_replies))
                out[mode]["same_as_the_recorded_run"] = same / len(replies)
    for mode, s in out.items():
        print(f"{mode:22s} " + ", ".join(f"{k} {v:.3g}" for k, v in s.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

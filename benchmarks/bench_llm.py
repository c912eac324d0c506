"""LLM transport: lamp's ChatClient (libcurl multi in C) vs the official openai SDK (AsyncOpenAI, same
concurrency) against the test server (a separate process) with 50 ms latency per request; and cache
lookups on a cache of 10^6 answers.

python benchmarks/bench_llm.py [--requests 800] [--cache-rows 1000000]

With --scenarios: wall times with retries, against a healthy server and two rate-limited ones (every new
prompt answered 429 with Retry-After: 0, then 500, then 200; a fixed share of the prompts answered 429 with
Retry-After: 1 the first time), all with 50 ms latency per reply, at each concurrency of --concurrencies:
lamp's ChatClient, the openai SDK's AsyncOpenAI (its own retries, a semaphore of the same concurrency) and
a plain client of as many threads (urllib, per-request exponential backoff from 0.5 s with jitter, the
server's Retry-After honoured), one after the other in one process, the median of --repeat runs each.

python benchmarks/bench_llm.py --scenarios [--scenario-requests 200] [--concurrencies 16,64] [--repeat 3]

With --pipeline: one whole `lamp run` (bundled ICEWS14, recurrency proposer, 10 candidates, about 500
prompts, concurrency 16) against a healthy test server and against the first rate-limited one (429, then
500, then 200 for every new prompt), side by side: prompts, the server's arrivals and the wall time.

python benchmarks/bench_llm.py --pipeline
"""
import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, run, table  # noqa: E402

from lamp.llm import AnswerCache, ChatClient, request_key  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


SCENARIOS = [  # (name, test server faults)
    ("healthy", {"latency": 0.05}),
    ("429, then 500, then 200", {"latency": 0.05, "status_429": 1, "status_500": 1, "retry_after": 0}),
    ("429 (Retry-After: 1) for 25% of prompts", {"latency": 0.05, "status_429_share": 0.25, "retry_after": 1}),
]
MAX_RETRIES = 5


def start_server(faults):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "lamp.llm.testserver", "--port", str(port), "--faults",
                               json.dumps(faults)], stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    return server, f"http://127.0.0.1:{port}/v1"


def run_lamp(base, prompts, conc):
    client = ChatClient(base, "test", concurrency=conc, max_retries=MAX_RETRIES, progress=False)
    return [r.text for r in client.chat([[{"role": "user", "content": p}] for p in prompts])]


def run_sdk(base, prompts, conc):
    import openai

    async def go():
        sdk = openai.AsyncOpenAI(base_url=base, api_key="unused", max_retries=MAX_RETRIES)
        sem = asyncio.Semaphore(conc)

        async def one(p):
            async with sem:
                r = await sdk.chat.completions.create(model="test", messages=[{"role": "user", "content": p}])
                return r.choices[0].message.content

        out = await asyncio.gather(*(one(p) for p in prompts))
        await sdk.close()
        return out

    return asyncio.run(go())


def run_threads(base, prompts, conc):
    """A plain client: `conc` threads, urllib, each request retried on its own after an exponential backoff
    from 0.5 s with jitter (x0.5-1.5, at most 30 s), or the server's retry-after-ms / Retry-After seconds."""
    url = base + "/chat/completions"

    def one(p):
        body = json.dumps({"model": "test", "messages": [{"role": "user", "content": p}],
                           "temperature": 0.0, "max_tokens": 256}).encode()
        for attempt in range(1, MAX_RETRIES + 2):
            wait = None
            try:
                req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=60) as reply:
                    return json.loads(reply.read())["choices"][0]["message"]["content"]
            except urllib.error.HTTPError as exc:
                if exc.code not in (408, 429) and exc.code < 500:
                    raise
                ms, seconds = exc.headers.get("retry-after-ms"), exc.headers.get("Retry-After")
                wait = float(ms) / 1000 if ms else float(seconds) if seconds else None
            except (urllib.error.URLError, ConnectionError):
                pass
            if attempt <= MAX_RETRIES:
                time.sleep(wait if wait is not None else min(0.5 * 2 ** (attempt - 1) * random.uniform(0.5, 1.5), 30))
        return None

    with ThreadPoolExecutor(conc) as pool:
        return list(pool.map(one, prompts))


CLIENTS = [("lamp ChatClient", run_lamp), ("openai SDK (AsyncOpenAI)", run_sdk), ("threads + urllib", run_threads)]


def scenarios(args):
    n, repeat = args.scenario_requests, args.repeat
    concurrencies = [int(c) for c in args.concurrencies.split(",")]
    print(f"{n} chat requests per run, 50 ms server latency, max_retries {MAX_RETRIES}; wall seconds, the median "
          f"of {repeat} runs per client, the clients taking turns; {machine()}\n")
    rows = []
    for name, faults in SCENARIOS:
        server, base = start_server(faults)
        try:
            for conc in concurrencies:
                walls = {label: [] for label, _ in CLIENTS}
                for r in range(repeat):
                    order = CLIENTS[r % len(CLIENTS):] + CLIENTS[:r % len(CLIENTS)]
                    for label, fn in order:
                        # fresh prompts for every run: a fault hits a prompt the first times the server sees it
                        prompts = [f"{label} {conc} {r} {i}" for i in range(n)]
                        t0 = time.perf_counter()
                        out = fn(base, prompts, conc)
                        walls[label].append(time.perf_counter() - t0)
                        assert all(out), f"{label}: {sum(not o for o in out)} requests failed"
                lamp, sdk, threads = (statistics.median(walls[label]) for label, _ in CLIENTS)
                rows.append([name, conc, f"{lamp:.2f}", f"{sdk:.2f}", f"{threads:.2f}", f"{lamp / sdk:.2f}x",
                             f"{lamp / threads:.2f}x"])
                print(f"  {name}, concurrency {conc}: " + ", ".join(
                    f"{label} " + " ".join(f"{w:.2f}" for w in walls[label]) for label, _ in CLIENTS), flush=True)
        finally:
            server.terminate()
            server.wait()
    print()
    print(table(["server", "concurrency", "lamp s", "openai SDK s", "threads + urllib s", "lamp / SDK",
                 "lamp / threads"], rows))


PIPELINE_CONFIG = """\
data:
  icews14: {{data_format: tkg, data_dir: lamp://icews14}}
E:
  base_config: {{dataset_id: icews14}}
  lamp:
    task: object
    num_candidates: 10
    query_limit: 60
    train_query_limit: 60
    valid_query_limit: 10
    proposer: {{model: recurrency}}
    abduction: {{backend: openai, base_url: "{url}", model: test, num_shots: 2, concurrency: 16}}
    ranker: {{epochs: 3, width: 16}}
    evaluation: {{bootstrap: 200}}
"""


def pipeline_scenario():
    from lamp.llm.testserver import TestServer
    from lamp.pipeline import Pipeline

    print(f"one lamp run: bundled ICEWS14, recurrency proposer, 10 candidates, concurrency 16, 50 ms server "
          f"latency; {machine()}\n")
    rows = []
    for name, faults in SCENARIOS[:2]:
        # in this process, for the server's log of arrivals (its threads wait on sockets; the client waits in C)
        with TestServer(faults=faults) as server, tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(PIPELINE_CONFIG.format(url=server.base_url))
            t0 = time.perf_counter()
            metrics = Pipeline.from_yaml(path, out=os.path.join(tmp, "run")).run()["object"]
            wall = time.perf_counter() - t0
            with open(os.path.join(tmp, "run", "abduction", "result.json")) as f:
                stats = json.load(f)["stats"]
            arrivals = server.arrivals
        failed = sum(stats["failed_by_split"].values())
        prompts = len({key for _, _, key in arrivals})
        rows.append([name, prompts, len(arrivals), failed, f"{metrics['lamp']['mr']:.3f}", f"{wall:.1f}"])
    print(table(["server", "prompts", "requests the server saw", "failed", "LAMP MR", "wall s"], rows))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cache-rows", type=int, default=1_000_000)
    parser.add_argument("--scenarios", action="store_true", help="only the retry scenarios (see the docstring)")
    parser.add_argument("--pipeline", action="store_true", help="only the pipeline run (see the docstring)")
    parser.add_argument("--scenario-requests", type=int, default=200)
    parser.add_argument("--concurrencies", default="16,64")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.scenarios:
        return scenarios(args)
    if args.pipeline:
        return pipeline_scenario()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "lamp.llm.testserver", "--port", str(port), "--faults",
                               '{"latency": 0.05}'], stdout=subprocess.PIPE, text=True)
    server.stdout.readline()
    base = f"http://127.0.0.1:{port}/v1"
    n, conc = args.requests, args.concurrency
    rows = []
    try:
        prompts = [[{"role": "user", "content": f"lamp {i}"}] for i in range(n)]
        client = ChatClient(base, "test", concurrency=conc, progress=False)
        wall, cpu, res = measure(lambda: client.chat(prompts))
        assert all(r.text for r in res)
        lamp_row = (n / wall, cpu / n * 1e4)
        rows.append(["lamp ChatClient (libcurl multi, C)", f"{n / wall:,.1f}", f"{cpu / n * 1e4:.1f}"])

        import openai

        async def sdk_run():
            sdk = openai.AsyncOpenAI(base_url=base, api_key="unused", max_retries=0)
            sem = asyncio.Semaphore(conc)

            async def one(i):
                async with sem:
                    r = await sdk.chat.completions.create(model="test", messages=[{"role": "user",
                                                                                  "content": f"sdk {i}"}])
                    return r.choices[0].message.content

            out = await asyncio.gather(*(one(i) for i in range(n)))
            await sdk.close()
            return out

        wall, cpu, res = measure(lambda: asyncio.run(sdk_run()))
        assert all(res)
        rows.append(["openai SDK (AsyncOpenAI, same concurrency)", f"{n / wall:,.1f}", f"{cpu / n * 1e4:.1f}"])
    finally:
        server.terminate()
        server.wait()
    ideal = conc / 0.05
    print(f"{n} chat requests, concurrency {conc}, 50 ms server latency (ideal {ideal:.0f} req/s); {machine()}\n")
    print(table(["client", "requests / s", "client CPU s per 10,000 requests"], rows))
    sdk_cpu = float(rows[1][2])
    print(f"\nlamp uses {lamp_row[1] / sdk_cpu:.2f}x the SDK's CPU per request")

    with tempfile.TemporaryDirectory() as tmp:
        cache = AnswerCache(os.path.join(tmp, "cache.sqlite"))
        t0 = time.perf_counter()
        batch = []
        for i in range(args.cache_rows):
            batch.append((request_key("m", [{"role": "user", "content": str(i)}], {}), "m", {}, "{}", "x", None))
            if len(batch) == 50_000:
                cache.put_many(batch)
                batch = []
        cache.put_many(batch)
        build = time.perf_counter() - t0
        keys = [request_key("m", [{"role": "user", "content": str(i)}], {}) for i in range(0, args.cache_rows, 97)]
        wall, _, found = measure(lambda: cache.get_many(keys))
        assert len(found) == len(keys)
    print(f"\ncache of {args.cache_rows:,} answers (built in {build:.0f} s): {len(keys) / wall:,.0f} lookups / s "
          f"(batched get_many of {len(keys):,} keys)")


if __name__ == "__main__":
    run(main)

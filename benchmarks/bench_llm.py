"""LLM transport: lamp's ChatClient (libcurl multi in C) vs the official openai SDK (AsyncOpenAI, same
concurrency) against the test server (a separate process) with 50 ms latency per request; and cache
lookups on a cache of 10^6 answers.

python benchmarks/bench_llm.py [--requests 800] [--cache-rows 1000000]
"""
import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--cache-rows", type=int, default=1_000_000)
    args = parser.parse_args()
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

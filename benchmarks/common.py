"""Timing helpers shared by the benchmark scripts: best-of-N wall time and CPU time, and a markdown table."""
import os
import time


def best_time(fn, repeat=3):
    """(best wall seconds, CPU seconds of that run, result) over `repeat` runs."""
    best = None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu, result)
    return best


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine():
    return f"{os.cpu_count()} cores; other jobs may have shared them"

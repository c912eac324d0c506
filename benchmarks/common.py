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


def best_paired(fn_a, fn_b, repeat=5):
    """(best wall seconds of fn_a, of fn_b, fn_a's result), the two run alternately so that a slow
    spell of the machine weighs on both alike (for ratios between them)."""
    best_a = best_b = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn_a()
        t1 = time.perf_counter()
        fn_b()
        t2 = time.perf_counter()
        best_a, best_b = min(best_a, t1 - t0), min(best_b, t2 - t1)
    return best_a, best_b, result


def best_blocks(fn_a, fn_b, blocks=3, repeat=5):
    """(best wall seconds of fn_a, of fn_b): `repeat` runs of one, then `repeat` of the other, `blocks`
    times over. Each side runs back to back within a block (its caches warm with its own data, as in a
    training loop; torch's OpenMP threads' spin-wait after a call does not land on lamp's run), while
    the blocks spread a slow spell of the machine over both."""
    best_a = best_b = float("inf")
    for _ in range(blocks):
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn_a()
            best_a = min(best_a, time.perf_counter() - t0)
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn_b()
            best_b = min(best_b, time.perf_counter() - t0)
    return best_a, best_b


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine():
    return f"{os.cpu_count()} cores; other jobs may have shared them"

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


# ------------------------------------------------------------------------------------------ recording
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
RECORDED_ENV = ("LAMP_SIMD_WIDTH", "LAMP_RANKER_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class _Tee:
    """A text stream that writes to the terminal and to the results file alike."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()

    def isatty(self):
        return False


def _git(*args):
    import subprocess

    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine_line():
    """Cores, memory, architecture, CPU model and its widest vector extension, and the load at the start."""
    import platform

    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sse2", "SSE2")) if flag in flags),
                "?")
    try:
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        mem = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {mem}, {platform.machine()}, {model}, {simd}; load average at start {load}"


def _pop_record(argv):
    """Remove `--record NAME` (or `--record=NAME`) from argv; return NAME or None."""
    for i, arg in enumerate(argv):
        if arg == "--record":
            if i + 1 >= len(argv):
                raise SystemExit("--record needs a name")
            name = argv[i + 1]
            del argv[i:i + 2]
            return name
        if arg.startswith("--record="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None


def run(main):
    """Run a benchmark's main(); with `--record NAME` on the command line, also write everything it prints to
    benchmarks/results/NAME.txt, after four header lines: the command (with the environment variables that
    change what runs), the UTC date, the commit (`git rev-parse --short HEAD`, marked when the work tree has
    changes outside benchmarks/results) and the machine.  The file appears only when main() returns."""
    import shlex
    import sys
    from datetime import datetime, timezone

    name = _pop_record(sys.argv)
    if name is None:
        return main()
    if not name or os.sep in name or name.startswith("."):
        raise SystemExit(f"--record takes a plain file name, got {name!r}")
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name if name.endswith(".txt") else name + ".txt")
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT).replace(os.sep, "/")
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in RECORDED_ENV if k in os.environ]
    command = " ".join(env + ["python", script] + [shlex.quote(a) for a in sys.argv[1:]] + ["--record", name])
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
    commit = _git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")
    partial = path + ".partial"
    t0 = time.perf_counter()
    with open(partial, "w", encoding="utf-8") as out:
        out.write(f"command: {command}\n"
                  f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
                  f"commit: {commit}\n"
                  f"machine: {machine_line()}\n\n")
        stdout = sys.stdout
        sys.stdout = _Tee(stdout, out)
        try:
            result = main()
        finally:
            sys.stdout = stdout
        out.write(f"\n(recorded in {time.perf_counter() - t0:.0f} s)\n")
    os.replace(partial, path)
    print(f"recorded: {os.path.relpath(path)}", file=sys.stderr)
    return result

"""The ceiling under the ranker's speed: single-precision matrix products of the ranker's shapes, one thread.

python benchmarks/bench_gemm.py [--width 64] [--tokens 4096]

The energy ranker (width d = 64) spends most of its arithmetic in products of a chunk of ~4,096 evidence
tokens with d x d, d x 3d and d x 2d weights, and in the transposed products of its weight gradients.
This measures GFLOP/s on exactly those shapes for
  - the OpenBLAS that lamp._core is linked against (cblas_sgemm through ctypes, as lamp calls it),
  - PyTorch's float32 matmul (oneDNN / MKL on x86),
  - PyTorch's bfloat16 matmul (for reference only: AMX / AVX512-BF16 where the CPU has them; a
    different precision, which lamp does not use),
so that the throughput targets of docs/benchmarks.md can be set against what the machine can do at all.
"""
import argparse
import ctypes
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run, table  # noqa: E402

from lamp import _core  # noqa: E402,F401  (loads the OpenBLAS lamp uses)

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def lamp_openblas():
    """The libopenblas mapped into this process by lamp._core."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "openblas" in line and line.split()[-1].startswith("/")}
    for p in sorted(paths):
        if "scipy" not in p and "numpy" not in p:
            lib = ctypes.CDLL(p)
            try:
                lib.openblas_set_num_threads(1)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                core = lib.openblas_get_corename().decode()
            except AttributeError:
                core = "?"
            return lib, p, core
    raise SystemExit("lamp._core is not linked against a shared OpenBLAS")


def best_rate(fn, flops, repeat=7, inner=20):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return flops / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=4096)
    args = ap.parse_args()
    d, t = args.width, args.tokens
    import torch

    torch.set_num_threads(1)
    lib, path, core = lamp_openblas()
    sgemm = lib.cblas_sgemm
    rng = np.random.default_rng(0)
    # (name, m, n, k, transpose A, transpose B): C (m x n) = op(A) op(B)
    shapes = [("tokens x [Aq; Ak; Av]^T", t, 3 * d, d, False, True),
              ("tokens x W^T (d x d)", t, d, d, False, True),
              ("tokens x [Wk; Wv]^T", t, 2 * d, d, False, True),
              ("gradient dY^T X (d x d over tokens)", d, d, t, True, False),
              ("gradient dQKV^T X (3d x d over tokens)", 3 * d, d, t, True, False)]
    rows = []
    for name, m, n, k, ta, tb in shapes:
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        c = np.zeros((m, n), np.float32)
        argv = (ROW_MAJOR, TRANS if ta else NO_TRANS, TRANS if tb else NO_TRANS, m, n, k, ctypes.c_float(1.0),
                a.ctypes.data_as(ctypes.c_void_p), a.shape[1], b.ctypes.data_as(ctypes.c_void_p), b.shape[1],
                ctypes.c_float(0.0), c.ctypes.data_as(ctypes.c_void_p), n)
        flops = 2.0 * m * n * k
        ob = best_rate(lambda: sgemm(*argv), flops)
        ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
        opa = (lambda x: x.T) if ta else (lambda x: x)
        opb = (lambda x: x.T) if tb else (lambda x: x)
        tf = best_rate(lambda: torch.matmul(opa(ta_), opb(tb_)), flops)
        a16, b16 = ta_.bfloat16(), tb_.bfloat16()
        tbf = best_rate(lambda: torch.matmul(opa(a16), opb(b16)), flops)
        rows.append([name, f"{m} x {n} x {k}", f"{ob:.0f}", f"{tf:.0f}", f"{tbf:.0f}"])
    print(f"one thread; OpenBLAS {path} (core {core}); torch {torch.__version__} "
          f"(CPU capability {torch.backends.cpu.get_cpu_capability()})\n")
    print(table(["product", "m x n x k", "lamp's OpenBLAS sgemm GFLOP/s", "torch float32 GFLOP/s",
                 "torch bfloat16 GFLOP/s (other precision)"], rows))


if __name__ == "__main__":
    run(main)

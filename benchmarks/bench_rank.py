"""Energy ranker throughput: lamp's C ranker vs an equivalent PyTorch model (same sizes, same batch).

python benchmarks/bench_rank.py

Both compute the same architecture (csrc/ranker.h): embeddings, sinusoidal time encoding, one
attention readout from the candidate over its evidence (layers=0, heads=1), tanh MLP, prior term; training step =
forward + backward + Adam on a batch of 32 queries.  lamp runs in float64 (its gradients are checked
against finite differences); PyTorch in float32, its usual precision.  Both use the same number of
threads (torch.get_num_threads()).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, table  # noqa: E402

from lamp import _core  # noqa: E402
from lamp.rank import EnergyRanker, RankingSamples  # noqa: E402

NE, NR, D, Q = 7128, 230, 64, 32


def samples(m, length, seed=0):
    rng = np.random.default_rng(seed)
    ev = np.stack([rng.integers(0, NE, (Q, m, length)), rng.integers(0, NR, (Q, m, length)),
                   rng.integers(0, NE, (Q, m, length))], -1)
    ev[:, :, length // 2:][rng.random((Q, m, length - length // 2)) < 0.3] = -1
    cand = np.stack([rng.integers(0, NE, (Q, m)), rng.integers(0, NR, (Q, m)), rng.integers(0, NE, (Q, m))], -1)
    return RankingSamples(ev, rng.uniform(0, 100, (Q, m, length)), cand, np.full((Q, m), 120.0),
                          rng.integers(0, m, Q), -rng.exponential(1.0, (Q, m)))


def torch_model():
    import torch

    class Ranker(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ent, self.rel, self.obj = (torch.nn.Embedding(n, D) for n in (NE, NR, NE))
            self.wq, self.wk, self.wv = (torch.nn.Linear(D, D, bias=False) for _ in range(3))
            self.w1, self.w2 = torch.nn.Linear(2 * D, D), torch.nn.Linear(D, 1)
            self.gamma = torch.nn.Parameter(torch.tensor(-1.0))
            self.register_buffer("freq", 1000.0 ** (-(2 * torch.arange(D // 2)) / D))

        def forward(self, ev, evt, cand, ct, prior):
            mask = ev[..., 0] >= 0
            e = ev.clamp(min=0)
            gap = (ct[..., None] - evt)[..., None] * self.freq
            enc = torch.stack([gap.sin(), gap.cos()], -1).flatten(-2)
            x = self.ent(e[..., 0]) + self.rel(e[..., 1]) + self.obj(e[..., 2]) + enc
            c = self.ent(cand[..., 0]) + self.rel(cand[..., 1]) + self.obj(cand[..., 2])
            scores = (self.wk(x) @ self.wq(c)[..., None]).squeeze(-1) / D ** 0.5
            scores = scores.masked_fill(~mask, float("-inf"))
            alpha = torch.nan_to_num(scores.softmax(-1))
            h = (alpha[..., None] * self.wv(x)).sum(-2)
            u = torch.tanh(self.w1(torch.cat([h, c], -1)))
            return self.w2(u).squeeze(-1) + self.gamma * prior

    return Ranker()


def timeit(fn, repeat=5):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    import torch

    rows = []
    for length in (10, 20):
        for m in (5, 20, 100):
            s = samples(m, length)
            model = EnergyRanker(NE, NR, width=D, heads=1, layers=0, dropout=0.0, progress=False)
            m1, m2 = np.zeros_like(model.params), np.zeros_like(model.params)
            step = [0]

            def lamp_train():
                step[0] += 1
                _, _, g = model._forward(s, grad=True)
                _core.ranker_adam(model.params, g, m1, m2, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1.0, step[0])

            lamp_t = timeit(lamp_train)
            lamp_s = timeit(lambda: model.energy(s))
            tm = torch_model()
            opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
            tt = [torch.as_tensor(a) for a in (s.evidence, s.evidence_times, s.candidates, s.candidate_times, s.prior)]
            tt = [tt[0], tt[1].float(), tt[2], tt[3].float(), tt[4].float()]
            labels = torch.as_tensor(s.labels)

            def torch_train():
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(-tm(*tt), labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
                opt.step()

            def torch_score():
                with torch.no_grad():
                    tm(*tt)

            torch_t, torch_s = timeit(torch_train), timeit(torch_score)
            n = Q * m
            rows.append([length, m, f"{n / lamp_t:,.0f}", f"{n / torch_t:,.0f}", f"{torch_t / lamp_t:.2f}x",
                         f"{n / lamp_s:,.0f}", f"{n / torch_s:,.0f}", f"{torch_s / lamp_s:.2f}x"])
    print(f"width {D}, batch {Q} queries, vocabulary {NE} entities / {NR} relations; torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; {machine()}\n")
    print(table(["L", "M", "lamp train cand/s", "torch train cand/s", "lamp/torch", "lamp score cand/s",
                 "torch score cand/s", "lamp/torch"], rows))


if __name__ == "__main__":
    main()

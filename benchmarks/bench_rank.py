"""Energy ranker throughput: lamp's C ranker vs an equivalent PyTorch model (same sizes, same batch).

python benchmarks/bench_rank.py [--layers 2] [--heads 2] [--precision float32] [--threads 1|2]
                                [--lengths 10 20] [--candidates 5 20 100] [--per-candidate]
                                [--no-agreement] [--aux 3]

Both compute the same architecture (csrc/ranker/ranker.h): embeddings, sinusoidal time encoding, `layers` blocks of
causal multi-head self-attention among the evidence (residual, tanh feed-forward with residual), the
multi-head attention readout from the candidate over its evidence, tanh MLP, prior term; default
layers=2, heads=2 (the EnergyRanker defaults), and the agreement-aware energy (EnergyRanker's default
agreement=True): per evidence event 9 features comparing it with the candidate plus --aux caller-supplied ones
(default 3, as the pipeline passes), computed inside the model from ids and times on every call, feeding the
readout's keys (WKF) and logits (UB), a learned null slot (K0, V0) and the pooled summary [mean, max, most
recent] into the MLP (W1P) and the energy (WP); --no-agreement: the model without them.  Training step = forward + backward + Adam (clipped) on a
batch of 32 queries with the softmax loss.  lamp runs in float32 by default (--precision float64: the
gradient-checked path); PyTorch in float32.  Both use the same number of threads (torch.get_num_threads()).
lamp and PyTorch are timed in alternating blocks of 5 runs (3 blocks each, best run of each side).
--per-candidate adds a second anchor for scoring: the same PyTorch model called once per candidate from a
Python loop, as the authors' ranker scores its proposals (framework overhead per call dominates there).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_blocks, machine, run, table  # noqa: E402

from lamp import _core  # noqa: E402
from lamp.rank import EnergyRanker, RankingSamples  # noqa: E402

NE, NR, D, Q = 7128, 230, 64, 32


def samples(m, length, seed=0, aux=0):
    rng = np.random.default_rng(seed)
    ev = np.stack([rng.integers(0, NE, (Q, m, length)), rng.integers(0, NR, (Q, m, length)),
                   rng.integers(0, NE, (Q, m, length))], -1)
    ev[:, :, length // 2:][rng.random((Q, m, length - length // 2)) < 0.3] = -1
    cand = np.stack([rng.integers(0, NE, (Q, m)), rng.integers(0, NR, (Q, m)), rng.integers(0, NE, (Q, m))], -1)
    # some evidence agrees with its candidate (the features are computed for every event either way)
    hit = rng.random((Q, m)) < 0.3
    ev[hit, 0] = cand[hit]
    return RankingSamples(ev, rng.uniform(0, 100, (Q, m, length)), cand, np.full((Q, m), 120.0),
                          rng.integers(0, m, Q), -rng.exponential(1.0, (Q, m)),
                          rng.uniform(0, 1, (Q, m, length, aux)) if aux else None)


def agreement_features(ev, evt, cand, ct, valid, aux, time_scale=1.0):
    """The ranker's per-event features f (Q, M, L, F) and pooled summary p (Q, M, 3F) (csrc/ranker/ranker.h), in torch."""
    import torch

    es, er, eo = ev[..., 0], ev[..., 1], ev[..., 2]
    s, r, o = (cand[..., k, None] for k in range(3))
    ss, oo = es == s, eo == o
    f = torch.stack([ss, oo, er == r, ss & oo, (es == o) & (eo == s), ss & (er == r) & oo, (es == o) | oo,
                     ss | (eo == s)], -1).float()
    gap = torch.log1p((ct[..., None] - evt).clamp(min=0) / time_scale)[..., None]
    f = torch.cat([f, gap] + ([aux] if aux is not None else []), -1) * valid[..., None]
    n = ev.shape[2]
    mean = f.sum(2) / n
    mx = torch.where(valid[..., None], f, float("-inf")).amax(2)
    mx = torch.where(valid.any(2, keepdim=True), mx, 0.0)
    # most recent valid event, ties: the later slot (argmax of the flipped times finds the last maximum)
    t = torch.where(valid, evt, float("-inf"))
    last = n - 1 - t.flip(-1).argmax(-1)
    recent = f.gather(2, last[..., None, None].expand(-1, -1, 1, f.shape[-1])).squeeze(2)
    return f, torch.cat([mean, mx, recent], -1)


def torch_model(layers, heads, agreement=False, nf=9):
    import torch

    e = D // heads

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(D, 3 * D, bias=False)  # [Aq; Ak; Av]
            self.ao = torch.nn.Linear(D, D, bias=False)
            self.f1, self.f2 = torch.nn.Linear(D, D), torch.nn.Linear(D, D)

        def forward(self, x, mask):  # x (B, L, D), mask (B, 1, L, L): True = may attend
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, heads, e).permute(2, 0, 3, 1, 4)
            o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            y = x + self.ao(o.transpose(1, 2).reshape(b, n, D))
            return y + self.f2(torch.tanh(self.f1(y)))

    class Ranker(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ent, self.rel, self.obj = (torch.nn.Embedding(n, D) for n in (NE, NR, NE))
            self.wq, self.wk, self.wv = (torch.nn.Linear(D, D, bias=False) for _ in range(3))
            self.blocks = torch.nn.ModuleList(Block() for _ in range(layers))
            self.w1, self.w2 = torch.nn.Linear(2 * D, D), torch.nn.Linear(D, 1)
            self.gamma = torch.nn.Parameter(torch.tensor(-1.0))
            self.register_buffer("freq", 1000.0 ** (-(2 * torch.arange(D // 2)) / D))
            if agreement:
                self.wkf, self.ub = torch.nn.Linear(nf, D, bias=False), torch.nn.Linear(nf, heads, bias=False)
                self.k0, self.v0 = torch.nn.Parameter(0.1 * torch.randn(D)), torch.nn.Parameter(0.1 * torch.randn(D))
                self.w1p, self.wp = torch.nn.Linear(3 * nf, D, bias=False), torch.nn.Linear(3 * nf, 1, bias=False)

        def forward(self, ev, evt, cand, ct, prior, aux=None):
            q, m, n = ev.shape[:3]
            valid = ev[..., 0] >= 0
            e_ = ev.clamp(min=0)
            gap = (ct[..., None] - evt)[..., None] * self.freq
            enc = torch.stack([gap.sin(), gap.cos()], -1).flatten(-2)
            x = (self.ent(e_[..., 0]) + self.rel(e_[..., 1]) + self.obj(e_[..., 2]) + enc).view(q * m, n, D)
            c = self.ent(cand[..., 0]) + self.rel(cand[..., 1]) + self.obj(cand[..., 2])
            if self.blocks:
                # token j attends to the valid tokens at or before it (and to itself, so padding rows stay finite)
                causal = torch.ones(n, n, dtype=torch.bool).tril()
                mask = (causal & valid.view(q * m, 1, n)) | torch.eye(n, dtype=torch.bool)
                mask = mask[:, None]
                for block in self.blocks:
                    x = block(x, mask)
            qr = self.wq(c).view(q, m, heads, e)
            if agreement:  # keys and logits with the features, a null slot, the pooled summary
                f, p = agreement_features(ev, evt, cand, ct, valid, aux)
                k = (self.wk(x).view(q, m, n, D) + self.wkf(f)).view(q, m, n, heads, e)
                v = self.wv(x).view(q, m, n, heads, e)
                scores = torch.einsum("qmhe,qmnhe->qmhn", qr, k) / e ** 0.5 + self.ub(f).permute(0, 1, 3, 2)
                scores = scores.masked_fill(~valid[:, :, None, :], float("-inf"))
                null = (qr * self.k0.view(heads, e)).sum(-1, keepdim=True) / e ** 0.5
                alpha = torch.cat([null, scores], -1).softmax(-1)
                h = (alpha[..., :1] * self.v0.view(heads, e) +
                     torch.einsum("qmhn,qmnhe->qmhe", alpha[..., 1:], v)).reshape(q, m, D)
                u = torch.tanh(self.w1(torch.cat([h, c], -1)) + self.w1p(p))
                return self.w2(u).squeeze(-1) + self.wp(p).squeeze(-1) + self.gamma * prior
            k = self.wk(x).view(q, m, n, heads, e)
            v = self.wv(x).view(q, m, n, heads, e)
            scores = torch.einsum("qmhe,qmnhe->qmhn", qr, k) / e ** 0.5
            scores = scores.masked_fill(~valid[:, :, None, :], float("-inf"))
            alpha = torch.nan_to_num(scores.softmax(-1))
            h = torch.einsum("qmhn,qmnhe->qmhe", alpha, v).reshape(q, m, D)
            u = torch.tanh(self.w1(torch.cat([h, c], -1)))
            return self.w2(u).squeeze(-1) + self.gamma * prior

    return Ranker()


def main():
    import argparse

    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--precision", choices=("float32", "float64"), default="float32")
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 20], help="evidence slots L")
    ap.add_argument("--candidates", type=int, nargs="+", default=[5, 20, 100], help="candidates per query M")
    ap.add_argument("--threads", type=int, choices=(1, 2), default=None,
                    help="threads of both (default: torch's default, lamp's 2)")
    ap.add_argument("--no-agreement", action="store_true", help="the model without the agreement features")
    ap.add_argument("--aux", type=int, default=3, help="caller-supplied features per evidence event (agreement)")
    ap.add_argument("--per-candidate", action="store_true",
                    help="also time PyTorch scoring one candidate per call (the authors' Python loop)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["LAMP_RANKER_THREADS"] = str(args.threads)
    rows, loop_rows = [], []
    agreement = not args.no_agreement
    aux = args.aux if agreement else 0
    for length in args.lengths:
        for m in args.candidates:
            s = samples(m, length, aux=aux)
            model = EnergyRanker(NE, NR, width=D, heads=args.heads, layers=args.layers, dropout=0.0, progress=False,
                                 precision=args.precision, agreement=agreement, aux=aux, start_from_prior=False)
            m1, m2, g = np.zeros_like(model.params), np.zeros_like(model.params), np.empty_like(model.params)
            step = [0]

            def lamp_train():
                step[0] += 1
                model._forward(s, grad=True, grads_out=g)  # as EnergyRanker.fit: one gradient buffer
                _core.ranker_adam(model.params, g, m1, m2, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1.0, step[0])

            tm = torch_model(args.layers, args.heads, agreement, _core.RANKER_ID_FEATURES + aux)
            opt = torch.optim.Adam(tm.parameters(), lr=1e-3)
            tt = [torch.as_tensor(a) for a in (s.evidence, s.evidence_times, s.candidates, s.candidate_times, s.prior)]
            tt = [tt[0], tt[1].float(), tt[2], tt[3].float(), tt[4].float()]
            if aux:
                tt.append(torch.as_tensor(s.evidence_aux).float())
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

            lamp_train(), torch_train()  # warm-up: buffers, caches
            # blocks of 5 runs of each, 3 times over, best of each (common.best_blocks: not call by call,
            # which would make each run start with the other's data in the caches)
            lamp_t, torch_t = best_blocks(lamp_train, torch_train)
            lamp_s, torch_s = best_blocks(lambda: model.energy(s), torch_score)
            n = Q * m
            if args.per_candidate:
                one = [[t[qi:qi + 1, mi:mi + 1] for t in tt] for qi in range(Q) for mi in range(m)]

                def torch_loop():
                    with torch.no_grad():
                        for args_ in one:
                            tm(*args_)

                lamp_1, loop_s = best_blocks(lambda: model.energy(s), torch_loop, blocks=1, repeat=2)
                loop_rows.append([length, m, f"{n / lamp_1:,.0f}", f"{n / loop_s:,.0f}", f"{loop_s / lamp_1:.0f}x"])
            rows.append([length, m, f"{n / lamp_t:,.0f}", f"{n / torch_t:,.0f}", f"{torch_t / lamp_t:.2f}x",
                         f"{n / lamp_s:,.0f}", f"{n / torch_s:,.0f}", f"{torch_s / lamp_s:.2f}x"])
    print(f"layers {args.layers}, heads {args.heads}, agreement {'on, ' + str(aux) + ' aux features' if agreement else 'off'}, "
          f"lamp in {args.precision}; width {D}, batch {Q} queries, vocabulary {NE} entities / {NR} relations; torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, lamp {os.environ.get('LAMP_RANKER_THREADS', '2')}; {machine()}\n")
    print(table(["L", "M", "lamp train cand/s", "torch train cand/s", "lamp/torch", "lamp score cand/s",
                 "torch score cand/s", "lamp/torch"], rows))
    if loop_rows:
        print("\nScoring against PyTorch called once per candidate (a Python loop over candidates):\n")
        print(table(["L", "M", "lamp score cand/s", "torch per-candidate cand/s", "lamp/torch"], loop_rows))


if __name__ == "__main__":
    run(main)

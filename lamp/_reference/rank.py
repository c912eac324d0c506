"""Plain NumPy forward pass of the energy ranker (csrc/ranker/ranker.c), the tests' oracle."""
import numpy as np

from lamp import _core

# the parameter layout is the C core's (csrc/ranker/ranker.h, exported by the binding)
_READOUT_BLOCKS, _LAYER_BLOCKS = _core.RANKER_READOUT_BLOCKS, _core.RANKER_LAYER_BLOCKS
_AGREE_BLOCKS, _ID_FEATURES = _core.RANKER_AGREE_BLOCKS, _core.RANKER_ID_FEATURES


def _named(blocks, prefix, names):
    """The blocks named ``names`` of a list of blocks, in that order: name N is at ``_core.<prefix>N``."""
    return [blocks[getattr(_core, prefix + name)] for name in names]


def agreement_features(evidence, evidence_times, candidate, candidate_time, time_scale, aux=None):
    """Features f_j (n, 9 + A) of a candidate's valid evidence rows (n, 3) (csrc/ranker/ranker.h)."""
    s, r, o = candidate
    es, er, eo = evidence[:, 0], evidence[:, 1], evidence[:, 2]
    gap = np.maximum(candidate_time - evidence_times, 0.0) / time_scale
    f = np.stack([es == s, eo == o, er == r, (es == s) & (eo == o), (es == o) & (eo == s),
                  (es == s) & (er == r) & (eo == o), (es == o) | (eo == o), (es == s) | (eo == s)],
                 axis=1).astype(np.float64)
    f = np.concatenate([f, np.log1p(gap)[:, None]], axis=1)
    if aux is not None:
        f = np.concatenate([f, aux], axis=1)
    return f


def pooled_features(f, times, slots):
    """p = [sum f / L, max f, f of the most recent event (ties: the later slot)], zeros without evidence."""
    n, nf = f.shape
    if n == 0:
        return np.zeros(3 * nf)
    recent = max(range(n), key=lambda j: (times[j], j))
    return np.concatenate([f.sum(axis=0) / slots, f.max(axis=0), f[recent]])


def _self_attention_block(x, blocks, heads):
    """One causal multi-head self-attention block with a residual tanh feed-forward layer, x (n, d)."""
    n, d = x.shape
    e = d // heads
    aq, ak, av, ao, f1, fb1, f2, fb2 = _named(blocks, "RANKER_LAYER_BLOCK_", ("AQ", "AK", "AV", "AO", "F1", "FB1", "F2",
                                                                            "FB2"))
    aq, ak, av, ao, f1, f2 = (w.reshape(d, d) for w in (aq, ak, av, ao, f1, f2))
    q, k, v = x @ aq.T, x @ ak.T, x @ av.T
    causal = np.tril(np.ones((n, n), dtype=bool))  # token j sees the tokens at or before it
    o = np.zeros((n, d))
    for h in range(heads):
        cols = slice(h * e, (h + 1) * e)
        scores = np.where(causal, q[:, cols] @ k[:, cols].T / np.sqrt(e), -np.inf)
        a = np.exp(scores - scores.max(axis=1, keepdims=True))
        a /= a.sum(axis=1, keepdims=True)
        o[:, cols] = a @ v[:, cols]
    y = x + o @ ao.T
    return y + np.tanh(y @ f1.T + fb1) @ f2.T + fb2


def energies(params, offsets, width, time_scale, evidence, evidence_times, candidates, candidate_times, prior=None,
             heads=1, layers=0, agree=False, evidence_aux=None):
    d = width
    e = d // heads
    blocks = [params[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    assert len(blocks) == _READOUT_BLOCKS + _LAYER_BLOCKS * layers + (_AGREE_BLOCKS if agree else 0)
    if agree:
        nf = _ID_FEATURES + (0 if evidence_aux is None else evidence_aux.shape[3])
        a0 = _READOUT_BLOCKS + _LAYER_BLOCKS * layers
        wkf, ub, k0, v0, w1p, wp = _named(blocks[a0:], "RANKER_AGREE_BLOCK_", ("WKF", "UB", "K0", "V0", "W1P", "WP"))
        wkf, ub, w1p = wkf.reshape(d, nf), ub.reshape(heads, nf), w1p.reshape(d, 3 * nf)
    ent, rel, obj, wq, wk, wv, w1, b1, w2, b2, gamma = _named(
        blocks, "RANKER_BLOCK_", ("ENT", "REL", "OBJ", "WQ", "WK", "WV", "W1", "B1", "W2", "B2", "GAMMA"))
    ent, rel, obj = ent.reshape(-1, d), rel.reshape(-1, d), obj.reshape(-1, d)
    wq, wk, wv = (b.reshape(d, d) for b in (wq, wk, wv))
    w1, b2, gamma = w1.reshape(d, 2 * d), b2[0], gamma[0]
    layer_blocks = [blocks[_READOUT_BLOCKS + _LAYER_BLOCKS * i:_READOUT_BLOCKS + _LAYER_BLOCKS * (i + 1)]
                    for i in range(layers)]
    freqs = 1000.0 ** (-(2 * np.arange(d // 2)) / d)
    q_count, m, length, _ = evidence.shape
    out = np.zeros((q_count, m))
    for qi in range(q_count):
        for j in range(m):
            s, r, o = candidates[qi, j]
            c = ent[s] + rel[r] + obj[o]
            q = wq @ c
            h = np.zeros(d)
            valid = evidence[qi, j, :, 0] >= 0
            ev, ev_times = evidence[qi, j][valid], evidence_times[qi, j][valid]
            x = np.zeros((0, d))
            if valid.any():
                gaps = (candidate_times[qi, j] - ev_times) / time_scale
                enc = np.zeros((len(ev), d))
                enc[:, 0::2] = np.sin(gaps[:, None] * freqs)
                enc[:, 1::2] = np.cos(gaps[:, None] * freqs)
                x = ent[ev[:, 0]] + rel[ev[:, 1]] + obj[ev[:, 2]] + enc
                for lb in layer_blocks:
                    x = _self_attention_block(x, lb, heads)
            k, v = x @ wk.T, x @ wv.T
            if agree:  # keys and logits with the features, a null slot (K0, V0) in every head's softmax
                aux = None if evidence_aux is None else evidence_aux[qi, j][valid]
                f = agreement_features(ev, ev_times, (s, r, o), candidate_times[qi, j], time_scale, aux)
                p = pooled_features(f, ev_times, length)
                k = k + f @ wkf.T
                for hd in range(heads):
                    cols = slice(hd * e, (hd + 1) * e)
                    scores = np.concatenate([[q[cols] @ k0[cols] / np.sqrt(e)],
                                             k[:, cols] @ q[cols] / np.sqrt(e) + f @ ub[hd]])
                    alpha = np.exp(scores - scores.max())
                    alpha /= alpha.sum()
                    h[cols] = alpha[0] * v0[cols] + alpha[1:] @ v[:, cols]
                u = np.tanh(w1 @ np.concatenate([h, c]) + w1p @ p + b1)
                out[qi, j] = w2 @ u + b2 + wp @ p
            else:
                for hd in range(heads) if valid.any() else ():  # h = 0 without evidence
                    cols = slice(hd * e, (hd + 1) * e)
                    scores = k[:, cols] @ q[cols] / np.sqrt(e)
                    alpha = np.exp(scores - scores.max())
                    alpha /= alpha.sum()
                    h[cols] = alpha @ v[:, cols]
                u = np.tanh(w1 @ np.concatenate([h, c]) + b1)
                out[qi, j] = w2 @ u + b2
            out[qi, j] += 0.0 if prior is None else gamma * prior[qi, j]
    return out


def softmax_loss(energy, labels):
    e = energy - energy.min(axis=1, keepdims=True)
    return float(np.mean(e[np.arange(len(labels)), labels] + np.log(np.exp(-e).sum(axis=1))))


def binary_loss(energy, labels):
    """Mean over candidates of the binary cross-entropy with logit -energy (1 for the true candidate)."""
    y = np.zeros_like(energy)
    y[np.arange(len(labels)), labels] = 1.0
    # -log sigmoid(-E) = softplus(E), -log(1 - sigmoid(-E)) = softplus(-E)
    return float(np.mean(y * np.logaddexp(0.0, energy) + (1.0 - y) * np.logaddexp(0.0, -energy)))

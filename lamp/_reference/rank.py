"""Plain NumPy forward pass of the energy ranker (csrc/ranker.c), the tests' oracle."""
import numpy as np

_READOUT_BLOCKS, _LAYER_BLOCKS = 11, 8


def _self_attention_block(x, blocks, heads):
    """One causal multi-head self-attention block with a residual tanh feed-forward layer, x (n, d)."""
    n, d = x.shape
    e = d // heads
    aq, ak, av, ao, f1, fb1, f2, fb2 = blocks
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
             heads=1, layers=0):
    d = width
    e = d // heads
    blocks = [params[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    assert len(blocks) == _READOUT_BLOCKS + _LAYER_BLOCKS * layers
    ent, rel, obj = blocks[0].reshape(-1, d), blocks[1].reshape(-1, d), blocks[2].reshape(-1, d)
    wq, wk, wv = (b.reshape(d, d) for b in blocks[3:6])
    w1, b1, w2, b2, gamma = blocks[6].reshape(d, 2 * d), blocks[7], blocks[8], blocks[9][0], blocks[10][0]
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
            if valid.any():
                ev = evidence[qi, j][valid]
                gaps = (candidate_times[qi, j] - evidence_times[qi, j][valid]) / time_scale
                enc = np.zeros((len(ev), d))
                enc[:, 0::2] = np.sin(gaps[:, None] * freqs)
                enc[:, 1::2] = np.cos(gaps[:, None] * freqs)
                x = ent[ev[:, 0]] + rel[ev[:, 1]] + obj[ev[:, 2]] + enc
                for lb in layer_blocks:
                    x = _self_attention_block(x, lb, heads)
                k, v = x @ wk.T, x @ wv.T
                for hd in range(heads):
                    cols = slice(hd * e, (hd + 1) * e)
                    scores = k[:, cols] @ q[cols] / np.sqrt(e)
                    alpha = np.exp(scores - scores.max())
                    alpha /= alpha.sum()
                    h[cols] = alpha @ v[:, cols]
            u = np.tanh(w1 @ np.concatenate([h, c]) + b1)
            out[qi, j] = w2 @ u + b2 + (0.0 if prior is None else gamma * prior[qi, j])
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

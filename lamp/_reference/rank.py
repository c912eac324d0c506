"""Plain NumPy forward pass of the energy ranker (csrc/ranker.c), the tests' oracle."""
import numpy as np


def energies(params, offsets, width, time_scale, evidence, evidence_times, candidates, candidate_times, prior=None):
    d = width
    blocks = [params[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    ent, rel, obj = blocks[0].reshape(-1, d), blocks[1].reshape(-1, d), blocks[2].reshape(-1, d)
    wq, wk, wv = (b.reshape(d, d) for b in blocks[3:6])
    w1, b1, w2, b2, gamma = blocks[6].reshape(d, 2 * d), blocks[7], blocks[8], blocks[9][0], blocks[10][0]
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
                scores = (x @ wk.T) @ q / np.sqrt(d)
                alpha = np.exp(scores - scores.max())
                alpha /= alpha.sum()
                h = alpha @ (x @ wv.T)
            u = np.tanh(w1 @ np.concatenate([h, c]) + b1)
            out[qi, j] = w2 @ u + b2 + (0.0 if prior is None else gamma * prior[qi, j])
    return out


def softmax_loss(energy, labels):
    e = energy - energy.min(axis=1, keepdims=True)
    return float(np.mean(e[np.arange(len(labels)), labels] + np.log(np.exp(-e).sum(axis=1))))

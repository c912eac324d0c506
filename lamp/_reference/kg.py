"""Plain Python version of csrc/hawkes/kg_hawkes.c (the tests' oracle): features by scanning the history."""
import numpy as np


def _decayed(times, t, rates):
    out = np.zeros(len(rates))
    for ti in times:
        out += np.exp(-np.asarray(rates) * (t - ti))
    return out


def augmented_history(stream, t, num_relations):
    """Directed events (h, rr, tail, time) strictly before t, inverse events included."""
    s, r, o, times = stream
    events = []
    for i in range(len(s)):
        if times[i] < t:
            events.append((s[i], r[i], o[i], times[i]))
            events.append((o[i], r[i] + num_relations, s[i], times[i]))
    return events


def _phi(events, count, groups, t, rates):
    """[1, count, then per decay rate the decayed sums of the five groups] (the kernel's feature layout);
    ``count`` and each group are predicates on an event (h, rr, tail, time)."""
    S = len(rates)
    phi = np.zeros(2 + 5 * S)
    phi[0] = 1.0
    phi[1] = sum(1 for e in events if count(e))
    for j, keep in enumerate(groups):
        phi[2 + j::5][:S] = _decayed([e[3] for e in events if keep(e)], t, rates)
    return phi


def object_phi(events, s, rr, o, t, rates, num_relations):
    inv = rr + num_relations if rr < num_relations else rr - num_relations
    return _phi(events, lambda e: e[2] == o, [
        lambda e: e[0] == s and e[1] == rr and e[2] == o,
        lambda e: e[0] == s and e[1] == inv and e[2] == o,
        lambda e: e[0] == s and e[2] == o,
        lambda e: e[1] == rr and e[2] == o,
        lambda e: e[2] == o,
    ], t, rates)


def relation_phi(events, s, r, o, t, rates, num_relations):
    return _phi(events, lambda e: e[1] == r, [
        lambda e: e[0] == s and e[1] == r and e[2] == o,
        lambda e: e[0] == s and e[1] == r + num_relations and e[2] == o,
        lambda e: e[0] == s and e[1] == r,
        lambda e: e[1] == r and e[2] == o,
        lambda e: e[1] == r,
    ], t, rates)


def candidate_features(stream, query, num_entities, num_relations, rates, task):
    """phi of every candidate of one query (s, r, o, t): an array (num_candidates, F)."""
    s, r, o, t = query
    events = augmented_history(stream, t, num_relations)
    if task == "object":
        return np.array([object_phi(events, s, r, c, t, rates, num_relations) for c in range(num_entities)])
    return np.array([relation_phi(events, s, c, o, t, rates, num_relations) for c in range(num_relations)])


def nll(phi_true, phi_total, w):
    a, b = phi_true @ w, phi_total @ w
    return -float(np.mean(np.log(a) - np.log(b)))


def filtered_rank(scores, target, filtered):
    keep = np.ones(len(scores), bool)
    keep[list(filtered)] = False
    keep[target] = False
    greater = np.sum(scores[keep] > scores[target])
    equal = np.sum(scores[keep] == scores[target])
    return 1.0 + greater + 0.5 * equal


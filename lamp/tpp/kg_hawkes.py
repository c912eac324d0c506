"""A Hawkes proposer for temporal knowledge graphs (``lamp.tpp.KGHawkes``).

The intensity of a candidate event is ``w . phi``: a constant, a popularity
count, and for each of a few decay scales exponentially decayed counts of the
past events that excite it (the same triple recurring, the inverse triple,
the same entity pair under any relation, the relation-object pair for object
queries or the subject-relation pair for relation queries, and the candidate's
recent activity).  The weights are fitted by maximum likelihood of the
observed candidate among all candidates (softmax over intensities) on the
training split; the decay scales are chosen on the validation split.  All
scoring and all likelihood work happen in C (``lamp._core.kg_*``).

Queries are arrays (n, 4) of (subject, relation, object, time); the unknown
column is ignored.  Object queries may use inverse relations ``r + R`` to ask
for the subject of ``(?, r, o, t)``.  A query sees exactly the events of the
data set strictly before its time.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import minimize

from lamp import _core
from lamp.checkpoint import load_checkpoint, save_checkpoint
from lamp.config.names import TKG_TASKS
from lamp.data import EventStore

__all__ = ["KGHawkes", "RecurrencyBaseline", "TASKS", "feature_names", "time_aware_filter"]

TASKS = TKG_TASKS
_PER_SCALE = {"object": ("triple", "inverse", "pair", "relation_object", "activity"),
              "relation": ("triple", "inverse", "subject_relation", "relation_object", "activity")}
_FORMAT_VERSION = 1


def feature_names(task: str, half_lives: Sequence[float]) -> list[str]:
    """Names of the F features of ``task`` (the order of the weights; the pair task uses the object task's)."""
    _check_task(task)
    task = "object" if task == "pair" else task
    names = ["constant", "popularity"]
    for h in half_lives:
        names += [f"{n}@{h:g}" for n in _PER_SCALE[task]]
    return names


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _as_queries(queries, num_entities: int, num_relations: int, task: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(queries)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"queries must be an array (n, 4) of (subject, relation, object, time), got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError("queries is empty")
    times = arr[:, 3].astype(np.float64)
    if not np.all(np.isfinite(times)):
        raise ValueError("queries: a query time is not finite")
    ids = arr[:, :3]
    if ids.dtype.kind == "f" and not np.all(ids == np.round(ids)):
        raise TypeError("queries: subject/relation/object ids must be integers")
    ids = ids.astype(np.int64)
    if ids[:, 0].min() < 0 or ids[:, 0].max() >= num_entities:
        raise ValueError(f"queries: subject ids must be in [0, {num_entities})")
    if task == "pair":
        if ids[:, 1].min() < 0 or ids[:, 1].max() >= num_relations or ids[:, 2].min() < 0 or \
                ids[:, 2].max() >= num_entities:
            raise ValueError(f"queries: for the pair task relation ids must be in [0, {num_relations}) and object "
                             f"ids in [0, {num_entities}) (the columns are ignored when only proposing; give 0)")
    elif task == "object":
        if ids[:, 1].min() < 0 or ids[:, 1].max() >= 2 * num_relations:
            raise ValueError(f"queries: relation ids must be in [0, {2 * num_relations}) (>= {num_relations}: inverse)")
    else:
        if ids[:, 2].min() < 0 or ids[:, 2].max() >= num_entities:
            raise ValueError(f"queries: object ids must be in [0, {num_entities})")
    return ids, times


def time_aware_filter(queries: np.ndarray, task: str, num_entities: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the other true answers of the same question at the same time (CSR: offsets, ids;
    pair answers are ``relation * num_entities + object``)."""
    q = np.asarray(queries, dtype=np.int64)
    if task == "pair":
        key, answer = (q[:, 0], q[:, 3]), q[:, 1] * num_entities + q[:, 2]
    elif task == "object":
        key, answer = (q[:, 0], q[:, 1], q[:, 3]), q[:, 2]
    else:
        key, answer = (q[:, 0], q[:, 2], q[:, 3]), q[:, 1]
    groups: dict[tuple, list] = {}
    for i, k in enumerate(zip(*key)):
        groups.setdefault(k, []).append(int(answer[i]))
    offsets, ids = [0], []
    for i, k in enumerate(zip(*key)):
        others = sorted(set(groups[k]) - {int(answer[i])})
        ids.extend(others)
        offsets.append(len(ids))
    return np.array(offsets, dtype=np.int64), np.array(ids, dtype=np.int64)


class KGHawkes:
    """Hawkes proposer for temporal knowledge graphs.

    Parameters
    ----------
    half_lives : sequence of float, optional
        Half-lives of the decay scales, in time *steps* (the smallest gap
        between distinct timestamps of the training data).  By default the
        best of ``half_life_grid`` on the validation split.
    half_life_grid : sequence of sequences
        Candidate half-life sets tried by :meth:`fit` when ``half_lives`` is None.
    l2 : float
        L2 penalty on the weights (relative to the mean log-likelihood).
    task : {"object", "relation", "pair"}
        The task :meth:`fit` trains for.  The pair task ranks all (relation,
        object) pairs with the object task's intensity, so ``task="pair"``
        fits the object model.
    """

    def __init__(self, half_lives: Sequence[float] | None = None,
                 half_life_grid: Sequence[Sequence[float]] = ((1, 7, 60), (1, 30, 365), (3, 30)),
                 l2: float = 1e-6, task: str = "object"):
        _check_task(task)
        task = "object" if task == "pair" else task
        if half_lives is not None and (len(half_lives) == 0 or min(half_lives) <= 0):
            raise ValueError(f"half_lives must be positive, got {half_lives}")
        self.half_lives = None if half_lives is None else [float(h) for h in half_lives]
        self.half_life_grid = [list(map(float, g)) for g in half_life_grid]
        self.l2 = float(l2)
        self.task = task
        self.weights: np.ndarray | None = None
        self.step: float | None = None
        self.num_entities = self.num_relations = 0
        self.history: tuple[np.ndarray, np.ndarray] | None = None
        self.fit_report: dict = {}

    # ------------------------------------------------------------------ internals

    @property
    def rates(self) -> np.ndarray:
        return np.log(2.0) / (np.asarray(self.half_lives) * self.step)

    def _kernel_args(self, rates, quads, times, ids, qtimes, targets):
        return dict(stream_subjects=quads[:, 0], stream_relations=quads[:, 1], stream_objects=quads[:, 2],
                    stream_times=times, query_subjects=ids[:, 0], query_relations=ids[:, 1],
                    query_objects=ids[:, 2], query_times=qtimes, query_targets=targets,
                    num_entities=self.num_entities, num_relations=self.num_relations, rates=rates)

    def _training_queries(self, quads: np.ndarray, times: np.ndarray):
        if self.task == "object":
            inverse = np.stack([quads[:, 2], quads[:, 1] + self.num_relations, quads[:, 0], quads[:, 3]], axis=1)
            q = np.concatenate([quads, inverse])
            t = np.concatenate([times, times])
            targets = q[:, 2]
        else:
            q, t, targets = quads, times, quads[:, 1]
        order = np.argsort(t, kind="stable")
        return q[order], t[order], targets[order]

    def _features(self, rates, history, quads, times):
        hq, ht = history
        q, t, targets = self._training_queries(quads, times)
        return _core.kg_features(**self._kernel_args(rates, hq, ht, q, t, targets), task=self.task)

    def _fit_weights(self, phi_true, phi_total) -> tuple[np.ndarray, float]:
        f = phi_true.shape[1]
        scale = np.maximum(phi_total.mean(axis=0), 1e-12)  # condition the problem: features on one scale

        def objective(v):
            w = v / scale
            value, grad = _core.kg_nll(phi_true, phi_total, w)
            return value + self.l2 * float(v @ v), grad / scale + 2 * self.l2 * v

        x0 = np.full(f, 1.0 / f)
        bounds = [(1e-9, None)] + [(0.0, None)] * (f - 1)
        res = minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-9})
        return res.x / scale, float(res.fun)

    # ------------------------------------------------------------------ public API

    def fit(self, store: EventStore, progress: bool = False) -> "KGHawkes":
        """Fit on ``store.train``; choose the decay scales on ``store.valid``.

        Returns self.  ``fit_report`` holds the validation log-likelihood of
        every half-life set tried.
        """
        if not isinstance(store, EventStore) or store.kind != "tkg":
            raise TypeError("fit needs a temporal knowledge graph EventStore (lamp.data.load_tkg / "
                            "lamp.datasets.load_icews14)")
        if store.train is None or len(store.train) == 0:
            raise ValueError("the store has no training events")
        self.num_entities, self.num_relations = store.num_entities, store.num_relations
        distinct = np.unique(store.train.times)
        gaps = np.diff(distinct)
        self.step = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
        train = (store.train.quadruples(), store.train.times)
        history_train = train
        grid = [self.half_lives] if self.half_lives is not None else self.half_life_grid
        has_valid = store.valid is not None and len(store.valid) > 0
        best = None
        report = []
        for half_lives in grid:
            self.half_lives = list(half_lives)
            rates = self.rates
            phi_true, phi_total = self._features(rates, history_train, *train)
            weights, train_nll = self._fit_weights(phi_true, phi_total)
            valid_nll = float("nan")
            if has_valid:
                history_valid = store.stream(("train", "valid"))
                vq = (store.valid.quadruples(), store.valid.times)
                v_true, v_total = self._features(rates, history_valid, *vq)
                valid_nll = float(_core.kg_nll(v_true, v_total, weights)[0])
            report.append({"half_lives": list(half_lives), "train_nll": train_nll, "valid_nll": valid_nll})
            score = valid_nll if has_valid else train_nll
            if best is None or score < best[0]:
                best = (score, list(half_lives), weights)
            if progress:
                print(f"[KGHawkes] half-lives {half_lives}: train NLL {train_nll:.4f}, valid NLL {valid_nll:.4f}")
        _, self.half_lives, self.weights = best
        self.fit_report = {"grid": report, "chosen": self.half_lives, "step": self.step}
        self.history = store.stream()
        return self

    def use_history(self, store: EventStore) -> "KGHawkes":
        """Use all events of ``store`` as the history of later queries (``fit`` does this)."""
        self.history = store.stream()
        return self

    def _require_fitted(self):
        if self.weights is None or self.history is None:
            raise RuntimeError("the proposer is not fitted: call fit(store) or load(path) first")

    def _score(self, queries, task, m, weights, want_ranks=False):
        self._require_fitted()
        _check_task(task)
        if task != self.task and not (task == "pair" and self.task == "object"):
            raise ValueError(f"this proposer was fitted for the {self.task!r} task, not {task!r}")
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool):
            raise TypeError(f"m must be an integer, got {m!r}")
        n_cand = {"object": self.num_entities, "relation": self.num_relations,
                  "pair": self.num_entities * self.num_relations}[task]
        if not 1 <= m <= n_cand:
            raise ValueError(f"m must be in 1..{n_cand} (the number of candidates), got {m}")
        ids, qtimes = _as_queries(queries, self.num_entities, self.num_relations, task)
        order = np.argsort(qtimes, kind="stable")
        ids_sorted, t_sorted = ids[order], qtimes[order]
        targets = None
        foff = fids = None
        if want_ranks:
            targets = ids_sorted[:, 2] if task == "object" else ids_sorted[:, 1]
            foff, fids = time_aware_filter(np.column_stack([ids_sorted, t_sorted]), task, self.num_entities)
        hq, ht = self.history
        if task == "pair":
            top, scores, ranks = _core.kg_score_pairs(
                **self._kernel_args(self.rates, hq, ht, ids_sorted, t_sorted, targets), weights=weights, m=int(m),
                filter_offsets=foff, filter_ids=fids)
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            return top[inverse], scores[inverse], None if ranks is None else ranks[inverse]
        top, scores, ranks = _core.kg_score(**self._kernel_args(self.rates, hq, ht, ids_sorted, t_sorted, targets),
                                            task=task, weights=weights, m=int(m), filter_offsets=foff,
                                            filter_ids=fids)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return top[inverse], scores[inverse], None if ranks is None else ranks[inverse]

    def propose(self, queries, task: str = "object", m: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Top-``m`` candidates of each query, best first.

        Parameters
        ----------
        queries : int array (n, 4)
            (subject, relation, object, time); the column asked for is ignored.
        task : {"object", "relation"}
        m : int
            Number of proposals.

        Returns
        -------
        ids : int64 array (n, m)
            Entity ids (object task), relation ids (relation task), or pair ids
            ``relation * num_entities + object`` (pair task: the object task's
            intensity over all (relation, object) pairs; needs a proposer fitted
            for the object task).
        scores : float64 array (n, m)
            Intensities; ``scores / scores.sum()`` over all candidates is the
            model's probability of each.
        """
        ids, scores, _ = self._score(queries, task, m, self.weights)
        return ids, scores

    def evaluate(self, store: EventStore, split: str = "test", task: str | None = None, m: int = 20,
                 both_directions: bool = True) -> dict:
        """Time-aware filtered MRR and Hits@1/3/10 over all candidates, and the share of queries whose
        answer is in the top ``m``.  Object queries are asked in both directions, as is standard."""
        task = task or self.task
        seqs = getattr(store, split)
        quads = seqs.quadruples()
        if task == "pair":
            top, scores, ranks = self._score(quads, task, m, self.weights, want_ranks=True)
            truth = quads[:, 1] * store.num_entities + quads[:, 2]
            hit = (top == truth[:, None]).any(axis=1)
            return {"mrr": float(np.mean(1.0 / ranks)), "hits@1": float(np.mean(ranks <= 1)),
                    "hits@3": float(np.mean(ranks <= 3)), "hits@10": float(np.mean(ranks <= 10)),
                    f"coverage@{m}": float(np.mean(hit)), "n": int(len(ranks))}
        if task == "object" and both_directions:
            inverse = np.stack([quads[:, 2], quads[:, 1] + store.num_relations, quads[:, 0], quads[:, 3]], axis=1)
            quads = np.concatenate([quads, inverse])
        return _ranking_metrics(self._score(quads, task, m, self.weights, want_ranks=True), quads, task, m)

    def quality(self, queries, task: str | None = None, m: int = 20) -> dict:
        """Time-aware filtered MRR and Hits@1/3/10 over all candidates of the given queries (int (n, 4) of
        (subject, relation, object, time), asked as they are), and the share whose answer is in the top ``m``."""
        task = task or self.task
        q = np.asarray(queries)
        return _ranking_metrics(self._score(q, task, m, self.weights, want_ranks=True), q, task, m)

    def filtered_ranks(self, queries, task: str | None = None) -> np.ndarray:
        """The time-aware filtered rank of each query's true answer among all candidates (float64 (Q,), ties
        counting half): the ranks :meth:`quality` averages."""
        task = task or self.task
        return np.asarray(self._score(np.asarray(queries), task, 1, self.weights, want_ranks=True)[2],
                          dtype=np.float64)

    def summary(self) -> str:
        self._require_fitted()
        names = feature_names(self.task, self.half_lives)
        rows = [f"{n:28s} {w:.4g}" for n, w in zip(names, self.weights)]
        return (f"KGHawkes ({self.task} task), half-lives {self.half_lives} x step {self.step:g}\n  " +
                "\n  ".join(rows))

    def save(self, path) -> None:
        """Write the fitted parameters to ``path`` (a .npz file with a JSON header)."""
        self._require_fitted()
        header = {"class": type(self).__name__, "task": self.task, "half_lives": self.half_lives, "step": self.step,
                  "l2": self.l2, "num_entities": self.num_entities, "num_relations": self.num_relations}
        save_checkpoint(path, "KGHawkes", _FORMAT_VERSION, header, weights=self.weights)

    @classmethod
    def load(cls, path, store: EventStore | None = None) -> "KGHawkes":
        """Read parameters written by :meth:`save`; ``store`` gives the history for ``propose``."""
        header, arrays = load_checkpoint(path, "KGHawkes", _FORMAT_VERSION, ("weights",))
        weights = arrays["weights"]
        model = cls(half_lives=header["half_lives"], l2=header["l2"], task=header["task"])
        expected = len(feature_names(model.task, model.half_lives))
        if weights.shape != (expected,):
            raise ValueError(f"{path}: weights have shape {weights.shape}, expected ({expected},)")
        model.weights, model.step = weights, header["step"]
        model.num_entities, model.num_relations = header["num_entities"], header["num_relations"]
        if store is not None:
            if (store.num_entities, store.num_relations) != (model.num_entities, model.num_relations):
                raise ValueError(f"{path}: fitted for {model.num_entities} entities and {model.num_relations} "
                                 f"relations, but the store has {store.num_entities} and {store.num_relations}")
            model.use_history(store)
        return model


class RecurrencyBaseline(KGHawkes):
    """The "most recent / most frequent triple" heuristic through the same C code path.

    A candidate's score is the count of its triple in the history, decayed
    with a long half-life (so the most frequent, then the most recent, wins),
    plus the inverse triple at a tenth of that weight, plus a tiny popularity
    term to order candidates never seen with the query.
    """

    def __init__(self, half_life: float = 365.0, task: str = "object"):
        super().__init__(half_lives=[half_life], task=task)

    def fit(self, store: EventStore, progress: bool = False) -> "RecurrencyBaseline":
        if not isinstance(store, EventStore) or store.kind != "tkg":
            raise TypeError("fit needs a temporal knowledge graph EventStore")
        self.num_entities, self.num_relations = store.num_entities, store.num_relations
        distinct = np.unique(store.train.times)
        gaps = np.diff(distinct)
        self.step = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
        w = np.zeros(len(feature_names(self.task, self.half_lives)))
        w[0], w[1] = 1e-12, 1e-9
        w[2], w[3] = 1.0, 0.1  # triple, inverse triple
        self.weights = w
        self.history = store.stream()
        return self


def _ranking_metrics(scored, quads, task: str, m: int) -> dict:
    top, _, ranks = scored
    truth = quads[:, 2] if task == "object" else quads[:, 1]
    in_top = (top == truth[:, None]).any(axis=1)
    return {"mrr": float(np.mean(1.0 / ranks)), "hits@1": float(np.mean(ranks <= 1)),
            "hits@3": float(np.mean(ranks <= 3)), "hits@10": float(np.mean(ranks <= 10)),
            f"coverage@{m}": float(np.mean(in_top)), "n": int(len(ranks))}

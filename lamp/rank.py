"""The energy-based ranker (LAMP's last stage): scores each proposal with its evidence and reranks.

:class:`EnergyRanker` is a continuous-time attention energy (see
``csrc/ranker/ranker.h``): the candidate's own (subject, relation, object) embedding
attends over its evidence events (embeddings plus a sinusoidal encoding of
the time gap to the candidate), and an MLP over the attended evidence and the
candidate gives one scalar energy.  Before the readout the evidence passes
through ``layers`` blocks of causal multi-head self-attention with residual
tanh feed-forward layers (``layers=0, heads=1`` is the single readout of the
first version).  Training is contrastive: per query, the real event against
the other M - 1 proposals, softmax cross-entropy over negative energies (or,
with ``loss="binary"``, per-candidate binary cross-entropy with logit
-energy), Adam with gradient clipping, dropout and weight decay; the
checkpoint is selected on the validation split (mean rank), never on test.
Forward, backward and the optimiser step are C (``lamp._core.ranker_*``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lamp import _core
from lamp.arrays import as_int64
from lamp.checkpoint import load_checkpoint, save_checkpoint
from lamp.config import names
from lamp.config.schema import Ranker
from lamp.errors import DataError

__all__ = ["RankingSamples", "EnergyRanker", "IdentityRanker", "EvidenceCountRanker", "mean_rank"]

_FORMAT = 1
_DEFAULT = Ranker()  # the defaults of lamp.ranker (lamp.config.schema) are the constructor's
# the keys of lamp.ranker that are EnergyRanker's own arguments (the rest are the pipeline's: selection, ...)
_ARCHITECTURE_AND_TRAINING = ("width", "heads", "layers", "loss", "dropout", "learning_rate", "weight_decay", "clip",
                              "epochs", "batch_size", "patience", "precision", "agreement", "start_from_prior")


def _block_stds(width: int, layers: int, agreement: bool) -> list[float]:
    """The standard deviation of every parameter block's initial values (0: zeros), in the layout's order,
    which is the C core's (csrc/ranker/ranker.h; ``_core.RANKER_*`` give each block's index)."""
    w = 1.0 / np.sqrt(width)
    readout = {"ENT": 0.1, "REL": 0.1, "OBJ": 0.1, "WQ": w, "WK": w, "WV": w, "W1": 1.0 / np.sqrt(2 * width),
               "B1": 0.0, "W2": w, "B2": 0.0, "GAMMA": 0.0}
    layer = {"AQ": w, "AK": w, "AV": w, "AO": w, "F1": w, "FB1": 0.0, "F2": w, "FB2": 0.0}
    agree = {"WKF": 0.01, "UB": 0.0, "K0": 0.1, "V0": 0.1, "W1P": 0.01, "WP": 0.0}

    def in_order(stds, prefix, count):
        out = [0.0] * count
        for name, std in stds.items():
            out[getattr(_core, prefix + name)] = std
        assert len(stds) == count, (prefix, count)
        return out

    stds = in_order(readout, "RANKER_BLOCK_", _core.RANKER_READOUT_BLOCKS)
    stds += in_order(layer, "RANKER_LAYER_BLOCK_", _core.RANKER_LAYER_BLOCKS) * layers
    if agreement:  # drawn after the others: the blocks shared with agreement = False keep their draws
        stds += in_order(agree, "RANKER_AGREE_BLOCK_", _core.RANKER_AGREE_BLOCKS)
    return stds


@dataclass
class RankingSamples:
    """Queries with M candidates each and their evidence.

    Parameters
    ----------
    evidence : int64 (Q, M, L, 3)
        (subject, relation, object) of each evidence event; -1 rows are padding.
    evidence_times : float64 (Q, M, L)
    candidates : int64 (Q, M, 3)
        (subject, relation, object) of each candidate (typed sequences: (0, type, 0)).
    candidate_times : float64 (Q, M)
    labels : int64 (Q,)
        Index of the true candidate, or -1 when it is not among them (such
        queries are skipped by training and by :func:`mean_rank`).
    prior : float64 (Q, M), optional
        A per-candidate prior the energy may use, e.g. the proposer's
        log-score relative to the query's best (0 for the best).
    evidence_aux : float64 (Q, M, L, A), optional
        A numbers per evidence event that the agreement features of
        :class:`EnergyRanker` take as they are (e.g. the retrieval score
        relative to the candidate's best, 1 / (1 + retrieval rank),
        1 / (1 + index of the generated cause that retrieved it)); read at
        non-padding rows only.
    """

    evidence: np.ndarray
    evidence_times: np.ndarray
    candidates: np.ndarray
    candidate_times: np.ndarray
    labels: np.ndarray
    prior: np.ndarray | None = None
    evidence_aux: np.ndarray | None = None

    def __post_init__(self):
        self.candidates = _int_array(self.candidates, "candidates", 3)
        q, m, _ = self.candidates.shape
        if m < 2:
            raise ValueError(f"candidates must have at least 2 per query (M >= 2) to rank, got M = {m}")
        self.evidence = _int_array(self.evidence, "evidence", 4)
        if self.evidence.shape[:2] != (q, m) or self.evidence.shape[3] != 3:
            raise ValueError(f"evidence must have shape ({q}, {m}, L, 3), got {self.evidence.shape}")
        if self.evidence.shape[2] == 0:
            raise ValueError("evidence has L = 0; use L >= 1 with -1 padding for candidates without evidence")
        self.evidence_times = np.ascontiguousarray(self.evidence_times, dtype=np.float64)
        if self.evidence_times.shape != self.evidence.shape[:3]:
            raise ValueError(f"evidence_times must have shape {self.evidence.shape[:3]}, got "
                             f"{self.evidence_times.shape}")
        self.candidate_times = np.ascontiguousarray(self.candidate_times, dtype=np.float64)
        if self.candidate_times.shape != (q, m):
            raise ValueError(f"candidate_times must have shape ({q}, {m}), got {self.candidate_times.shape}")
        if not np.all(np.isfinite(self.candidate_times)):
            raise ValueError("candidate_times has a NaN or infinite value")
        used = self.evidence[..., 0] >= 0
        bad = np.argwhere((self.evidence < 0) & ~(self.evidence[..., :1] == -1))
        if len(bad):
            pos = tuple(int(i) for i in bad[0])
            raise ValueError(f"evidence{list(pos)} = {self.evidence[pos]}: ids must be >= 0 (a row whose subject is "
                             f"-1 is padding; no other negative id)")
        if not np.all(np.isfinite(self.evidence_times[used])):
            raise ValueError("evidence_times has a NaN or infinite value at a non-padding position")
        self.labels = np.asarray(self.labels)
        if self.labels.dtype.kind not in "iu":
            raise TypeError(f"labels must hold integers, got {self.labels.dtype}")
        self.labels = as_int64(self.labels, "labels")
        if self.labels.shape != (q,):
            raise ValueError(f"labels must have shape ({q},), got {self.labels.shape}")
        if np.any((self.labels < -1) | (self.labels >= m)):
            raise ValueError(f"labels must be in [-1, {m})")
        if self.prior is not None:
            self.prior = np.ascontiguousarray(self.prior, dtype=np.float64)
            if self.prior.shape != (q, m):
                raise ValueError(f"prior must have shape ({q}, {m}), got {self.prior.shape}")
            if not np.all(np.isfinite(self.prior)):
                raise ValueError("prior has a NaN or infinite value")
        if self.evidence_aux is not None:
            aux = np.asarray(self.evidence_aux)
            if aux.dtype.kind not in "biuf":
                raise TypeError(f"evidence_aux must hold real numbers, got {aux.dtype}")
            length = self.evidence.shape[2]
            if aux.ndim != 4 or aux.shape[:3] != (q, m, length):
                raise ValueError(f"evidence_aux must have shape ({q}, {m}, {length}, A), got {aux.shape}")
            self.evidence_aux = np.ascontiguousarray(aux, dtype=np.float64)
            if not np.all(np.isfinite(self.evidence_aux).all(axis=3) | ~used):
                raise ValueError("evidence_aux has a NaN or infinite value at a non-padding position")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_aux(self) -> int:
        """A: the caller-supplied features per evidence event (0 without ``evidence_aux``)."""
        return 0 if self.evidence_aux is None else int(self.evidence_aux.shape[3])

    def subset(self, idx) -> "RankingSamples":
        return RankingSamples(self.evidence[idx], self.evidence_times[idx], self.candidates[idx],
                              self.candidate_times[idx], self.labels[idx],
                              None if self.prior is None else self.prior[idx],
                              None if self.evidence_aux is None else self.evidence_aux[idx])


def _int_array(x, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids, got {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return as_int64(arr, name)


def mean_rank(energies: np.ndarray, labels: np.ndarray) -> float:
    """Mean 1-based rank of the true candidate (lowest energy first), over labelled queries; ties count half."""
    keep = labels >= 0
    e = energies[keep]
    truth = e[np.arange(len(e)), labels[keep]]
    ranks = 1 + (e < truth[:, None]).sum(axis=1) + 0.5 * ((e == truth[:, None]).sum(axis=1) - 1)
    return float(ranks.mean()) if len(ranks) else float("nan")


class EnergyRanker:
    """Energy-based reranker of proposals.

    The defaults of the keyword arguments are those of a config's ``lamp.ranker`` section
    (:class:`lamp.config.schema.Ranker`); :meth:`from_settings` builds the ranker such a section describes.

    Parameters
    ----------
    num_entities, num_relations : int
        Vocabulary sizes (typed sequences: num_entities = 1, num_relations = K).
    width : int
        Embedding and hidden width (even).
    heads : int
        Attention heads (>= 1, must divide ``width``); used by the
        self-attention layers and by the candidate's readout.
    layers : int
        Self-attention blocks over the evidence before the readout (>= 0).
    loss : {"softmax", "binary"}
        ``softmax``: per query, cross-entropy of the true candidate under
        softmax(-energy) (the paper's contrastive loss); ``binary``: per
        candidate, binary cross-entropy with logit -energy, 1 for the true
        candidate and 0 for the others, averaged over the candidates.
    dropout, learning_rate, weight_decay, clip : float
    epochs, batch_size, patience : int
        Training length, queries per step, epochs without validation gain before stopping.
    time_scale : float
        Time gaps are divided by this before encoding (e.g. the data's time step).
    agreement : bool
        Agreement-aware energy (default on; see ``csrc/ranker/ranker.h``): per
        evidence event, features comparing it with the candidate (same
        subject / object / relation / pair / reversed pair / exact triple,
        candidate's object or subject involved, log time gap, then the
        samples' ``evidence_aux``) enter the readout's keys and logits, a
        learned null slot lets the readout say "no evidence agrees", and
        their mean / max / most recent values enter the MLP and the energy.
        ``False`` is the model without them (the layout of older checkpoints).
    aux : int, optional
        A, the ``evidence_aux`` features per event the agreement features
        take (agreement only).  Default: taken from the training samples at
        :meth:`fit` (0 until then).
    start_from_prior : bool
        Start with ``w2 = 0``, so that the untrained energy is ``b2 + gamma *
        prior``: exactly the proposer's order when the samples carry its
        log-score; early stopping then keeps the proposer's order unless an
        epoch beats it on validation.  ``False`` draws ``w2`` at random.
    precision : {"float32", "float64"}
        Arithmetic of the C kernel (parameters are stored in float64 either
        way).  ``float32`` (default) is about twice as fast; ``float64`` is
        the path the gradient checks use.  The two agree to about 1e-5
        relative on energies and gradients.
    seed : int

    Notes
    -----
    When the samples carry a ``prior`` (the proposer's log-score), the energy
    adds ``gamma * prior`` with ``gamma`` learned and started at -1, so an
    untrained ranker reproduces the proposer's order and training learns what
    the evidence adds.  Without a prior the energy comes from the evidence
    and the candidate alone (the paper's setting).
    """

    def __init__(self, num_entities: int, num_relations: int, width: int = _DEFAULT.width,
                 heads: int = _DEFAULT.heads, layers: int = _DEFAULT.layers, loss: str = _DEFAULT.loss,
                 dropout: float = _DEFAULT.dropout, learning_rate: float = _DEFAULT.learning_rate,
                 weight_decay: float = _DEFAULT.weight_decay, clip: float = _DEFAULT.clip,
                 epochs: int = _DEFAULT.epochs, batch_size: int = _DEFAULT.batch_size,
                 patience: int = _DEFAULT.patience, time_scale: float = 1.0, seed: int = 0, progress: bool = True,
                 precision: str = _DEFAULT.precision, agreement: bool = _DEFAULT.agreement, aux: int | None = None,
                 start_from_prior: bool = _DEFAULT.start_from_prior):
        if num_entities < 1 or num_relations < 1:
            raise ValueError("num_entities and num_relations must be positive")
        if width < 2 or width % 2:
            raise ValueError(f"width must be even and >= 2, got {width}")
        if int(heads) != heads or heads < 1:
            raise ValueError(f"heads must be a positive integer, got {heads!r}")
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        if int(layers) != layers or layers < 0:
            raise ValueError(f"layers must be an integer >= 0, got {layers!r}")
        if loss not in names.LOSSES:
            raise ValueError(f"loss must be one of {names.LOSSES}, got {loss!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if precision not in names.PRECISIONS:
            raise ValueError(f"precision must be one of {names.PRECISIONS}, got {precision!r}")
        if not isinstance(agreement, (bool, np.bool_)):
            raise TypeError(f"agreement must be a bool, got {agreement!r}")
        if aux is not None and (isinstance(aux, bool) or int(aux) != aux or aux < 0):
            raise ValueError(f"aux must be an integer >= 0, got {aux!r}")
        if aux and not agreement:
            raise ValueError("aux (evidence_aux features per event) needs agreement=True")
        self._aux_from_samples = aux is None and bool(agreement)
        self._start_from_prior = bool(start_from_prior)
        self.config = dict(num_entities=int(num_entities), num_relations=int(num_relations), width=int(width),
                           heads=int(heads), layers=int(layers), loss=str(loss), dropout=float(dropout),
                           learning_rate=float(learning_rate), weight_decay=float(weight_decay), clip=float(clip),
                           epochs=int(epochs), batch_size=int(batch_size), patience=int(patience),
                           time_scale=float(time_scale), seed=int(seed), progress=bool(progress),
                           precision=str(precision), agreement=bool(agreement), aux=int(aux or 0))
        self._init_params()
        self.history: list[dict] = []

    @classmethod
    def from_settings(cls, settings: Ranker, num_entities: int, num_relations: int, *, time_scale: float = 1.0,
                      seed: int = 0, progress: bool = True) -> "EnergyRanker":
        """The ranker a config's ``lamp.ranker`` section describes (the validated, frozen section)."""
        if not isinstance(settings, Ranker):
            raise TypeError(f"settings must be the lamp.ranker section (lamp.config.schema.Ranker), got "
                            f"{type(settings).__name__}")
        options = {k: getattr(settings, k) for k in _ARCHITECTURE_AND_TRAINING}
        return cls(num_entities, num_relations, **options, time_scale=time_scale, seed=seed, progress=progress)

    def _init_params(self) -> None:
        c = self.config
        width = c["width"]
        self.offsets = _core.ranker_layout(c["num_entities"], c["num_relations"], width, c["heads"], c["layers"],
                                           c["agreement"], c["aux"])
        rng = np.random.default_rng(c["seed"])
        self.params = np.zeros(int(self.offsets[-1]))
        for block, std in enumerate(_block_stds(width, c["layers"], c["agreement"])):
            lo, hi = self.offsets[block], self.offsets[block + 1]
            self.params[lo:hi] = rng.normal(0.0, std, hi - lo) if std else 0.0
        w2, gamma = _core.RANKER_BLOCK_W2, _core.RANKER_BLOCK_GAMMA
        if self._start_from_prior:  # w2 = 0: energy b2 + gamma * prior, the proposer's own order, before training
            self.params[self.offsets[w2]:self.offsets[w2 + 1]] = 0.0
        self.params[self.offsets[gamma]] = -1.0  # start from the proposer's order when a prior is given

    def warm_start(self, params, aux: int | None = None) -> "EnergyRanker":
        """Start training from ``params`` (e.g. a ranker pre-trained on no-LLM evidence of many queries)
        instead of the random initialisation; ``aux`` fixes the retrieval features per evidence event
        the parameters were trained with.  The architecture (vocabulary, width, heads, layers, agreement)
        must be the same."""
        c = self.config
        if aux is not None and c["agreement"] and int(aux) != c["aux"]:
            c["aux"] = int(aux)
            self._init_params()
        params = np.asarray(params, dtype=np.float64)
        if params.shape != self.params.shape:
            raise ValueError(f"warm_start: the parameters have shape {params.shape}, but this ranker (entities "
                             f"{c['num_entities']}, relations {c['num_relations']}, width {c['width']}, heads "
                             f"{c['heads']}, layers {c['layers']}, agreement {c['agreement']}, aux {c['aux']}) has "
                             f"{self.params.shape}")
        if not np.all(np.isfinite(params)):
            raise ValueError("warm_start: the parameters hold NaN or infinite values")
        self.params = params.copy()
        self._aux_from_samples = False
        return self

    def _check_aux(self, samples: RankingSamples) -> None:
        c = self.config
        if c["agreement"] and samples.num_aux != c["aux"]:
            raise ValueError(f"the samples have evidence_aux with A = {samples.num_aux} features per event, but the "
                             f"ranker was built for A = {c['aux']}")

    def _forward(self, samples: RankingSamples, params=None, labels=True, dropout=0.0, seed=0, grad=False,
                 grads_out=None):
        c = self.config
        self._check_aux(samples)
        return _core.ranker_forward(self.params if params is None else params, c["num_entities"],
                                    c["num_relations"], c["width"], c["time_scale"], c["heads"], c["layers"],
                                    samples.evidence, samples.evidence_times, samples.candidates,
                                    samples.candidate_times, samples.prior, samples.labels if labels else None,
                                    c["loss"], dropout, seed, grad, c["precision"], grads_out, c["agreement"],
                                    samples.evidence_aux if c["agreement"] and c["aux"] else None)

    def energy(self, samples: RankingSamples, batch_size: int = 256) -> np.ndarray:
        """Energies (Q, M); lower means more plausible."""
        _check_samples(samples)
        if len(samples) <= batch_size:  # one batch: no copy (subset copies and re-validates every array)
            return self._forward(samples, labels=False)[0]
        out = [self._forward(samples.subset(slice(i, i + batch_size)), labels=False)[0]
               for i in range(0, len(samples), batch_size)]
        return np.concatenate(out)

    def rerank(self, samples: RankingSamples) -> np.ndarray:
        """Candidate indices per query, lowest energy first (Q, M)."""
        return np.argsort(self.energy(samples), axis=1, kind="stable")

    def fit(self, train: RankingSamples, valid: RankingSamples) -> "EnergyRanker":
        """Train on ``train``; keep the parameters with the best validation mean rank (early stopping)."""
        from tqdm.auto import tqdm

        _check_samples(train)
        _check_samples(valid)
        c = self.config
        if self._aux_from_samples and train.num_aux != c["aux"] and not self.history:
            c["aux"] = train.num_aux  # A from the training samples: the agreement blocks sized for it
            self._init_params()
        self._aux_from_samples = False
        train = train.subset(np.flatnonzero(train.labels >= 0))
        if len(train) == 0:
            raise ValueError("no training query has its true candidate among the candidates (all labels are -1)")
        rng = np.random.default_rng(c["seed"])
        m1, m2 = np.zeros_like(self.params), np.zeros_like(self.params)
        grads = np.empty_like(self.params)  # reused by every step
        best = (mean_rank(self.energy(valid), valid.labels), self.params.copy(), 0)
        step, stale = 0, 0
        bar = tqdm(range(c["epochs"]), desc="ranker", disable=not c["progress"])
        for epoch in bar:
            order = rng.permutation(len(train))
            losses = []
            for i in range(0, len(order), c["batch_size"]):
                batch = train.subset(order[i:i + c["batch_size"]])
                step += 1
                _, loss, _ = self._forward(batch, dropout=c["dropout"], seed=c["seed"] * 1000003 + step, grad=True,
                                           grads_out=grads)
                _core.ranker_adam(self.params, grads, m1, m2, c["learning_rate"], 0.9, 0.999, 1e-8,
                                  c["weight_decay"], c["clip"], step)
                losses.append(loss)
            valid_mr = mean_rank(self.energy(valid), valid.labels)
            self.history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "valid_mr": valid_mr})
            bar.set_postfix(loss=f"{np.mean(losses):.3f}", valid_mr=f"{valid_mr:.3f}")
            if valid_mr < best[0]:
                best, stale = (valid_mr, self.params.copy(), epoch + 1), 0
            else:
                stale += 1
                if stale >= c["patience"]:
                    break
        self.params = best[1]
        self.best_epoch, self.best_valid_mr = best[2], best[0]
        return self

    def save(self, path) -> None:
        """Parameters as ``.npz`` with the config and lamp's version in a JSON header."""
        save_checkpoint(path, "EnergyRanker", _FORMAT, {"config": self.config}, params=self.params)

    @classmethod
    def load(cls, path) -> "EnergyRanker":
        """Read a ranker written by :meth:`save` (a file of another format or shape fails clearly)."""
        header, arrays = load_checkpoint(path, "EnergyRanker", _FORMAT, ("params",))
        params = arrays["params"]
        # checkpoints written before heads/layers/loss existed hold the single readout, before agreement none
        config = {"heads": 1, "layers": 0, "loss": "softmax", "agreement": False, "aux": 0, **header["config"]}
        model = cls(**config)
        if params.shape != model.params.shape:
            raise ValueError(f"{path}: parameters have shape {params.shape}, but its config (width "
                             f"{config['width']}, heads {config['heads']}, layers {config['layers']}, "
                             f"agreement {config['agreement']}, aux {config['aux']}, "
                             f"{config['num_entities']} entities, {config['num_relations']} relations) needs "
                             f"{model.params.shape}")
        params = np.asarray(params, dtype=np.float64)
        if not np.all(np.isfinite(params)):
            bad = int(np.size(params) - np.isfinite(params).sum())
            raise DataError(f"{bad} of the {params.size} parameters are NaN or infinite (a damaged checkpoint, or one "
                            "saved after training diverged); every energy would be NaN", path=path)
        model.params = params
        return model


def _check_samples(samples) -> None:
    if not isinstance(samples, RankingSamples):
        raise TypeError(f"expected RankingSamples, got {type(samples).__name__}")


class IdentityRanker:
    """Baseline: keeps the proposer's order (energy = position)."""

    def energy(self, samples: RankingSamples) -> np.ndarray:
        q, m, _ = samples.candidates.shape
        return np.tile(np.arange(m, dtype=np.float64), (q, 1))


class EvidenceCountRanker:
    """Baseline: more evidence events, lower energy (ties keep the proposer's order)."""

    def energy(self, samples: RankingSamples) -> np.ndarray:
        q, m, _ = samples.candidates.shape
        count = (samples.evidence[..., 0] >= 0).sum(axis=2)
        return -count + np.arange(m) / (m + 1.0)

"""Data sets that ship inside lamp, so that examples and the main job run on a fresh install.

Attribution for every file is in ``lamp/datasets/data/README.md`` (see also
:data:`ATTRIBUTION`).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from lamp.data import EventSequences, EventStore, load_amazon_jsonl, load_tkg
from lamp.data import load_section as _load_format
from lamp.errors import ConfigError

__all__ = ["load_icews14", "load_gdelt_sample", "load_amazon_sample", "load_icews14_actors", "load_section", "data_dir", "ATTRIBUTION",
           "available"]

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

ATTRIBUTION = {
    "icews14": "ICEWS coded event data (Harvard Dataverse); ICEWS14 split of RE-GCN as published by "
               "nec-research/TKG-Forecasting-Evaluation",
    "gdelt_sample": "The GDELT Project (gdeltproject.org); RE-Net GDELT split via waltbai/G2S-TKG-forecasting, "
                    "first 20,000 validation events",
    "amazon_reviews_sample": "Amazon Reviews 2023 (McAuley Lab, UCSD), sample from jbheeman/multiagent_human_worker",
    "icews14_actors": "Derived from icews14 (ICEWS coded event data, Harvard Dataverse; RE-GCN split via "
                      "nec-research/TKG-Forecasting-Evaluation) with CAMEO root codes (CAMEO codebook, "
                      "Schrodt 2012, via waltbai/G2S-TKG-forecasting)",
}


def data_dir(name: str) -> str:
    """Folder of a bundled data set (``icews14``, ``gdelt_sample``, ``amazon_reviews_sample``)."""
    if name not in ATTRIBUTION:
        raise ValueError(f"unknown bundled data set {name!r}; available: {sorted(ATTRIBUTION)}")
    return os.path.join(_DATA, "icews14" if name == "icews14_actors" else name)


def available() -> list[str]:
    """Names of the bundled data sets."""
    return sorted(ATTRIBUTION)


def load_icews14() -> EventStore:
    """ICEWS14 (RE-GCN split): 74,845 / 8,514 / 7,371 events, 7,128 entities, 230 relations.

    Times are hours (day x 24) from 2014-01-01; marks are relation ids.
    """
    return load_tkg(data_dir("icews14"), name="icews14", time_unit="hour", time_origin="2014-01-01",
                    attribution=ATTRIBUTION["icews14"])


def load_gdelt_sample() -> EventStore:
    """The first 20,000 events of GDELT's (RE-Net) validation split, split chronologically 80/10/10.

    One time step is 15 minutes; step 0 is 2018-01-01 00:00 in RE-Net's GDELT.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*split the stream chronologically.*")
        return load_tkg(data_dir("gdelt_sample"), name="gdelt_sample", stream="valid_first20000.txt",
                        time_unit="15min", time_origin="2018-01-01", attribution=ATTRIBUTION["gdelt_sample"])


def load_amazon_sample(valid_fraction: float = 0.2) -> EventStore:
    """Amazon Reviews 2023 sample: one sequence of 5 reviews per user, mark = product main category.

    ``validation.jsonl`` (70 users) is split by user into train and valid
    (the last ``valid_fraction`` of its users); ``test.jsonl`` (23 users) is the
    test split.  Times are days since 1970-01-01.
    """
    folder = data_dir("amazon_reviews_sample")
    everything = [load_amazon_jsonl(os.path.join(folder, f)) for f in ("validation.jsonl.gz", "test.jsonl.gz")]
    categories = sorted(set(everything[0].type_names) | set(everything[1].type_names))
    pool = load_amazon_jsonl(os.path.join(folder, "validation.jsonl.gz"), categories=categories)
    test = load_amazon_jsonl(os.path.join(folder, "test.jsonl.gz"), categories=categories)
    n_valid = int(round(pool.num_sequences * valid_fraction))
    cut = pool.num_sequences - n_valid
    train, valid = _split_sequences(pool, cut)
    return EventStore(name="amazon_reviews_sample", kind="typed", train=train, valid=valid, test=test,
                      num_types=len(categories), type_names=categories, time_unit="day",
                      time_origin="1970-01-01", source=folder, attribution=ATTRIBUTION["amazon_reviews_sample"])


def load_icews14_actors(min_events: int = 5, max_events: int = 64, seed: int = 0) -> EventStore:
    """Typed sequences from ICEWS14: what each actor did, month by month, as CAMEO root codes.

    Every event of ICEWS14 (all three splits, in time order) belongs to the sequence of its subject in
    its 30.4-day month; sequences with fewer than ``min_events`` events are dropped and longer ones keep
    their last ``max_events``.  The type of an event is the CAMEO root code of its relation (20 types,
    ``relation2cameo.txt``), its time the day since 2014-01-01, and its text the relation and the object
    (e.g. ``Make statement Thailand``), which matching retrieves on.  The sequences are split at random
    (seeded) 70 / 15 / 15 into train / valid / test: about 3,700 sequences and 60,000 events.
    """
    if min_events < 2 or max_events < min_events:
        raise ValueError(f"need 2 <= min_events <= max_events, got {min_events} and {max_events}")
    kg = load_icews14()
    quads, times = kg.stream()
    codes = {}
    with open(os.path.join(data_dir("icews14"), "relation2cameo.txt"), encoding="utf-8") as f:
        for line in f:
            name, _, root, root_name = line.rstrip("\n").split("\t")
            codes[name] = (int(root), root_name)
    roots = sorted({v for v in codes.values()})
    type_of = np.array([roots.index(codes[name]) for name in kg.relation_names], dtype=np.int64)
    type_names = [f"{root:02d} {root_name}" for root, root_name in roots]
    days = times / 24.0
    month = np.floor(days / 30.4).astype(np.int64)
    key = quads[:, 0] * (int(month.max()) + 1) + month
    order = np.lexsort((np.arange(len(key)), key))  # by (actor, month), then time order
    uniq, start, count = np.unique(key[order], return_index=True, return_counts=True)
    keep = count >= min_events
    rng = np.random.default_rng(seed)
    chosen = np.flatnonzero(keep)[rng.permutation(int(keep.sum()))]
    n_train, n_valid = int(0.7 * len(chosen)), int(0.15 * len(chosen))
    names = [n.replace("_", " ") for n in kg.relation_names]
    ents = [n.replace("_", " ") for n in kg.entity_names]
    months = int(month.max()) + 1

    def split(groups):
        groups = np.sort(groups)
        rows = [order[start[g] + max(0, count[g] - max_events):start[g] + count[g]] for g in groups]
        idx = np.concatenate(rows)
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
        return EventSequences(days[idx], type_of[quads[idx, 1]], offsets, len(type_names),
                              texts=[f"{names[r]} {ents[o]}" for r, o in zip(quads[idx, 1], quads[idx, 2])],
                              sequence_ids=[f"{kg.entity_names[int(uniq[g] // months)]} month {int(uniq[g] % months)}"
                                            for g in groups], type_names=type_names)

    return EventStore(name="icews14_actors", kind="typed", train=split(chosen[:n_train]),
                      valid=split(chosen[n_train:n_train + n_valid]), test=split(chosen[n_train + n_valid:]),
                      num_types=len(type_names), type_names=type_names, time_unit="day", time_origin="2014-01-01",
                      source=data_dir("icews14"), attribution=ATTRIBUTION["icews14_actors"])


def _split_sequences(seqs, cut: int):
    def take(lo, hi):
        b, e = int(seqs.offsets[lo]), int(seqs.offsets[hi])
        return EventSequences(seqs.times[b:e], seqs.marks[b:e], seqs.offsets[lo:hi + 1] - b, seqs.num_types,
                              texts=seqs.texts[b:e], fields={k: v[b:e] for k, v in seqs.fields.items()},
                              sequence_ids=seqs.sequence_ids[lo:hi], type_names=seqs.type_names,
                              source=seqs.source)

    return take(0, cut), take(cut, seqs.num_sequences)


LOADERS = {"icews14": load_icews14, "gdelt_sample": load_gdelt_sample, "amazon_reviews_sample": load_amazon_sample,
           "icews14_actors": load_icews14_actors}
BUNDLED_FORMATS = {"icews14": "tkg", "gdelt_sample": "tkg", "amazon_reviews_sample": "amazon_jsonl",
                   "icews14_actors": "tkg"}


def load_section(section: dict, resolve=lambda p: p, name: str | None = None) -> EventStore:
    """Load a config's data section: ``data_dir: lamp://NAME`` is a bundled data set (its
    ``data_format`` must match it), anything else goes to the loader of its ``data_format``
    (:func:`lamp.data.load_section`)."""
    folder = section.get("data_dir")
    if folder is not None and str(folder).startswith("lamp://"):
        bundled = str(folder)[len("lamp://"):]
        if bundled not in LOADERS:
            raise ConfigError(f"data.{name}.data_dir: unknown bundled data set {bundled!r}; available: "
                              f"{sorted(LOADERS)}")
        if section.get("data_format") != BUNDLED_FORMATS[bundled]:
            raise ConfigError(f"data.{name}: the bundled {bundled} is data_format "
                              f"{BUNDLED_FORMATS[bundled]!r}, not {section.get('data_format')!r}")
        return LOADERS[bundled]()
    return _load_format(section, resolve=resolve, name=name)

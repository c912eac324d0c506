"""Data sets that ship inside lamp, so that examples and the main job run on a fresh install.

Attribution for every file is in ``lamp/datasets/data/README.md`` (see also
:data:`ATTRIBUTION`).
"""
from __future__ import annotations

import os
import warnings

from lamp.data import EventSequences, EventStore, load_amazon_jsonl, load_tkg
from lamp.data import load_section as _load_format
from lamp.errors import ConfigError

__all__ = ["load_icews14", "load_gdelt_sample", "load_amazon_sample", "load_section", "data_dir", "ATTRIBUTION",
           "available"]

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

ATTRIBUTION = {
    "icews14": "ICEWS coded event data (Harvard Dataverse); ICEWS14 split of RE-GCN as published by "
               "nec-research/TKG-Forecasting-Evaluation",
    "gdelt_sample": "The GDELT Project (gdeltproject.org); RE-Net GDELT split via waltbai/G2S-TKG-forecasting, "
                    "first 20,000 validation events",
    "amazon_reviews_sample": "Amazon Reviews 2023 (McAuley Lab, UCSD), sample from jbheeman/multiagent_human_worker",
}


def data_dir(name: str) -> str:
    """Folder of a bundled data set (``icews14``, ``gdelt_sample``, ``amazon_reviews_sample``)."""
    if name not in ATTRIBUTION:
        raise ValueError(f"unknown bundled data set {name!r}; available: {sorted(ATTRIBUTION)}")
    return os.path.join(_DATA, name)


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


def _split_sequences(seqs, cut: int):
    def take(lo, hi):
        b, e = int(seqs.offsets[lo]), int(seqs.offsets[hi])
        return EventSequences(seqs.times[b:e], seqs.marks[b:e], seqs.offsets[lo:hi + 1] - b, seqs.num_types,
                              texts=seqs.texts[b:e], fields={k: v[b:e] for k, v in seqs.fields.items()},
                              sequence_ids=seqs.sequence_ids[lo:hi], type_names=seqs.type_names,
                              source=seqs.source)

    return take(0, cut), take(cut, seqs.num_sequences)


LOADERS = {"icews14": load_icews14, "gdelt_sample": load_gdelt_sample, "amazon_reviews_sample": load_amazon_sample}
BUNDLED_FORMATS = {"icews14": "tkg", "gdelt_sample": "tkg", "amazon_reviews_sample": "amazon_jsonl"}


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

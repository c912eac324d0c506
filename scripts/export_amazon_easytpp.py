"""Write the bundled Amazon reviews sample in EasyTPP's JSON layout (lamp/datasets/data/amazon_easytpp).

EasyTPP data sets carry only event types and times; this export keeps the
category sequences of the sample's users (train / dev / test as in
:func:`lamp.datasets.load_amazon_sample`), times in days since each user's
first review.  Run from the repository root:

    python scripts/export_amazon_easytpp.py
"""
import os

import numpy as np

from lamp.data import EventSequences, save_easytpp_json
from lamp.datasets import load_amazon_sample

out = os.path.join(os.path.dirname(__file__), "..", "lamp", "datasets", "data", "amazon_easytpp")
os.makedirs(out, exist_ok=True)
store = load_amazon_sample()
for split, name in (("train", "train"), ("valid", "dev"), ("test", "test")):
    seqs = store.splits[split]
    times = seqs.times - np.repeat(seqs.times[seqs.offsets[:-1]], seqs.lengths)
    relative = EventSequences(np.round(times, 6), seqs.marks, seqs.offsets, seqs.num_types,
                              sequence_ids=list(range(seqs.num_sequences)))
    save_easytpp_json(relative, os.path.join(out, f"{name}.json"))
with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as f:
    f.write("# amazon_easytpp\n\nThe category sequences of `amazon_reviews_sample` (Amazon Reviews 2023, McAuley Lab, "
            "UCSD; see ../README.md and ../amazon_reviews_sample/UCSD_README.md for the source and its terms) in "
            "EasyTPP's JSON layout: one user per line, `type_event` = the index of the product's main category "
            "in this list, `time_since_start` in days since the user's first review.\n\nCategories:\n\n" +
            "\n".join(f"{k}. {n}" for k, n in enumerate(store.type_names)) +
            "\n\nWritten by `python scripts/export_amazon_easytpp.py`.\n")
print("wrote", out)

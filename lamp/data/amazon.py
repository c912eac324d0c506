"""Amazon reviews (JSONL, one user per line: history + heldout) as typed sequences with texts."""
from __future__ import annotations

import ast
import json
import math
import warnings
from typing import Sequence

import numpy as np

from lamp.data.events import EventSequences, EventStore, _open_text, _require_file
from lamp.errors import DataError

__all__ = ["load_amazon_jsonl"]

# --------------------------------------------------------------------------
# Amazon reviews (JSONL, one user per line: history + heldout)


def _review_product(review: dict, path: str, lineno: int) -> dict:
    product = review.get("product") or {}
    if isinstance(product, str):
        try:
            product = ast.literal_eval(product)
        except (ValueError, SyntaxError):
            raise DataError("field 'product' is neither an object nor a readable literal",
                            path=path, line=lineno) from None
    if not isinstance(product, dict):
        raise DataError("field 'product' must be an object", path=path, line=lineno)
    return product


def load_amazon_jsonl(path, categories: Sequence[str] | None = None,
                      unknown_category: str = "Unknown") -> EventSequences:
    """Load Amazon reviews JSONL (Amazon Reviews 2023 sample layout) as typed sequences with text.

    Each line is a user: ``{"user_id", "history": [review, ...], "heldout": review}``;
    a review has ``timestamp_ms``, ``rating``, ``review_title``, ``review_full``
    and ``product`` (with ``title`` and ``main_category``).  One sequence per
    user (history then heldout), time in days since 1970-01-01, mark = the
    product's main category, text = review title + review text.

    Parameters
    ----------
    categories : list of str, optional
        The category vocabulary (mark ``i`` is ``categories[i]``).  By default
        the sorted categories of this file; pass the training file's list to
        load other splits with the same marks.  A category outside a given
        vocabulary is an error.
    unknown_category : str
        Name used for reviews whose product has no main category.
    """
    path = _require_file(path)
    users = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg}", path=path, line=lineno) from None
            if not isinstance(rec, dict) or "history" not in rec:
                raise DataError("expected an object with 'user_id', 'history' and 'heldout'", path=path, line=lineno)
            reviews = list(rec.get("history") or [])
            if rec.get("heldout"):
                reviews.append(rec["heldout"])
            events = []
            for review in reviews:
                try:
                    t = float(review["timestamp_ms"]) / 86_400_000.0
                except (KeyError, TypeError, ValueError):
                    raise DataError("a review has no numeric 'timestamp_ms'", path=path, line=lineno) from None
                if not math.isfinite(t):
                    raise DataError("a review has a non-finite 'timestamp_ms'", path=path, line=lineno)
                product = _review_product(review, path, lineno)
                category = product.get("main_category") or unknown_category
                title = str(review.get("review_title") or "")
                body = str(review.get("review_full") or review.get("review_excerpt") or "")
                try:
                    rating = float(review.get("rating")) if review.get("rating") is not None else math.nan
                except (TypeError, ValueError):
                    raise DataError(f"rating {review.get('rating')!r} is not a number", path=path,
                                    line=lineno) from None
                events.append((t, category, f"{title}. {body}".strip(". ").strip(), rating,
                               str(product.get("title") or ""), title))
            if not events:
                raise DataError("user has no reviews", path=path, line=lineno)
            order = sorted(range(len(events)), key=lambda i: events[i][0])
            if order != list(range(len(events))):
                warnings.warn(f"{path}: line {lineno}: reviews were not in time order; lamp sorted them",
                              stacklevel=2)
                events = [events[i] for i in order]
            users.append((rec.get("user_id", str(lineno)), events))
    if not users:
        raise DataError("no users", path=path)
    if categories is None:
        categories = sorted({e[1] for _, evs in users for e in evs})
    index = {c: i for i, c in enumerate(categories)}
    marks, times, texts, ratings, products, titles, cats = [], [], [], [], [], [], []
    for u, (uid, evs) in enumerate(users):
        m = []
        for e in evs:
            if e[1] not in index:
                raise DataError(f"category {e[1]!r} of user {uid} is not in the given categories",
                                path=path, sequence=u)
            m.append(index[e[1]])
            texts.append(e[2])
            ratings.append(e[3])
            products.append(e[4])
            titles.append(e[5])
            cats.append(e[1])
        marks.append(m)
        times.append([e[0] for e in evs])
    seqs = EventSequences.from_lists(
        times, marks, len(categories), texts=texts,
        fields={"rating": np.array(ratings), "product_title": products, "review_title": titles, "category": cats},
        sequence_ids=[uid for uid, _ in users], type_names=categories, source=path)
    return seqs



def load_section(section: dict, resolve, name: str | None = None) -> EventStore:
    """A ``data_format: amazon_jsonl`` section: ``train_dir`` (and ``valid_dir``, ``test_dir``) JSONL files;
    the categories are the training file's (or ``categories``)."""
    from lamp.errors import ConfigError

    paths = {k: resolve(section.get(f"{k}_dir")) for k in ("train", "valid", "test")}
    if paths["train"] is None:
        raise ConfigError(f"data.{name}: data_format 'amazon_jsonl' needs train_dir (or "
                          "data_dir: lamp://amazon_reviews_sample)")
    train = load_amazon_jsonl(paths["train"], categories=section.get("categories"))
    cats = train.type_names
    splits = {k: None if p is None else load_amazon_jsonl(p, categories=cats) for k, p in paths.items()
              if k != "train"}
    return EventStore(name=name or "amazon", kind="typed", train=train, num_types=len(cats), type_names=cats,
                      time_unit="day", time_origin="1970-01-01", **splits)

"""Amazon reviews (JSONL, one user per line: history + heldout) as typed sequences with texts."""
from __future__ import annotations

import ast
import math
import warnings
from typing import Sequence

import numpy as np

from lamp.data.events import EventSequences, EventStore, _require_file
from lamp.data.validate import as_time, check_time, load_json, read_text
from lamp.errors import DataError

__all__ = ["load_amazon_jsonl"]

# --------------------------------------------------------------------------
# Amazon reviews (JSONL, one user per line: history + heldout)


def _review_product(review: dict, where: str, path: str, lineno: int) -> dict:
    product = review.get("product")
    if product is None or product == "":
        return {}
    if isinstance(product, str):
        try:
            product = ast.literal_eval(product)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            raise DataError(f"{where}.product is neither an object nor a readable literal",
                            path=path, line=lineno) from None
    if not isinstance(product, dict):
        raise DataError(f"{where}.product must be an object, got {type(product).__name__}", path=path, line=lineno)
    return product


def _text(review: dict, key: str, where: str, path: str, lineno: int) -> str:
    value = review.get(key)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise DataError(f"{where}.{key} must be text, got {type(value).__name__}", path=path, line=lineno)
    return str(value)


def _review(review, where: str, path: str, lineno: int, unknown_category: str) -> tuple:
    """(time in days, category, text, rating, product title, review title) of one review."""
    if not isinstance(review, dict):
        raise DataError(f"{where} must be an object, got {type(review).__name__}", path=path, line=lineno)
    if "timestamp_ms" not in review:
        raise DataError(f"{where} has no 'timestamp_ms'", path=path, line=lineno)
    ms = as_time(review["timestamp_ms"], f"{where}.timestamp_ms", path, lineno, strings=True)
    t = check_time(ms / 86_400_000.0, f"{where}.timestamp_ms (in days)", path, lineno)
    product = _review_product(review, where, path, lineno)
    category = product.get("main_category")
    if category is None or category == "":
        category = unknown_category
    elif not isinstance(category, str):
        raise DataError(f"{where}.product.main_category must be a string, got {type(category).__name__}",
                        path=path, line=lineno)
    title = _text(review, "review_title", where, path, lineno)
    body = _text(review, "review_full", where, path, lineno) or _text(review, "review_excerpt", where, path, lineno)
    rating = review.get("rating")
    if rating is None or rating == "":
        rating = math.nan
    else:
        rating = as_time(rating, f"{where}.rating", path, lineno, strings=True)
    product_title = product.get("title")
    product_title = "" if product_title is None else str(product_title)
    return t, category, f"{title}. {body}".strip(". ").strip(), rating, product_title, title


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
    for lineno, line in enumerate(read_text(path), start=1):
        if not line.strip():
            continue
        rec = load_json(line, path, lineno)
        if not isinstance(rec, dict) or "history" not in rec:
            raise DataError("expected an object with 'user_id', 'history' and 'heldout'", path=path, line=lineno)
        history = rec["history"]
        if history is None:
            history = []
        if not isinstance(history, list):
            raise DataError(f"history must be a list of reviews, got {type(history).__name__}", path=path,
                            line=lineno)
        events = [_review(r, f"history[{j}]", path, lineno, unknown_category) for j, r in enumerate(history)]
        if rec.get("heldout"):
            events.append(_review(rec["heldout"], "heldout", path, lineno, unknown_category))
        if not events:
            raise DataError("user has no reviews", path=path, line=lineno)
        order = sorted(range(len(events)), key=lambda i: events[i][0])
        if order != list(range(len(events))):
            warnings.warn(f"{path}: line {lineno}: reviews were not in time order; lamp sorted them",
                          stacklevel=2)
            events = [events[i] for i in order]
        user_id = rec.get("user_id", str(lineno))
        if isinstance(user_id, (dict, list)):
            raise DataError(f"user_id must be a string or number, got {type(user_id).__name__}", path=path,
                            line=lineno)
        users.append((user_id, events))
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

"""Metrics of reranked proposals and the paired bootstrap."""
import json

import numpy as np
import pytest

from lamp.report import metrics_table, paired_bootstrap, rank_metrics, truth_ranks, write_report


def test_truth_ranks():
    order = np.array([[2, 0, 1], [0, 1, 2], [1, 2, 0]])
    truth = np.array([0, 2, -1])
    np.testing.assert_array_equal(truth_ranks(order, truth), [2, 3, 0])
    with pytest.raises(ValueError, match="order must be"):
        truth_ranks(order[0], truth)


def test_rank_metrics_against_hand_computation():
    ranks = np.array([1, 2, 0, 4, 0])
    m = rank_metrics(ranks, m=5)
    assert m["n"] == 3 and m["n_queries"] == 5 and m["coverage"] == pytest.approx(0.6)
    assert m["mr"] == pytest.approx(7 / 3)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0.25) / 3)
    assert m["hits@1"] == pytest.approx(1 / 3) and m["hits@3"] == pytest.approx(2 / 3)
    assert m["mr_all"] == pytest.approx((1 + 2 + 6 + 4 + 6) / 5)
    assert m["random_mr"] == 3.0


def test_random_order_has_mr_near_half():
    rng = np.random.default_rng(0)
    m = 20
    order = np.array([rng.permutation(m) for _ in range(4000)])
    ranks = truth_ranks(order, rng.integers(0, m, size=4000))
    assert rank_metrics(ranks, m)["mr"] == pytest.approx((m + 1) / 2, abs=0.3)


def test_bootstrap_detects_real_gain_and_not_noise():
    rng = np.random.default_rng(1)
    base = rng.integers(1, 21, size=400)
    better = np.maximum(1, base - 3)
    gain = paired_bootstrap(base, better, seed=0)
    assert gain["high"] < 0 and gain["delta_mr"] < -2
    noise = paired_bootstrap(base, rng.permutation(base), seed=0)
    assert noise["low"] < 0 < noise["high"]
    with pytest.raises(ValueError):
        paired_bootstrap(base, base[:-1])


def test_write_report(tmp_path):
    metrics = {"object": {"base": rank_metrics(np.array([1, 3, 0]), 5),
                          "lamp": dict(rank_metrics(np.array([1, 2, 0]), 5),
                                       vs_base=paired_bootstrap(np.array([1, 3, 0]), np.array([1, 2, 0])))}}
    paths = write_report(str(tmp_path), metrics)
    assert json.load(open(paths["json"]))["object"]["lamp"]["mr"] == 1.5
    assert open(paths["csv"]).read().count("\n") == 3
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    assert "lamp" in metrics_table(metrics)

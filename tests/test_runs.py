"""Run directory: stages are reused only when their inputs are unchanged."""
import numpy as np

from lamp.runs import RunDirectory, fingerprint


def test_fingerprint_is_stable_and_content_based():
    a = fingerprint({"b": 1, "a": [1, 2]}, np.arange(3))
    assert a == fingerprint({"a": [1, 2], "b": 1}, np.arange(3))
    assert a != fingerprint({"a": [1, 2], "b": 2}, np.arange(3))
    assert a != fingerprint({"a": [1, 2], "b": 1}, np.arange(4))


def test_stage_reuse_and_invalidation(tmp_path):
    run = RunDirectory(tmp_path / "run")
    calls = []

    def compute(value):
        def f():
            calls.append(value)
            return {"x": np.full(3, value), "note": f"v{value}"}
        return f

    first = run.stage("proposals", {"m": 20}, [], compute(1))
    assert not first.loaded and calls == [1]
    again = run.stage("proposals", {"m": 20}, [], compute(2))
    assert again.loaded and calls == [1] and again["note"] == "v1"
    np.testing.assert_array_equal(again["x"], [1, 1, 1])
    changed = run.stage("proposals", {"m": 10}, [], compute(3))
    assert not changed.loaded and calls == [1, 3]
    # a downstream stage depends on the upstream fingerprint
    down = run.stage("evidence", {}, [changed.fingerprint], compute(4))
    assert run.stage("evidence", {}, [changed.fingerprint], compute(5)).loaded
    assert not run.stage("evidence", {}, [first.fingerprint], compute(6)).loaded
    assert calls == [1, 3, 4, 6] and down.fingerprint
    # an unfinished stage (no DONE marker) is recomputed
    (tmp_path / "run" / "evidence" / "DONE").unlink()
    assert not run.stage("evidence", {}, [first.fingerprint], compute(7)).loaded
    assert (tmp_path / "run" / "run.log").read_text().count("computing") == 5

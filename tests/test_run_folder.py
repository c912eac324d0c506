"""A run folder that two runs, a full disk or a damaged file cannot corrupt (issue 27).

Each test runs the real pipeline on a small ICEWS14 slice with the LLM test server: one writer per folder,
stages verified when read back and recomputed when damaged, metrics that carry their provenance, and every
file-system or SQLite failure ending in exit 2 and one ``lamp: error:`` line with every finished stage and
cached answer intact.
"""
import errno
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from lamp.cli import main
from lamp.llm.testserver import TestServer
from lamp.pipeline import Pipeline, load_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = textwrap.dedent("""
    data:
      icews14: {{data_format: tkg, data_dir: lamp://icews14}}
    E:
      base_config: {{dataset_id: icews14}}
      lamp:
        task: object
        num_candidates: {m}
        query_limit: 30
        train_query_limit: 30
        valid_query_limit: 10
        proposer: {{model: recurrency}}
        abduction: {{backend: openai, base_url: "{url}", model: test, num_shots: 2}}
        ranker: {{epochs: 2, width: 8}}
        evaluation: {{bootstrap: 50, plot: false}}
""")


@pytest.fixture(scope="module")
def server():
    with TestServer() as s:
        yield s


def _config(tmp_path, server, m=3, name="c.yaml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(m=m, url=server.base_url))
    return str(path)


def _task_metrics(folder) -> dict:
    """The metrics of the run in ``folder``, without what legitimately changes between runs."""
    metrics = load_metrics(str(folder))["object"]
    return {method: {k: v for k, v in values.items() if "time" not in k} for method, values in metrics.items()}


def _done_fingerprints(folder) -> dict:
    out = {}
    for name in sorted(os.listdir(folder)):
        done = os.path.join(folder, name, "DONE")
        if os.path.isfile(done):
            with open(done, encoding="utf-8") as f:
                out[name] = json.load(f)["fingerprint"]
    return out


def _agree(folder) -> None:
    """The folder's metrics.json names exactly the fingerprints its finished stages hold."""
    provenance = load_metrics(str(folder), provenance=True)["provenance"]
    assert provenance["stages"] == _done_fingerprints(folder)
    assert provenance["settings"]["num_candidates"] == np.load(os.path.join(folder, "proposals", "arrays.npz"))[
        "test_candidates"].shape[1]


def _error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("lamp: error: ") for line in lines), err
    assert "Traceback" not in err
    return lines


# ---------------------------------------------------------------------------------------------- one writer


def _lamp(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "lamp", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_two_runs_on_one_folder_one_waits_and_every_prompt_is_sent_once(tmp_path):
    with TestServer(faults={"latency": 0.05}) as server:
        config, out = _config(tmp_path, server), str(tmp_path / "run")
        first, second = _lamp("run", config, "--out", out), _lamp("run", config, "--out", out)
        outputs = [p.communicate(timeout=300) for p in (first, second)]
        assert [p.returncode for p in (first, second)] == [0, 0], outputs
        assert server.total > 0 and set(server.counts.values()) == {1}  # no prompt paid twice
    waited = [o for o, _ in outputs if "another lamp process" in o]
    assert len(waited) == 1 and "waiting for it to finish" in waited[0]
    log = (tmp_path / "run" / "run.log").read_text()
    assert log.count("stage abduction: computing") == 1 and log.count("stage abduction: reusing") == 1
    _agree(out)


def test_no_wait_exits_2_naming_the_holder(tmp_path, capsys):
    with TestServer(faults={"latency": 0.2}) as server:
        config, out = _config(tmp_path, server), tmp_path / "run"
        first = _lamp("run", config, "--out", str(out))
        deadline = time.time() + 120
        while time.time() < deadline and not ((out / ".lock").exists()
                                               and (out / ".lock").read_text().strip() == str(first.pid)):
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        for command in ("run", "plan"):
            assert main([command, config, "--out", str(out), "--no-wait"]) == 2
            lines = _error_lines(capsys)
            assert len(lines) == 1 and f"PID {first.pid}" in lines[0] and str(out) in lines[0]
        assert first.wait(timeout=300) == 0
        sent = dict(server.counts)
    assert set(sent.values()) == {1}
    _agree(out)


def test_the_lock_is_released_when_its_holder_dies(tmp_path, server):
    """fcntl locks die with their process: a run killed with SIGKILL does not block the next one."""
    config, out = _config(tmp_path, server), tmp_path / "run"
    code = ("import os, sys; from lamp.runs import RunDirectory\n"
            "d = RunDirectory(sys.argv[1])\n"
            "with d.locked(wait=False):\n"
            "    print('held', flush=True); os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == -9 and "held" in proc.stdout
    assert main(["run", config, "--out", str(out), "--no-wait"]) == 0


def test_leftovers_of_an_interrupted_save_are_tidied(tmp_path, server):
    """A process killed between setting the old stage aside and renaming the new one into place: the next
    run puts the old one back (and removes temporary folders), so it is reused, not lost."""
    config, out = _config(tmp_path, server), tmp_path / "run"
    Pipeline.from_yaml(config, out=str(out)).run()
    aside = out / ".proposals.old-x1"
    aside.mkdir()
    os.rename(out / "proposals", aside / "proposals")
    (out / ".abduction.tmp-y2").mkdir()
    (out / ".abduction.tmp-y2" / "result.json").write_text("{")
    sent = server.total
    Pipeline.from_yaml(config, out=str(out)).run()
    assert server.total == sent
    assert not any(name.startswith(".") and name != ".lock" for name in os.listdir(out))
    log = (out / "run.log").read_text()
    assert "put back the version set aside" in log and log.count("stage proposals: reusing") == 1


# ---------------------------------------------------------------------------------------------- damage


def _damage(path: str, how: str) -> None:
    data = open(path, "rb").read()
    if how == "delete":
        os.remove(path)
    elif how == "empty":
        open(path, "wb").close()
    elif how == "truncate":
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
    else:  # flip one byte in the middle
        i = len(data) // 2
        with open(path, "wb") as f:
            f.write(data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:])


DAMAGES = ("delete", "empty", "truncate", "corrupt")


def _damage_each_stage(tmp_path, server, cases):
    config, out = _config(tmp_path, server), tmp_path / "run"
    original = _task_metrics(Pipeline.from_yaml(config, out=str(out)).run() and out)
    stages = list(load_metrics(str(out), provenance=True)["provenance"]["stages"])
    assert len(stages) >= 6 and stages[:3] == ["proposer", "proposals", "abduction"]
    sent = server.total
    for i, stage in enumerate(stages):
        for how in cases(i):
            files = sorted(f for f in os.listdir(out / stage) if f != "DONE")
            target = files[(i + DAMAGES.index(how)) % len(files)]  # every kind of file gets damaged
            _damage(str(out / stage / target), how)
            log_before = (out / "run.log").read_text()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                Pipeline.from_yaml(config, out=str(out)).run()
            messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
            assert any(f"stage {stage}: {target}" in m for m in messages), (stage, target, how, messages)
            log = (out / "run.log").read_text()[len(log_before):]
            for later in stages[i:]:  # the damaged stage and every stage after it are computed again
                assert f"stage {later}: computing" in log, (stage, target, how, later)
            for earlier in stages[:i]:
                assert f"stage {earlier}: reusing" in log, (stage, target, how, earlier)
            assert _task_metrics(out) == original, (stage, target, how)
            _agree(out)
    assert server.total == sent  # recomputed abduction is answered by the cache


def test_a_damaged_stage_is_recomputed_with_everything_after_it(tmp_path, server):
    """Each stage damaged once (the kinds of damage and the files damaged rotate over the stages)."""
    _damage_each_stage(tmp_path, server, lambda i: [DAMAGES[i % len(DAMAGES)]])


@pytest.mark.slow
def test_every_kind_of_damage_to_every_stage(tmp_path, server):
    _damage_each_stage(tmp_path, server, lambda i: DAMAGES)


def test_a_damaged_stage_read_directly_is_never_returned_as_loaded(tmp_path):
    """RunDirectory alone: a finished stage whose arrays were emptied is recomputed (with a warning), not
    loaded empty."""
    from lamp.runs import RunDirectory

    run = RunDirectory(tmp_path / "run")
    run.stage("a", {"k": 1}, [], lambda: {"x": np.arange(5), "note": "n"})
    open(tmp_path / "run" / "a" / "arrays.npz", "wb").close()
    with pytest.warns(RuntimeWarning, match="arrays.npz does not match its checksum"):
        again = RunDirectory(tmp_path / "run").stage("a", {"k": 1}, [], lambda: {"x": np.arange(5) * 2, "note": "m"})
    assert not again.loaded and again["note"] == "m"
    assert RunDirectory(tmp_path / "run").stage("a", {"k": 1}, [], lambda: {}).loaded


# ---------------------------------------------------------------------------------------------- stale metrics


def test_an_interrupted_rerun_with_other_settings_leaves_no_disagreeing_metrics(tmp_path, server, monkeypatch):
    out = tmp_path / "run"
    Pipeline.from_yaml(_config(tmp_path, server, m=3), out=str(out)).run()
    _agree(out)
    import lamp.pipeline.core as core

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "abduce", interrupted)
    assert main(["run", _config(tmp_path, server, m=4, name="m4.yaml"), "--out", str(out)]) == 130
    assert not (out / "metrics.json").exists() and not (out / "metrics.csv").exists()
    previous = json.loads((out / "metrics.previous.json").read_text())
    assert previous["provenance"]["settings"]["num_candidates"] == 3
    assert np.load(out / "proposals" / "arrays.npz")["test_candidates"].shape[1] == 4
    monkeypatch.undo()
    Pipeline.from_yaml(_config(tmp_path, server, m=4, name="m4.yaml"), out=str(out)).run()
    _agree(out)


# ---------------------------------------------------------------------------------------------- failures


@pytest.fixture
def tmpfs(tmp_path):
    """A 16 MB tmpfs at ``tmp_path/disk`` (unmounted afterwards), or a skip where this machine does not allow
    mounting one (the patched-writer variants of the same tests run everywhere)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); the patched variant covers this")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(folder, leave: int) -> str:
    """Fill ``folder``'s file system but ``leave`` bytes: the filler's path."""
    filler = os.path.join(folder, "filler")
    stat = os.statvfs(folder)
    with open(filler, "wb") as f:
        f.truncate(0)
        f.write(b"\0" * max(stat.f_bavail * stat.f_frsize - leave, 0))
    return filler


def _finished_run(tmp_path, server, out=None):
    config, out = _config(tmp_path, server), out or tmp_path / "run"
    assert main(["run", config, "--out", str(out)]) == 0
    return config, out, _task_metrics(out), _done_fingerprints(out)


def _intact(config, out, metrics, done, server):
    """Every finished stage and cached answer survived: a rerun sends nothing and reuses the stages that
    were finished, and ends with the original metrics."""
    sent = server.total
    assert main(["run", config, "--out", str(out)]) == 0
    assert server.total == sent
    assert _task_metrics(out) == metrics and _done_fingerprints(out) == done


def test_disk_full_while_saving_stages(tmp_path, server, capsys, tmpfs):
    """A real full disk: 400 kB left, where a ranker stage needs 1 MB (a stage's old version stays until the
    new one is complete)."""
    config, out, metrics, done = _finished_run(tmp_path, server, tmpfs / "run")
    filler = _fill(tmpfs, 400 << 10)
    capsys.readouterr()
    assert main(["run", config, "--out", str(out), "--fresh"]) == 2
    (line,) = _error_lines(capsys)
    assert str(out) in line and "No space left on device" in line and "free some space" in line
    assert _done_fingerprints(out) == done
    os.remove(filler)
    _intact(config, out, metrics, done, server)


def test_disk_full_while_saving_a_ranker_stage_patched(tmp_path, server, capsys, monkeypatch):
    import lamp.runs as runs

    config, out, metrics, done = _finished_run(tmp_path, server)
    real = runs._write

    def full(path, write):
        if "ranker_no_llm" in path:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(runs, "_write", full)
    capsys.readouterr()
    assert main(["run", config, "--out", str(out), "--fresh"]) == 2
    (line,) = _error_lines(capsys)
    assert str(out / "ranker_no_llm") in line and "No space left on device" in line and "free some space" in line
    assert _done_fingerprints(out) == done  # the failed save left the stage it was replacing in place
    monkeypatch.undo()
    _intact(config, out, metrics, done, server)


def _settled(server, quiet=0.5):
    """The server's count of requests once no new one has arrived for `quiet` seconds."""
    seen = server.total
    while True:
        time.sleep(quiet)
        if server.total == seen:
            return seen
        seen = server.total


def _abduction_after_disk_full(config, out, server, capsys, kept_before):
    from lamp.llm.cache import AnswerCache

    (line,) = _error_lines(capsys)
    assert "llm_cache.sqlite" in line and ("disk is full" in line or "No space left" in line), line
    kept = len(AnswerCache(out / "llm_cache.sqlite"))
    assert kept >= kept_before > 0  # the answers stored before the disk filled are there
    assert not (out / "abduction" / "DONE").exists() and (out / "proposals" / "DONE").exists()
    sent = _settled(server)  # the stopped batch's last requests may still be reaching the server
    assert main(["run", config, "--out", str(out)]) == 0
    assert server.total - sent == len(AnswerCache(out / "llm_cache.sqlite")) - kept  # only the missing ones
    _agree(out)


def test_disk_full_during_abduction(tmp_path, server, capsys, tmpfs):
    """A real full disk while answers arrive: the run stops at the cache write that does not fit."""
    from lamp.llm.cache import AnswerCache

    config, out = _config(tmp_path, server), tmpfs / "run"
    assert main(["run", config, "--out", str(out), "--set", "lamp.abduction.backend=none"]) == 0  # the stages before
    AnswerCache(out / "llm_cache.sqlite").put_many([("seed", "test", {}, "{}", "x", None)])
    filler = _fill(tmpfs, 160 << 10)
    capsys.readouterr()
    assert main(["run", config, "--out", str(out)]) == 2
    os.remove(filler)
    _abduction_after_disk_full(config, out, server, capsys, 1)


def test_disk_full_during_abduction_patched(tmp_path, server, capsys, monkeypatch):
    from lamp.llm.cache import AnswerCache

    config, out = _config(tmp_path, server), tmp_path / "run"
    real, calls = AnswerCache._put_many, []

    def full(self, rows):
        calls.append(1)
        if len(calls) > 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, rows)

    monkeypatch.setattr(AnswerCache, "_put_many", full)
    assert main(["run", config, "--out", str(out)]) == 2
    monkeypatch.undo()
    _abduction_after_disk_full(config, out, server, capsys, 1)


def test_an_answer_that_cannot_be_stored_stops_the_batch(tmp_path, monkeypatch):
    """The cache fails on the third answer (the disk filled up): the transport starts no request after it and
    the client raises the storage error itself (never an exception ignored inside the C loop while the batch
    goes on paying for answers it cannot keep); the two answers stored before are kept."""
    import warnings

    from lamp.errors import StorageError
    from lamp.llm import AnswerCache, ChatClient
    from lamp.llm.testserver import TestServer

    real, calls = AnswerCache._put_many, []

    def full(self, rows):
        calls.append(len(rows))
        if len(calls) > 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, rows)

    cache = AnswerCache(str(tmp_path / "cache.sqlite"))
    monkeypatch.setattr(AnswerCache, "_put_many", full)
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(200)]
    with TestServer(faults={"latency": 0.02}) as srv, warnings.catch_warnings():
        warnings.simplefilter("error")  # an exception ignored in a callback would be a warning here
        client = ChatClient(srv.base_url, "test", cache=cache, concurrency=4, progress=False)
        with pytest.raises(StorageError, match="disk is full"):
            client.chat(prompts)
        sent = srv.total
    assert sent <= 3 + 4  # the third answer, and at most the others already in flight
    monkeypatch.undo()
    assert len(cache) == 2


def test_read_only_run_folder(tmp_path, server, capsys):
    """``run`` and ``plan`` in a finished run folder mounted read-only (a bind mount: as root, chmod would not
    stop writes)."""
    config, out, metrics, done = _finished_run(tmp_path, server)
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", str(out), str(ro)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root with CAP_SYS_ADMIN); the patched variant covers this")
    try:
        assert subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True).returncode == 0
        capsys.readouterr()
        for command in ("run", "plan"):
            assert main([command, config, "--out", str(ro)]) == 2
            (line,) = _error_lines(capsys)
            assert str(ro) in line and "Read-only file system" in line and "writable folder" in line
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True)
    _intact(config, out, metrics, done, server)


def test_read_only_run_folder_patched(tmp_path, server, capsys, monkeypatch):
    import lamp.runs as runs

    config, out, metrics, done = _finished_run(tmp_path, server)
    _forget_log(out)

    class ReadOnly:
        def __init__(self, filename, *args, **kw):
            raise OSError(errno.EROFS, "Read-only file system", filename)

    monkeypatch.setattr(runs, "_LogFile", ReadOnly)
    capsys.readouterr()
    for command in ("run", "plan"):
        assert main([command, config, "--out", str(out)]) == 2
        (line,) = _error_lines(capsys)
        assert str(out / "run.log") in line and "Read-only file system" in line and "writable folder" in line
    monkeypatch.undo()
    _intact(config, out, metrics, done, server)


def _forget_log(out) -> None:
    """Close the folder's run.log handler, which a logger keeps for the life of the process (a new
    RunDirectory on the folder then opens run.log again, as a new process would)."""
    import logging

    logger = logging.getLogger(f"lamp.run.{os.path.basename(str(out))}")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_out_under_a_regular_file(tmp_path, server, capsys):
    config = _config(tmp_path, server)
    (tmp_path / "file").write_text("not a folder")
    for command in ("run", "plan"):
        assert main([command, config, "--out", str(tmp_path / "file" / "run")]) == 2
        (line,) = _error_lines(capsys)
        assert str(tmp_path / "file") in line and "Not a directory" in line


@pytest.mark.parametrize("how", ["random", "directory", "truncated"])
def test_unreadable_answer_cache(tmp_path, server, capsys, how):
    config, out, metrics, done = _finished_run(tmp_path, server)
    cache = out / "llm_cache.sqlite"
    from lamp.llm.cache import AnswerCache

    with sqlite3.connect(cache) as db:  # every answer into the main file, as a copied cache would be
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    good = cache.read_bytes()
    assert len(AnswerCache(cache)) > 0
    bad = tmp_path / "bad.sqlite"
    if how == "random":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    elif how == "directory":
        bad.mkdir()
    else:
        bad.write_bytes(good[:len(good) // 3])
    assert main(["run", config, "--out", str(out), "--fresh", "--set", f"lamp.abduction.cache={bad}"]) == 2
    (line,) = _error_lines(capsys)
    assert str(bad) in line and "answer cache" in line
    assert cache.read_bytes() == good
    _intact(config, out, metrics, done, server)


def test_memory_exhausted_reading_a_data_file(tmp_path):
    """A 2 GB sparse data file read under a 1.5 GB address-space limit: a data error naming the file."""
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"{split}.txt").write_text("0\t0\t1\t0\n")
    (data / "entity2id.txt").write_text("a\t0\nb\t1\n")
    (data / "relation2id.txt").write_text("r\t0\n")
    with open(data / "train.txt", "r+b") as f:
        f.truncate(2 << 30)
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.format(m=3, url="http://127.0.0.1:9").replace("lamp://icews14", str(data)))
    code = ("import resource, sys\n"
            "from lamp.cli import main\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code, "run", str(config), "--out", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("lamp: error: ") and "train.txt" in lines[0] and "memory" in lines[0]


# ---------------------------------------------------------------------------------------------- strictness


def test_duplicate_yaml_keys_are_a_config_error_naming_both_lines(tmp_path, server, capsys):
    config = tmp_path / "dup.yaml"
    text = CONFIG.format(m=3, url=server.base_url).replace("    query_limit: 30\n",
                                                           "    query_limit: 10\n    query_limit: 100000\n", 1)
    config.write_text(text)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "query_limit: 10" in line) + 1
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    (line,) = _error_lines(capsys)
    assert "'query_limit' appears twice" in line and f"line {first} and line {first + 1}" in line
    merged = tmp_path / "merge.yaml"  # a merge key may still be overridden by the mapping's own keys
    merged.write_text(text.replace("query_limit: 10\n    query_limit: 100000\n", "query_limit: 30\n").replace(
        "  lamp:\n", "  lamp:\n    <<: {seed: 3}\n    seed: 4\n", 1))
    assert main(["config", str(merged)]) == 0
    assert "seed: 4" in capsys.readouterr().out

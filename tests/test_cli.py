"""The command line: data set listing and summary, clear errors with exit code 2."""
import os

import lamp
from lamp.cli import main


def test_datasets_and_info(capsys):
    assert main(["datasets"]) == 0
    assert "icews14" in capsys.readouterr().out
    assert main(["info", "icews14"]) == 0
    out = capsys.readouterr().out
    assert "7,128 entities" in out and "74,845" in out


def test_errors_are_messages_not_tracebacks(capsys, tmp_path):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "no such config file" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {tsk: 1}}\n")
    assert main(["run", str(tmp_path / "bad.yaml")]) == 2
    assert "did you mean 'task'" in capsys.readouterr().err
    (tmp_path / "typed.yaml").write_text("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\n"
                                         "E: {base_config: {dataset_id: d}, lamp: {task: next_type}}\n")
    assert main(["run", str(tmp_path / "typed.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "needs typed sequences" in capsys.readouterr().err
    two = os.path.join(os.path.dirname(lamp.__file__), "configs", "easytpp_amazon_hawkes.yaml")
    assert main(["run", two, "--out", str(tmp_path / "run2")]) == 2
    assert "several lamp experiments" in capsys.readouterr().err


# ---------------------------------------------------------------- every bad input a clear error before work starts

def _no_data_loading(monkeypatch):
    """Make any data loading (or pipeline construction) fail the test loudly."""
    from lamp import config as lamp_config

    def boom(*args, **kwargs):
        raise AssertionError("data was loaded before the config was checked")

    monkeypatch.setattr(lamp_config, "load_dataset", boom)
    monkeypatch.setattr(lamp_config.Config, "load_data", boom)


def _error_lines(capsys):
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    return captured.err.splitlines()


def test_bad_config_and_set_fail_before_any_data_is_read(capsys, tmp_path, monkeypatch):
    _no_data_loading(monkeypatch)
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{d: {{data_format: tkg, data_dir: {tmp_path / 'no_such_folder'}}}}}\n"
                      "E: {lamp: {num_candidates: ten, ranker: {epochs: -1}}}\n")
    for command in ("run", "config"):
        assert main([command, str(config), "--set", "lamp.abduction.backend=opnai", "--set", "lamp.seeed=1"]) == 2
        lines = _error_lines(capsys)
        assert len(lines) == 4, lines
        assert all(line.startswith("lamp: error: ") for line in lines)
        text = "\n".join(lines)
        for words in ("lamp.num_candidates: 'ten' is not an integer", "lamp.ranker.epochs: -1 is too small",
                      "lamp.abduction.backend: 'opnai' is not one of the choices", "unknown key 'lamp.seeed'"):
            assert words in text
        assert "no_such_folder" not in text  # the key errors come first; the data folder was never looked at
    # the same config with good values gets to the data (and fails there, with a clear error)
    monkeypatch.undo()
    config.write_text(config.read_text().replace("num_candidates: ten, ranker: {epochs: -1}", "task: object"))
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "no_such_folder" in capsys.readouterr().err


def test_bad_config_subprocess_has_no_traceback(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "c.yaml"
    config.write_text("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {ranker: {epochs: -1}}}\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(lamp.__file__)))
    result = subprocess.run([sys.executable, "-m", "lamp", "run", str(config), "--set",
                             "lamp.num_candidates=0"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "lamp: error: lamp.num_candidates: 0 is too small; lamp.num_candidates must be at least 2 and at most 10000 "
        "(an integer), or null for the task's default (object 20, relation 5, pair 100, next_type 5, next_time 5)",
        "lamp: error: lamp.ranker.epochs: -1 is too small; lamp.ranker.epochs must be an integer >= 1 and <= 10000"]


def test_bad_run_arguments_are_one_line(capsys, tmp_path, monkeypatch):
    _no_data_loading(monkeypatch)
    config = os.path.join(os.path.dirname(lamp.__file__), "configs", "icews14_object.yaml")
    for limit in ("0", "-3", "abc", "2.5"):
        assert main(["run", config, "--limit", limit, "--out", str(tmp_path / "run")]) == 2
        lines = _error_lines(capsys)
        assert lines == [f"lamp: error: --limit {limit!r}: must be a positive integer (the number of test queries)"]
    existing = tmp_path / "a_file.txt"
    existing.write_text("x")
    assert main(["run", config, "--out", str(existing)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "--out" in lines[0] and "is an existing file" in lines[0]
    assert not (tmp_path / "run").exists()


def test_argument_and_config_problems_are_reported_together(capsys, tmp_path, monkeypatch):
    _no_data_loading(monkeypatch)
    config = os.path.join(os.path.dirname(lamp.__file__), "configs", "icews14_object.yaml")
    for command in ("run", "plan"):
        assert main([command, config, "--limit", "0", "--set", "lamp.seed=abc", "--out", str(tmp_path / "r")]) == 2
        lines = _error_lines(capsys)
        assert len(lines) == 2, lines
        assert lines[0].startswith("lamp: error: --limit '0'") and lines[1].startswith("lamp: error: lamp.seed: 'abc'")


def test_limit_takes_ascii_digits_only(capsys, tmp_path, monkeypatch):
    """Python's int() reads Arabic-Indic or full-width digits; lamp's numbers are ASCII decimal everywhere."""
    _no_data_loading(monkeypatch)
    config = os.path.join(os.path.dirname(lamp.__file__), "configs", "icews14_object.yaml")
    for limit in ("\u0663", "\uff13", "1_0", "+5"):
        for command in ("run", "plan"):
            assert main([command, config, "--limit", limit, "--out", str(tmp_path / "r")]) == 2
            assert _error_lines(capsys) == [
                f"lamp: error: --limit {limit!r}: must be a positive integer (the number of test queries)"]


def test_crafted_pickle_through_lamp_run_runs_nothing(tmp_path):
    """A .pkl data file whose unpickling would run a command: `lamp run` refuses it in one line, exit 2,
    and the command never runs (also under data_format: json, whose .pkl paths are read as pickles)."""
    import pickle
    import subprocess
    import sys

    marker = tmp_path / "PAYLOAD_RAN"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.pkl").write_bytes(pickle.dumps({"dim_process": 2, split: [Payload()]}))
    for data_format in ("pkl", "json"):
        config = tmp_path / f"{data_format}.yaml"
        config.write_text(
            f"data:\n  d:\n    data_format: {data_format}\n"
            + "".join(f"    {k}_dir: {tmp_path / f'{s}.pkl'}\n" for k, s in (("train", "train"), ("valid", "dev"),
                                                                            ("test", "test")))
            + "E:\n  base_config: {dataset_id: d}\n  lamp: {task: next_type, abduction: {backend: none}}\n")
        result = subprocess.run([sys.executable, "-m", "lamp", "run", str(config), "--out", str(tmp_path / "run")],
                                capture_output=True, text=True, timeout=300, cwd=tmp_path,
                                env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(lamp.__file__))))
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("lamp: error:")]
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "train.pkl" in lines[0] and "refusing to load this pickle" in lines[0] and "system" in lines[0]
        assert not marker.exists()


def test_api_key_in_api_key_env_is_not_echoed(capsys, tmp_path, monkeypatch):
    _no_data_loading(monkeypatch)
    config = tmp_path / "c.yaml"
    config.write_text("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\n"
                      "E: {lamp: {abduction: {backend: openai, base_url: 'http://127.0.0.1:9/v1', model: m, "
                      "api_key_env: sk-proj-TOPSECRET42}}}\n")
    assert main(["run", str(config)]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "lamp.abduction.api_key_env" in lines[0]
    assert "not a valid environment variable name" in lines[0] and "TOPSECRET42" not in lines[0]
    good = config.read_text().replace("sk-proj-TOPSECRET42", "OPENAI_API_KEY")
    config.write_text(good)
    assert main(["config", str(config), "--set", "lamp.abduction.api_key_env=sk-TOPSECRET42"]) == 2
    assert "TOPSECRET42" not in capsys.readouterr().err


def test_config_prints_validated_settings(capsys, tmp_path):
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text("data: {d: {data_format: tkg, data_dir: lamp://icews14}}\nE: {lamp: {ranker: {clip: 2}}}\n")
    assert main(["config", str(config), "--set", "lamp.num_candidates=12"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["lamp"]["num_candidates"] == 12 and resolved["lamp"]["ranker"]["clip"] == 2.0

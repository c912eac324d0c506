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

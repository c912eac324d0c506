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
    amazon = os.path.join(os.path.dirname(lamp.__file__), "configs", "amazon_next_type.yaml")
    assert main(["run", amazon, "--out", str(tmp_path / "run")]) == 2
    assert "next_type" in capsys.readouterr().err

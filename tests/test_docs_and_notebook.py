"""The documentation builds with warnings as errors, and the quick-start notebook runs."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "mkdocs.yml")), reason="needs the source tree")
def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -r requirements-test.txt)")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "notebooks", "quickstart.ipynb")),
                    reason="needs the source tree")
@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    # the kernel imports the same lamp as this test (the source tree when it is not installed)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    work = tmp_path / "notebooks"
    shutil.copytree(os.path.join(ROOT, "notebooks"), work)
    nb = nbformat.read(work / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(work)}})
    client.execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "task: object" in text and "lamp" in text
    # replaying the recorded answers reproduces the live main-job run's metrics exactly
    import json

    got = json.loads((work / "runs" / "quickstart" / "metrics.json").read_text())
    recorded = json.loads((work / "replay" / "icews14_main_metrics.json").read_text())
    assert set(got["object"]) == set(recorded["object"])
    for method, values in recorded["object"].items():  # every field of every method
        _assert_same(got["object"][method], values, method)


ADDED_SINCE_RECORDING = {"all_queries"}  # fields a run now reports that the recorded main job predates


def _assert_same(got, expected, where):
    if isinstance(expected, dict):
        assert set(expected) <= set(got) and set(got) - set(expected) <= ADDED_SINCE_RECORDING, where
        for key, value in expected.items():
            _assert_same(got[key], value, f"{where}.{key}")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12, nan_ok=True), where
    else:
        assert got == expected, where


def test_readme_table_is_the_recorded_run():
    """The README's table is the recorded main-job study's, as lamp.study prints it, and the study's
    SmolLM2 run replays the same answer cache the notebook does."""
    import json

    from lamp.study import study_rows, study_table

    with open(os.path.join(ROOT, "notebooks", "replay", "icews14_main_study.json"), encoding="utf-8") as f:
        recorded = json.load(f)
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    table = study_table(recorded)
    assert "oracle_ceiling" in table and "smollm2" in table and "(published)" in table
    for line in table.splitlines():
        assert line.rstrip() in readme, line
    assert recorded["rows"] == study_rows(recorded["runs"])  # the rows are the runs' metrics
    # the study's LLM run and the notebook's pipeline asked the same prompts: same test queries and base
    with open(os.path.join(ROOT, "notebooks", "replay", "icews14_main_metrics.json"), encoding="utf-8") as f:
        notebook = json.load(f)
    assert recorded["runs"]["smollm2"]["metrics"]["object"]["base"] == notebook["object"]["base"]

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
    for method in ("base", "lamp", "no_llm"):
        assert got["object"][method]["mr"] == pytest.approx(recorded["object"][method]["mr"]), method

"""The package's shape: import contracts (import-linter), one exception root, stages without private access."""
import ast
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = os.path.join(ROOT, "lamp", "pipeline")


def test_import_contracts_hold():
    """No import cycle in lamp; stages import only the stages before them; models and data import no
    pipeline module (the contracts are in pyproject.toml)."""
    exe = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable), "lint-imports")
    if not os.path.exists(exe):
        pytest.skip("import-linter is not installed (pip install import-linter)")
    result = subprocess.run([exe, os.path.join(ROOT, "pyproject.toml"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_contracts_catch_a_cycle(tmp_path):
    """The contracts are not vacuous: a copy of lamp with tpp importing the EasyTPP integration breaks them."""
    exe = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable), "lint-imports")
    if not os.path.exists(exe):
        pytest.skip("import-linter is not installed")
    def skip(folder, names):  # the C module and the bundled data files are not needed to read imports
        return [n for n in names if n.endswith(".so") or n == "__pycache__" or
                (n == "data" and os.path.basename(folder) == "datasets")]

    shutil.copytree(os.path.join(ROOT, "lamp"), tmp_path / "lamp", ignore=skip)
    with open(tmp_path / "lamp" / "tpp" / "kg.py", "a", encoding="utf-8") as f:
        f.write("\nfrom lamp import easytpp  # noqa\n")
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([exe, str(tmp_path / "pyproject.toml"), "--no-cache"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    assert "no import cycles in lamp" in result.stdout and "BROKEN" in result.stdout


def _stage_modules():
    return sorted(os.path.join(PIPELINE, f) for f in os.listdir(PIPELINE) if f.endswith(".py"))


def test_stage_functions_touch_no_private_member_of_another_object():
    """In lamp/pipeline/, no attribute starting with one underscore is read on anything but ``self``."""
    offences = []
    for path in _stage_modules():
        tree = ast.parse(open(path, encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                    offences.append(f"{os.path.basename(path)}:{node.lineno}: .{node.attr}")
    assert not offences, offences


def test_one_copy_of_each_stage():
    """Knowledge graphs and typed sequences share the stage functions: each is defined once in lamp/."""
    names = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "lamp")):
        for f in files:
            if f.endswith(".py"):
                tree = ast.parse(open(os.path.join(folder, f), encoding="utf-8").read())
                for node in tree.body:
                    if isinstance(node, ast.FunctionDef):
                        names.setdefault(node.name, []).append(os.path.join(folder, f))
    for stage in ("abduce", "rerank", "evaluate", "select_queries", "propose", "fit_proposer"):
        assert len(names.get(stage, [])) == 1, (stage, names.get(stage))


def test_every_lamp_exception_has_one_root():
    import lamp.errors as errors
    from lamp.config import ConfigError
    from lamp.data import DataError
    from lamp.embed import EmbedderError
    from lamp.llm import LLMError, ReplayMissError

    for cls in (ConfigError, DataError, LLMError, ReplayMissError, EmbedderError):
        assert issubclass(cls, errors.LampError), cls
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(LLMError, RuntimeError) and issubclass(EmbedderError, RuntimeError)
    # every exception class defined anywhere in lamp derives from LampError
    for folder, _, files in os.walk(os.path.join(ROOT, "lamp")):
        for f in files:
            if not f.endswith(".py"):
                continue
            tree = ast.parse(open(os.path.join(folder, f), encoding="utf-8").read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                    assert os.path.join(folder, f).endswith(os.path.join("lamp", "errors.py")), (f, node.name)

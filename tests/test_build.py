"""The build stops with the package to install when a system library is missing; the module imports."""
import os
import stat
import subprocess
import sys

import pytest

import lamp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build_with_pkg_config(tmp_path, script):
    fake = tmp_path / "fake-pkg-config"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PKG_CONFIG=str(fake))
    return subprocess.run([sys.executable, "setup.py", "build_ext", "--build-temp", str(tmp_path / "build")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "setup.py")), reason="needs the source tree")
def test_missing_openblas_names_the_package(tmp_path):
    result = _build_with_pkg_config(tmp_path, 'case "$2" in openblas) exit 1;; esac\nexec pkg-config "$@"\n')
    assert result.returncode != 0
    assert "libopenblas-dev" in result.stderr + result.stdout
    assert "apt-get install" in result.stderr + result.stdout


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "setup.py")), reason="needs the source tree")
def test_missing_libcurl_names_the_package(tmp_path):
    result = _build_with_pkg_config(tmp_path, 'case "$2" in libcurl) exit 1;; esac\nexec pkg-config "$@"\n')
    assert result.returncode != 0
    assert "libcurl4-openssl-dev" in result.stderr + result.stdout


def test_import_from_another_directory(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('lamp') is None)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if probe.stdout.strip() == "True":
        pytest.skip("lamp is not installed in this interpreter (only importable from the source tree)")
    out = subprocess.run([sys.executable, "-c", "import lamp, lamp._core; print(lamp.__version__)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == lamp.__version__

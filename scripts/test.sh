#!/usr/bin/env bash
# Runs every test of lamp: the C kernel tests (normal build and under
# AddressSanitizer + UBSan), then pytest.  Does its own set-up first.
# Extra arguments go to pytest, e.g. scripts/test.sh -k hawkes
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh" test
venv="${LAMP_VENV:-$root/.venv}"

echo "== C kernel tests"
make -s -C "$root/csrc/tests" test
echo "== C kernel tests under AddressSanitizer + UBSan"
make -s -C "$root/csrc/tests" asan

echo "== packaging: a wheel installs into a fresh virtual environment and imports from another directory"
"$root/scripts/check_wheel.sh"

echo "== pytest"
cd "$root"
"$venv/bin/python" -m pytest -q "$@"

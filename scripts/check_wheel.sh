#!/usr/bin/env bash
# Builds a wheel of lamp and installs it into a throwaway virtual environment,
# then imports it from an unrelated directory: what `pip install .` gives a user.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LAMP_VENV:-$root/.venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$root" 2>&1 | grep -v "^WARNING: Location" || true
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$work"/dist/lamp_tpp-*.whl 2>&1 | grep -v "^WARNING: Location" || true
cd "$work"
"$work/venv/bin/python" -c "
import lamp, lamp._core, lamp.datasets
store = lamp.datasets.load_icews14()
assert len(store.test) == 7371, store
print(f'wheel OK: lamp {lamp.__version__} from {lamp.__file__}; bundled ICEWS14 test split has {len(store.test):,} events')
"

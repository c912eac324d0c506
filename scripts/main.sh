#!/usr/bin/env bash
# The main job: the LAMP pipeline on the bundled ICEWS14 data set.
# Does its own set-up first.  Extra arguments go to `lamp run`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh" main
venv="${LAMP_VENV:-$root/.venv}"
cd "$root"
exec "$venv/bin/python" -m lamp run "$root/lamp/configs/icews14_main.yaml" "$@"

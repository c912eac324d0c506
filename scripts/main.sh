#!/usr/bin/env bash
# The main job: the LAMP pipeline on the bundled ICEWS14 data set.
# Does its own set-up first.  Extra arguments go to `lamp run`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$SECONDS
"$root/scripts/setup_env.sh" main
setup=$((SECONDS - start))
echo "[main.sh] set-up: ${setup} s"
venv="${LAMP_VENV:-$root/.venv}"
cd "$root"
"$venv/bin/python" -m lamp run "$root/lamp/configs/icews14_main.yaml" "$@"
# the set-up time beside the study's stage times (scripts/record_main_replay.py records both)
if [ $# -eq 0 ] && [ -d runs/LAMP_icews14_main ]; then
  printf '{"setup": %d}\n' "$setup" > runs/LAMP_icews14_main/setup_seconds.json
fi

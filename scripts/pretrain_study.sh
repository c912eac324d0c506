#!/usr/bin/env bash
# Does pre-training the ranker on no-LLM evidence help when few queries have LLM evidence?
# (docs/ranker.md#pretraining).  The oracle abducer stands in for a good LLM; its ranker is trained on
# 40 or 200 queries, from scratch or from the no_llm ranker of a run with 2,000 training queries
# (ranker.init_from).  About 5 minutes on 2 cores; prints the table of paired differences.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${LAMP_VENV:-$root/.venv}/bin/python"
out="${1:-$root/runs/pretrain}"
mkdir -p "$out"
# the main job's settings without its study section: one pipeline per run
"$py" -c "import sys; s = open(sys.argv[1]).read(); open(sys.argv[2], 'w').write(s[:s.index('  study:')])" \
  "$root/lamp/configs/icews14_main.yaml" "$out/single.yaml"
common=(--set lamp.abduction.backend=oracle --set lamp.query_limit=1800)
"$py" -m lamp run "$out/single.yaml" --out "$out/source" "${common[@]}" --set lamp.train_query_limit=2000 \
  --set lamp.valid_query_limit=500 --set lamp.ranker.batch_size=8
for tq in 40 200; do
  for init in scratch pretrained; do
    extra=()
    [ "$init" = pretrained ] && extra=(--set "lamp.ranker.init_from=$out/source/ranker_no_llm")
    "$py" -m lamp run "$out/single.yaml" --out "$out/tq${tq}_$init" "${common[@]}" --set lamp.train_query_limit=$tq \
      --set lamp.valid_query_limit=100 --set lamp.ranker.selection=ranker --set "lamp.evaluation.ablations=[]" \
      --set lamp.ranker.batch_size=8 "${extra[@]}"
  done
done
# the table of docs/ranker.md, also kept in "$out/summary.md" (docs/recorded/pretrain_study.md is a copy)
"$py" - "$out" <<'PY' | tee "$out/summary.md"
import sys, numpy as np
from lamp.report import paired_bootstrap
out = sys.argv[1]
print("| queries with oracle evidence | base MR | from scratch | pre-trained on 2,000 no-LLM queries "
      "| pre-trained - scratch (95% CI) | n |")
print("|---|---|---|---|---|---|")
for tq in (40, 200):
    a = np.load(f"{out}/tq{tq}_scratch/test_ranks.npz")
    b = np.load(f"{out}/tq{tq}_pretrained/test_ranks.npz")
    d = paired_bootstrap(a["oracle_ceiling"], b["oracle_ceiling"], num_samples=2000, seed=0)
    cov = a["base"] > 0
    print(f"| {tq} | {a['base'][cov].mean():.3f} | {a['oracle_ceiling'][cov].mean():.3f} | "
          f"{b['oracle_ceiling'][cov].mean():.3f} | {d['delta_mr']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] | "
          f"{d['n']} |")
PY

#!/usr/bin/env bash
# The ranker measurements of docs/ranker.md ("Does reranking turn evidence into better ranks?").
# Each run writes runs/study/<name>/metrics.json; the tables in docs/ranker.md are those files' numbers.
# Usage: scripts/ranker_study.sh [name ...]   (default: every run; tens of minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lamp="${LAMP:-$root/.venv/bin/lamp}"
out="${LAMP_STUDY_DIR:-$root/runs/study}"
icews="$root/lamp/configs/icews14_object.yaml"
gdelt="$root/lamp/configs/gdelt_object.yaml"
actors="$root/lamp/configs/icews14_actors_next_type.yaml"
full=(--set lamp.abduction.backend=none --set lamp.num_candidates=20 --set lamp.train_query_limit=4000
      --set lamp.valid_query_limit=1000 --set lamp.query_limit=3000)

run() {  # name, config, extra arguments
  local name="$1" config="$2"; shift 2
  echo "== $name"
  "$lamp" run "$config" --out "$out/$name" "$@"
}

want() { [ ${#names[@]} -eq 0 ] || [[ " ${names[*]} " == *" $1 "* ]]; }
names=("$@")

# the oracle abducer (a ceiling): ICEWS14 object, M = 10, 1000 training and 300 test queries
want oracle_icews14 && run oracle_icews14 "$icews" --set lamp.abduction.backend=oracle --set lamp.num_candidates=10 \
  --set lamp.train_query_limit=1000 --set lamp.query_limit=300 --set lamp.evaluation.ablations=[no_llm]
# no LLM, full size: ICEWS14 with the kg_hawkes and the recurrency proposers, and the GDELT sample
want nollm_icews14_kg && run nollm_icews14_kg "$icews" "${full[@]}"
want nollm_icews14_recurrency && run nollm_icews14_recurrency "$icews" "${full[@]}" \
  --set lamp.proposer.model=recurrency
want nollm_gdelt_kg && run nollm_gdelt_kg "$gdelt" "${full[@]}"
# typed sequences (ICEWS14 actors, next CAMEO root code): no LLM and the oracle
want actors_no_llm && run actors_no_llm "$actors" --experiment LAMP_icews14_actors_no_llm
want actors_oracle && run actors_oracle "$actors" --experiment LAMP_icews14_actors_oracle

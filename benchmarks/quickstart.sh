#!/usr/bin/env bash
# Wall time of the README's main job from a cold teacher cache (a fresh machine's first run).
# Writes benchmarks/results/quickstart.json.   Usage: bash benchmarks/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
cache=$(mktemp -d)
out=$(mktemp -d)
start=$(date +%s)
COFI_SWEEP_CACHE=$cache .venv/bin/python -m cofi_sweep.run --space search_spaces/quickstart.yaml \
    storage_path="$out" | tee "$out/log.txt"
seconds=$(( $(date +%s) - start ))
mkdir -p benchmarks/results
.venv/bin/python - "$out" "$seconds" <<'PY'
import json, sys, pandas as pd
out, seconds = sys.argv[1], int(sys.argv[2])
table = pd.read_parquet(f"{out}/quickstart/results.parquet")
cols = ["cell_id", "status", "score", "realized_sparsity", "speedup", "teacher_score"]
rows = table[[c for c in cols if c in table]].to_dict("records")
result = {"wall_seconds": seconds, "trials": rows,
          "command": "python -m cofi_sweep.run --space search_spaces/quickstart.yaml"}
open("benchmarks/results/quickstart.json", "w").write(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
PY

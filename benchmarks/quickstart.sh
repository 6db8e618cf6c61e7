#!/usr/bin/env bash
# Wall time of the README's main job as a new user meets it: a fresh clone of HEAD, `make run`
# (venv + install + the quickstart sweep) with a cold teacher cache.
# Writes benchmarks/results/quickstart.json.   Usage: bash benchmarks/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
clone=$(mktemp -d)
git clone -q . "$clone"
start=$(date +%s)
(cd "$clone" && COFI_SWEEP_CACHE="$clone/.cache" make run) | tee "$clone/log.txt"
seconds=$(( $(date +%s) - start ))
mkdir -p benchmarks/results
.venv/bin/python - "$clone" "$seconds" "$(git rev-parse --short HEAD)" <<'PY'
import json, math, sys
import pandas as pd
clone, seconds, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
table = pd.read_parquet(f"{clone}/runs/sweeps/quickstart/results.parquet")
cols = ["cell_id", "status", "score", "selection_score", "realized_sparsity", "on_target",
        "target_speedup", "latency_model_speedup",
        "speedup", "teacher_score", "step"]
rows = table[[c for c in cols if c in table]].sort_values(["cell_id", "status"])
rows = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in rows.to_dict("records")]
result = {"wall_seconds": seconds, "commit": commit, "trials": rows,
          "includes": "make install in a fresh clone + cold teacher cache + the sweep + "
                      "latency pass + report",
          "command": "bash benchmarks/quickstart.sh"}
open("benchmarks/results/quickstart.json", "w").write(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
PY

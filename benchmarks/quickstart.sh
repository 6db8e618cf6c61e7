#!/usr/bin/env bash
# Wall time of the README's main job as a new user meets it: a fresh clone of HEAD, `make run`
# (venv + install + the quickstart sweep) with a cold teacher cache; and the sweep's disk use,
# peak and final (its experiment folder plus the trials' staging folder, sampled every second).
# Writes benchmarks/results/quickstart.json.   Usage: bash benchmarks/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0
clone=$(mktemp -d)
git clone -q . "$clone"
start=$(date +%s)
staging="${TMPDIR:-/tmp}/cofi_sweep_trials"
rm -rf "$staging"
# a folder not there yet counts 0 (du's error must not end the script under pipefail)
disk() { { du -sb "$clone/runs" "$staging" 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'; }
# at each new peak, also what held it (the experiment's folders, two levels down)
breakdown() { { du -b --max-depth=2 "$clone/runs" "$staging" 2>/dev/null || true; } \
    | sort -rn | sed "s|$clone/||" > "$clone/peak_du"; }
( peak=0; while [ ! -f "$clone/done" ]; do d=$(disk); [ "$d" -gt "$peak" ] && peak=$d \
    && echo "$peak" > "$clone/peak" && breakdown; sleep 1; done ) &
# every line of the job's output with the time it appeared: where the minutes go
(cd "$clone" && COFI_SWEEP_CACHE="$clone/.cache" make run) 2>&1 \
    | while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done \
    | tee "$clone/log.txt"
seconds=$(( $(date +%s) - start ))
touch "$clone/done"; wait
peak_bytes=$(cat "$clone/peak" 2>/dev/null || echo 0); final_bytes=$(disk)
mkdir -p benchmarks/results
.venv/bin/python - "$clone" "$seconds" "$(git rev-parse --short HEAD)" "$peak_bytes" \
    "$final_bytes" <<'PY'
import json, math, sys
from pathlib import Path
import pandas as pd
clone, seconds, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3]
peak, final = int(sys.argv[4]), int(sys.argv[5])
table = pd.read_parquet(f"{clone}/runs/sweeps/quickstart/results.parquet")
cols = ["cell_id", "status", "score", "selection_score", "realized_sparsity", "on_target",
        "target_speedup", "latency_model_speedup",
        "speedup", "teacher_score", "step"]
rows = table[[c for c in cols if c in table]].sort_values(["cell_id", "status"])
rows = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in rows.to_dict("records")]
result = {"wall_seconds": seconds, "commit": commit, "trials": rows,
          "disk_peak_gb": round(peak / 1e9, 3), "disk_final_gb": round(final / 1e9, 3),
          "disk_measured": "du -sb of runs/ and the trials' staging folder, every second",
          "disk_at_peak_mb": {line.split("\t")[1]: round(int(line.split("\t")[0]) / 1e6)
                              for line in Path(f"{clone}/peak_du").read_text().splitlines()[:12]
                              if "\t" in line} if Path(f"{clone}/peak_du").is_file() else {},
          "log": f"{clone}/log.txt (timestamped)",
          "includes": "make install in a fresh clone + cold teacher cache + the sweep + "
                      "latency pass + report",
          "command": "bash benchmarks/quickstart.sh"}
open("benchmarks/results/quickstart.json", "w").write(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
PY

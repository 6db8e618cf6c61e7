"""Benchmark: the CoFi paper's ablations (Tables 4 and 5) on real SST-2, in pieces of < 1 hour.

The space ``ablation_minilm_cpu`` (the ``sst2_minilm_cpu`` job and budget, the bundled MiniLM
teacher) at target sparsities 0.95 (3 seeds) and 0.6 (2 seeds): full CoFi, no hidden mask, no
layer masks, neither, prediction distillation only, no distillation, the fixed layer mapping;
at 0.95 also full and no-layer with the projection onto the band off. Each piece runs its jobs
one at a time through ``frontier.py`` (exactly as sweep trials of those cells, no Ray) and adds
each row to ``results/frontier_ablations_sst2.json`` as it finishes, so pieces add up across
sessions; a piece re-run replaces its rows.

    python benchmarks/ablations.py --piece 1          # 0.95, seed 0 (9 jobs, ~50 min)
    python benchmarks/ablations.py --piece 2          # 0.95, seed 1
    python benchmarks/ablations.py --piece 3          # 0.95, seed 2
    python benchmarks/ablations.py --piece 4          # 0.6, seed 0 (7 jobs)
    python benchmarks/ablations.py --piece 5          # 0.6, seed 1
    python benchmarks/ablations.py --retime --report  # on a quiet machine, once all are in

``--report`` renders the rows with the sweep report's own code, its "Ablations" section
included, into ``results/frontier_ablations_sst2/report.md``.
"""

from __future__ import annotations

import argparse

from frontier import report, retime, run_jobs

SPACE, LABEL = "ablation_minilm_cpu", "ablations_sst2"
ABLATIONS = ["full", "no_layer", "no_hidden", "no_layer_no_hidden", "prediction_only",
             "no_distillation", "fixed_mapping"]
UNPROJECTED = ["full_unprojected", "no_layer_unprojected"]
PIECES = {
    1: [f"cofi:0.95/{a}@0" for a in ABLATIONS + UNPROJECTED],
    2: [f"cofi:0.95/{a}@1" for a in ABLATIONS + UNPROJECTED],
    3: [f"cofi:0.95/{a}@2" for a in ABLATIONS + UNPROJECTED],
    4: [f"cofi:0.6/{a}@0" for a in ABLATIONS],
    5: [f"cofi:0.6/{a}@1" for a in ABLATIONS],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--piece", type=int, choices=sorted(PIECES), action="append",
                        default=[], help="run this piece's jobs (repeatable)")
    parser.add_argument("--skip", nargs="*", default=[], metavar="RUN",
                        help="runs of the piece already in the results (e.g. after a session "
                        "ended mid-piece)")
    parser.add_argument("--retime", action="store_true", help="re-time every row's model")
    parser.add_argument("--report", action="store_true", help="render the rows collected")
    args = parser.parse_args()
    runs = [run for piece in args.piece for run in PIECES[piece] if run not in args.skip]
    space, path, device = run_jobs(SPACE, runs, LABEL)
    if args.retime:
        retime(space, path)
    if args.report:
        report(space, path, LABEL, device)


if __name__ == "__main__":
    main()

"""Benchmark: the CoFi paper's ablations (Tables 4 and 5) on real SST-2, in pieces of ~1 hour.

The space ``ablation_minilm_cpu`` (the ``sst2_minilm_cpu`` job and budget, the bundled MiniLM
teacher) at target sparsities 0.95 (3 seeds) and 0.6 (2 seeds): full CoFi, no hidden mask, no
layer masks, neither, prediction distillation only, no distillation, the fixed layer mapping;
at 0.95 also full and no-layer with the projection onto the band off, one seed each (the gates
alone stop short of 0.95, at different sparsities, so no number of seeds makes them a matched
comparison: they show where the gates end and what the projection adds). 37 jobs, 12-15 min
each on a 2-core VM, run one at a time through ``frontier.py`` (exactly as sweep trials of
those cells, no Ray); each row is added to ``results/frontier_ablations_sst2.json`` as its job
finishes, and a piece skips the runs whose rows are already there (``--redo`` runs them again),
so pieces add up across sessions in any order. Full CoFi's runs are the ladder benchmark's
independent jobs (``benchmarks/ladder.py``, the same job): rows it has are adopted, not rerun.

    python benchmarks/ablations.py --piece 1          # runs 1-4 of RUNS (0.95, seed 0 first)
    python benchmarks/ablations.py --piece 2 --piece 3
    python benchmarks/ablations.py --run cofi:0.6/no_layer@0   # chosen runs, in this order
    python benchmarks/ablations.py --list             # every run, and which are done
    python benchmarks/ablations.py --retime --report  # on a quiet machine, once all are in
    python benchmarks/ablations.py --retime 0.6       # or one target's rows at a time

``--report`` renders the rows with the sweep report's own code, its "Ablations" section
included, into ``results/frontier_ablations_sst2/report.md``.
"""

from __future__ import annotations

import argparse
import json

from frontier import RESULTS, merge, report, retime, run_jobs

SPACE, LABEL = "ablation_minilm_cpu", "ablations_sst2"
ABLATIONS = ["full", "no_layer", "no_hidden", "no_layer_no_hidden", "prediction_only",
             "no_distillation", "fixed_mapping"]
UNPROJECTED = ["full_unprojected", "no_layer_unprojected"]
# the high target first (where the paper's findings are), seed by seed
RUNS = ([f"cofi:0.95/{a}@{k}" for k in range(3)
         for a in ABLATIONS + (UNPROJECTED if k == 0 else [])]
        + [f"cofi:0.6/{a}@{k}" for k in range(2) for a in ABLATIONS])
PIECE = 4  # jobs per piece: about an hour


def done() -> set[str]:
    """The runs whose rows are in the results (``t0.95-full@0`` <- ``cofi:0.95/full@0``)."""
    path = RESULTS / f"frontier_{LABEL}.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    return {f"cofi:{r['target_sparsity']:g}/{r['ablation']}@{r['config/cofi.seed']}"
            for r in rows}


# full CoFi here is the same job as an independent job of the ladder benchmark (the same space
# settings, checked equal; seeded runs repeat exactly: 0.95 seed 0 gave 0.77867 in both)
SAME_JOB = RESULTS / "frontier_ladder_sst2.json"


def adopt_full_rows() -> list[str]:
    """Adds to the results the ladder benchmark's independent rows that are runs of ours
    (full CoFi at our targets and seeds) not yet here, marked ``adopted_from``; returns them."""
    if not SAME_JOB.is_file():
        return []
    wanted = set(RUNS) - done()
    adopted = []
    for row in json.loads(SAME_JOB.read_text()):
        run = f"cofi:{row['target_sparsity']:g}/full@{row['config/cofi.seed']}"
        if row.get("ablation") == "full" and run in wanted:
            merge(RESULTS / f"frontier_{LABEL}.json", {**row, "adopted_from": SAME_JOB.name})
            adopted.append(run)
    return adopted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    pieces = -(-len(RUNS) // PIECE)
    parser.add_argument("--piece", type=int, choices=range(1, pieces + 1), action="append",
                        default=[], metavar=f"1..{pieces}",
                        help=f"run this piece's {PIECE} jobs (repeatable)")
    parser.add_argument("--run", choices=RUNS, action="append", default=[], metavar="RUN",
                        help="run this one (as --list names it; repeatable, kept in order)")
    parser.add_argument("--redo", action="store_true", help="run again the chosen runs "
                        "that already have rows")
    parser.add_argument("--list", action="store_true", help="every run, and which are done")
    parser.add_argument("--retime", type=float, nargs="*", metavar="TARGET",
                        help="re-time every row's model, or only those at these targets "
                        "(a target's rows are compared with each other only: ~1.5 min a row)")
    parser.add_argument("--report", action="store_true", help="render the rows collected")
    args = parser.parse_args()
    adopted = adopt_full_rows()
    if adopted:
        print(f"adopted from {SAME_JOB.name} (the same jobs): {' '.join(adopted)}")
    finished = done()
    if args.list:
        for i, run in enumerate(RUNS):
            print(f"piece {i // PIECE + 1:>2}  {run:<36} {'done' if run in finished else ''}")
    chosen = args.run + [run for piece in args.piece
                         for run in RUNS[(piece - 1) * PIECE:piece * PIECE]]
    runs = [run for run in dict.fromkeys(chosen) if args.redo or run not in finished]
    space, path, device = run_jobs(SPACE, runs, LABEL)
    if args.retime is not None:
        retime(space, path, set(args.retime) or None)
    if args.report:
        report(space, path, LABEL, device)


if __name__ == "__main__":
    main()

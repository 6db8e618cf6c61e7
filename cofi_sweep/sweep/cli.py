"""The sweep command: ``python -m cofi_sweep.run --space <space.yaml | a shipped space's name>``.

    python -m cofi_sweep.run --space quickstart.yaml
    python -m cofi_sweep.run --space pareto.yaml --dry-run
    python -m cofi_sweep.run --space pareto.yaml --resume
    python -m cofi_sweep.run --space pareto.yaml --retry-errored
    python -m cofi_sweep.run --space pareto.yaml --address auto   # a Ray cluster

The space is read and checked (preflight) before anything starts: a user mistake ends in one
message naming the setting and the fix (exit code 2), with no traceback and without importing
Ray. Then :func:`cofi_sweep.sweep.driver.run_sweep` runs it.
"""

from __future__ import annotations

import argparse
import logging
import sys

from cofi_sweep.core.errors import CofiSweepError, ConfigError
from cofi_sweep.sweep.plan import describe_plan
from cofi_sweep.sweep.preflight import check_space
from cofi_sweep.sweep.space import load_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cofi_sweep.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", required=True, help="sweep YAML, or the name of a shipped "
                        "space (cofi_sweep/spaces/)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted experiment from its storage path")
    parser.add_argument("--address", help="Ray cluster address ('auto' or host:port) of a "
                        "cluster this machine belongs to; see README, Running on a cluster")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--retry-errored", action="store_true",
                        help="resume, and re-run errored trials from their last checkpoint")
    parser.add_argument("--force", action="store_true",
                        help="with --resume: continue although the space changed (docs/sweeps.md)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value settings")
    args = parser.parse_intermixed_args(argv)  # key=value may stand anywhere
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        space = load_space(args.space, args.overrides)
        problems = check_space(space)  # before Ray starts or a teacher trains
        if problems:
            raise ConfigError(problems, args.space)
        if args.dry_run:
            print(describe_plan(space))
            return 0
        from cofi_sweep.sweep.driver import run_sweep  # imports Ray: only for a real run

        run_sweep(space, resume=args.resume, address=args.address, force=args.force,
                  retry_errored=args.retry_errored)
    except CofiSweepError as e:  # the user's to fix: the message says how, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

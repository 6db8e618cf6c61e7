"""``python -m cofi_sweep.prune --config job.yaml``: one job, no Ray (:mod:`cofi_sweep.job.cli`)."""

import sys

from cofi_sweep.job.cli import main

if __name__ == "__main__":
    sys.exit(main())

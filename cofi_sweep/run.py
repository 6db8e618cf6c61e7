"""``python -m cofi_sweep.run --space quickstart.yaml``: a sweep (:mod:`cofi_sweep.sweep.cli`)."""

import sys

from cofi_sweep.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())

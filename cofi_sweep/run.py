"""``python -m cofi_sweep.run --space quickstart.yaml``: run a sweep (:mod:`cofi_sweep.sweep.driver`)."""

import sys

from cofi_sweep.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())

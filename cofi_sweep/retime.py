"""``python -m cofi_sweep.retime <experiment>``: re-time an experiment's compact models under
another deployment setting (:mod:`cofi_sweep.sweep.retime`)."""

import sys

from cofi_sweep.sweep.retime import main

if __name__ == "__main__":
    sys.exit(main())

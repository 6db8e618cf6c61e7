"""``python -m cofi_sweep.teacher``: fine-tune (or load) and cache a teacher
(:mod:`cofi_sweep.job.teacher_cli`)."""

import sys

from cofi_sweep.job.teacher_cli import main

if __name__ == "__main__":
    sys.exit(main())

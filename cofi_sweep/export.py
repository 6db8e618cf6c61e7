"""``python -m cofi_sweep.export <compact model or experiment>``: export to load without this
project, as Hugging Face or ONNX (:mod:`cofi_sweep.deploy.export`)."""

import sys

from cofi_sweep.sweep.exports import main

if __name__ == "__main__":
    sys.exit(main())

"""cofi_sweep: CoFi structured pruning of BERT-family encoders, run as Ray Tune sweeps.

Layers, each importing only those before it (tests/test_layering.py checks it):

    core/     config, data, model, gates, sparsity, distillation, compaction, students, teacher
    latency/  timing, the calibrated latency model, sparsity and speedup targets, ONNX runner
    job/      one CoFi job: the training recipe, its checkpoints, preflight, the CLI
    deploy/   exports that load with transformers (or onnxruntime) alone
    sweep/    Ray Tune: the space, search, schedulers, trainable, driver, retime
    analysis/ (a package of its own) results table, frontiers, report; imports none of these

The commands (``python -m cofi_sweep.run | prune | teacher | retime | export``) are the
modules at this level.
"""

from cofi_sweep import _moved

_moved.install()  # experiments stored before the layering pickled the old module paths

__version__ = "0.1.0"

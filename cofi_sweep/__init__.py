"""cofi_sweep: CoFi structured pruning of BERT-family encoders, run as Ray Tune sweeps.

The CoFi core (config, data, model, gates, sparsity, distill, compact, prune, teacher) imports
torch and transformers only; ``cofi_sweep.run`` and ``cofi_sweep.sweep`` add Ray Tune on top.
"""

__version__ = "0.1.0"

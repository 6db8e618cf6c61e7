"""Ray and Tune settings that must be in the environment before ``ray`` is first imported.

Every module of the sweep layer imports this one first, so the settings hold whichever of them
a program (or a test) imports first. Each is a default: the user's environment wins.
"""

import os

# Quiet, non-interactive Tune output.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")
# Explicit: Ray's default, minus its warning; a Ray imported without it runs unauthenticated
# and then cannot talk to the (token-authenticated) local cluster it starts. Attaching to a
# cluster without a token falls back to no auth unless the user chose (cofi_sweep.run).
AUTH_MODE_CHOSEN = "RAY_AUTH_MODE" in os.environ
os.environ.setdefault("RAY_AUTH_MODE", "token")
# Snapshot the experiment state every second (Ray's "auto" waits >= 10 s): with num_to_keep >= 2
# the checkpoint a snapshot names is then still on disk when a SIGKILLed sweep is resumed.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
# Only the final result carries final_score (so Optuna never learns from partial trials), and
# only ranked pruning evaluations carry ASHA's metric; Tune's strict check would otherwise
# reject the results that lack them.
os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")


def has_auth_token() -> bool:
    """Whether Ray would find an auth token on this machine (where Ray 2.60 looks)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or os.path.isfile(os.path.expanduser("~/.ray/auth_token")))

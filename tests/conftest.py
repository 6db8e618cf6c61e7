"""Test set-up: offline, quiet, and with every cache in a per-session temporary folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set before anything imports transformers, datasets or ray.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("COFI_SWEEP_CACHE", tempfile.mkdtemp(prefix="cofi_sweep_test_cache_"))
import cofi_sweep.sweep.ray_settings  # noqa: E402,F401  (test modules import ray before cofi_sweep)

import pytest  # noqa: E402
import torch  # noqa: E402

GLUE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The real GLUE copy beside the checkout; tests using it skip cleanly when it is absent."""
    if not (GLUE_DIR / "SST-2" / "dev.tsv").is_file():
        pytest.skip(f"GLUE data not found at {GLUE_DIR}")
    return GLUE_DIR


@pytest.fixture(scope="session")
def teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("teachers")

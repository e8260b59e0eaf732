"""Shared fixtures. Fixtures are generated here; real sample photos are read from ../shared/cct-sample."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SAMPLE = REPO.parent / "shared" / "cct-sample"


@pytest.fixture(scope="session")
def cct_sample_dir() -> Path:
    """The 44 real Caltech photos beside the checkout (read only; never copied into the repo)."""
    if not SHARED_SAMPLE.is_dir():
        pytest.skip("../shared/cct-sample is not beside this checkout")
    return SHARED_SAMPLE

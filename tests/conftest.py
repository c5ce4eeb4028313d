"""Shared test fixtures: paths to the real datasets in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSIONSERVE_SHARED_DIR", REPO_ROOT.parent / "shared"))
MEDPIX_ROOT = SHARED / "datasets" / "medpix-2.0"
WOUND_ROOT = SHARED / "datasets" / "wound-1-0"


@pytest.fixture(scope="session")
def medpix_root() -> Path:
    if not MEDPIX_ROOT.is_dir():
        pytest.skip(f"MedPix data not found at {MEDPIX_ROOT}")
    return MEDPIX_ROOT


@pytest.fixture(scope="session")
def wound_root() -> Path:
    if not WOUND_ROOT.is_dir():
        pytest.skip(f"Wound data not found at {WOUND_ROOT}")
    return WOUND_ROOT

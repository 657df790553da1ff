"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The read-only ``shared/`` folder beside the repository (specs, example data, conformance files).
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repo; tests using it are skipped when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data folder {SHARED_DIR} is not available")
    return SHARED_DIR

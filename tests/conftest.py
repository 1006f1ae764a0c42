"""Shared test fixtures: the path to the real data sets beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relpath: str) -> Path:
    """Path to a file under ``../shared/data``; skips the test, saying why, when it is absent."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"real data file {path} is absent (../shared/data is not beside this checkout)")
    return path


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield

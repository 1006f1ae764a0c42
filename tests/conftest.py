"""Shared test fixtures: the path to the real data sets beside the repository, one torch thread,
a local Ray instance."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_file(relpath: str) -> Path:
    """Path to a file under ``../shared/data``; skips the test, saying why, when it is absent."""
    path = SHARED_DATA / relpath
    if not path.exists():
        pytest.skip(f"real data file {path} is absent (../shared/data is not beside this checkout)")
    return path


def load_benchmark(name: str) -> ModuleType:
    """The module ``benchmarks/<name>.py`` (not a package), imported as ``benchmarks_<name>``."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture(scope="module")
def ray_local():
    """A 2-CPU local Ray instance for one test module; its workers import the checkout's code."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'scagents[ray]')")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()

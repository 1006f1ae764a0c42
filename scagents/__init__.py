"""scagents: agents that analyse single-cell perturbation data and recommend what to test next."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from scagents.perturbation import Perturbation

try:
    __version__ = version("scagents")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0.1.0"

__all__ = ["Perturbation", "__version__"]

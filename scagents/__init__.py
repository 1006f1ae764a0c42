"""scagents: agents that analyse single-cell perturbation data and recommend what to test next.

>>> import scagents
>>> res = scagents.run(adata, goal="predict STAT1 knockout")   # doctest: +SKIP
>>> adata.varm["scagents"]["delta"]                               # doctest: +SKIP

In scanpy's style, the steps the agents use are in :mod:`scagents.pp` (read, standardise,
normalise), :mod:`scagents.tl` (integrate, infer the network, perturb it, simulate the twin, train
the policy) and :mod:`scagents.pl` (the report's plots). Everything is imported on first use, so
``import scagents`` — and ``python -m scagents --help`` — stay fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("scagents")
except PackageNotFoundError:  # running from a source checkout
    __version__ = "0.1.0"

__all__ = ["Perturbation", "RunResult", "__version__", "pl", "pp", "run", "tl"]

_LAZY = {"run": ("scagents.api", "run"), "RunResult": ("scagents.api", "RunResult"),
         "Perturbation": ("scagents.perturbation", "Perturbation"),
         "pp": ("scagents.pp", None), "tl": ("scagents.tl", None), "pl": ("scagents.pl", None)}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'scagents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

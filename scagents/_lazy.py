"""Module-level ``__getattr__`` for namespaces that re-export functions from other modules on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(namespace: str, where: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a module exporting ``name -> "module:attr"`` lazily."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {namespace!r} has no attribute {name!r}")
        module, attr = where[name].split(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):  # e.g. "ResponseTask.from_anndata"
            obj = getattr(obj, part)
        return obj

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__

"""The module, class and function names that docs/*.md quote exist in the code."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
#: a dotted ``scagents.…`` name inside backticks (up to a call's parenthesis or the closing tick)
NAME = re.compile(r"`[^`]*?\b(scagents(?:\.[A-Za-z_]\w*)+)")


def resolves(name: str) -> bool:
    """Whether ``name`` is a module, or an attribute chain on the longest importable module prefix."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_resolves_catches_a_missing_name():
    assert resolves("scagents.data.genes.select_genes") and resolves("scagents.envs.ray_vec")
    assert not resolves("scagents.data.select_genes")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_dotted_name_in_the_docs_exists(doc: Path):
    names = set(NAME.findall(doc.read_text(encoding="utf-8")))
    assert names, f"{doc.name} quotes no scagents name: the pattern is stale"
    missing = sorted(n for n in names if not resolves(n))
    assert not missing, f"{doc.name} names what the code does not have: {missing}"

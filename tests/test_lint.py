"""``ruff check .`` (with the bandit-style security rules ``S``) runs in CI through this test."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_security_rules_are_selected():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "S" in cfg["tool"]["ruff"]["lint"]["select"]


def test_ruff_check_passes():
    pytest.importorskip("ruff", reason="ruff is in the test extra; install it to lint")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]

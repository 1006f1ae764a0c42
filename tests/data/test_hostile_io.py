"""Hostile data files through the readers of :mod:`scagents.data` (issue 15).

Each case asserts: one :class:`~scagents.errors.ScagentsError` (never another exception type, so
callers give one line), a one-line message without traceback text, the input file byte-identical,
nothing written beside it, and that a pickle payload planted in a file never ran.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagents.data import load, load_npy, read, read_csv_expression, read_hits, read_screen
from scagents.errors import ScagentsError


class Payload:
    """Unpickling this creates ``marker`` (what a crafted file would do, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _h5ad_bytes(tmp: Path) -> bytes:
    a = ad.AnnData(np.ones((6, 4), np.float32),
                   obs=pd.DataFrame({"perturbation": ["control"] * 3 + ["G1"] * 3},
                                    index=[f"c{i}" for i in range(6)]),
                   var=pd.DataFrame(index=[f"G{i}" for i in range(4)]))
    a.write_h5ad(tmp / "_good.h5ad")
    data = (tmp / "_good.h5ad").read_bytes()
    (tmp / "_good.h5ad").unlink()
    return data


def _pickle_npy(path: Path, marker: Path) -> None:
    np.save(path, np.array([Payload(marker), "IFNG"], dtype=object), allow_pickle=True)


def _make(kind: str, folder: Path) -> Path:
    """One hostile file in ``folder``; ``folder / 'PWNED'`` appears if a payload ever runs."""
    marker = folder / "PWNED"
    good = _h5ad_bytes(folder) if "h5" in kind else b""
    files = {
        "truncated_h5ad": ("x.h5ad", good[: len(good) // 2]),
        "header_only_h5ad": ("x.h5ad", good[:8]),
        "garbage_h5ad": ("x.h5ad", b"\x89HDF\r\n\x1a\n" + b"\x00" * 3000),
        "empty_h5ad": ("x.h5ad", b""),
        "text_as_h5ad": ("x.h5ad", b"gene,score\nA,1\n"),
        "truncated_h5mu": ("x.h5mu", good[: len(good) // 3]),
        "text_as_10x_h5": ("x.h5", b"hello"),
        "unknown_suffix": ("x.pkl", b"\x80\x04K\x01."),
        "binary_csv": ("x.csv", b"\xff\xfe\x00\x81" * 100),
        "empty_csv": ("x.csv", b""),
    }
    if kind in files:
        name, data = files[kind]
        path = folder / name
        path.write_bytes(data)
        return path
    path = folder / "x.npy"
    if kind == "pickle_npy":
        _pickle_npy(path, marker)
    elif kind == "object_strings_npy":
        np.save(path, np.array(["IFNG", "STAT1"], dtype=object), allow_pickle=True)
    elif kind == "truncated_npy":
        np.save(path, np.array(["IFNG", "STAT1", "IRF1"] * 50))
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "raw_pickle_as_npy":
        import pickle

        path.write_bytes(pickle.dumps([Payload(marker)]))
    elif kind == "text_as_npy":
        path.write_text("IFNG\nSTAT1\n")
    else:
        raise AssertionError(kind)
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


READERS = {"read": read, "load": load, "read_csv_expression": read_csv_expression,
           "read_hits": read_hits, "read_screen": read_screen, "load_npy": load_npy}

#: (reader, kind of hostile file, a phrase the message must contain)
CASES = [
    ("read", "truncated_h5ad", "could not be read"),
    ("read", "header_only_h5ad", "could not be read"),
    ("read", "garbage_h5ad", "could not be read"),
    ("read", "empty_h5ad", "empty"),
    ("read", "text_as_h5ad", "x.h5ad"),
    ("read", "truncated_h5mu", "x.h5mu"),
    ("read", "text_as_10x_h5", "x.h5"),
    ("read", "unknown_suffix", "Unknown file type"),
    ("load", "truncated_h5ad", "could not be read"),
    ("load", "garbage_h5ad", "could not be read"),
    ("load", "unknown_suffix", "Unknown file type"),
    ("read_csv_expression", "binary_csv", "x.csv"),
    ("read_csv_expression", "empty_csv", "x.csv"),
    ("read_screen", "binary_csv", "x.csv"),
    ("read_screen", "empty_csv", "x.csv"),
    ("read_hits", "pickle_npy", "pickled Python objects"),
    ("read_hits", "object_strings_npy", "numpy.asarray(values, dtype=str)"),
    ("read_hits", "truncated_npy", "not a readable .npy"),
    ("read_hits", "raw_pickle_as_npy", "not a readable .npy"),
    ("read_hits", "text_as_npy", "not a readable .npy"),
    ("load_npy", "pickle_npy", "pickled Python objects"),
    ("load_npy", "raw_pickle_as_npy", "not a readable .npy"),
]


@pytest.mark.parametrize("reader, kind, expect", CASES, ids=[f"{r}-{k}" for r, k, _ in CASES])
def test_hostile_file_gives_one_clear_error(tmp_path, reader, kind, expect):
    path = _make(kind, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ScagentsError) as info:
        READERS[reader](path)
    msg = str(info.value)
    assert expect in msg, msg
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 1000, msg
    assert _snapshot(tmp_path) == before  # unchanged, nothing written beside it
    assert not (tmp_path / "PWNED").exists()


def test_the_pickle_payload_is_live(tmp_path):
    """Positive control: the crafted .npy really runs code when loaded with pickles allowed."""
    marker = tmp_path / "PWNED"
    _pickle_npy(tmp_path / "x.npy", marker)
    np.load(tmp_path / "x.npy", allow_pickle=True)  # noqa: S301 - the unsafe load, on purpose
    assert marker.exists()


def test_string_hit_lists_still_load(tmp_path):
    np.save(tmp_path / "hits.npy", np.array(["IFNG", "STAT1"]))
    assert read_hits(tmp_path / "hits.npy") == ["IFNG", "STAT1"]
    (tmp_path / "hits.txt").write_text("IFNG\n\nSTAT1\n")
    assert read_hits(tmp_path / "hits.txt") == ["IFNG", "STAT1"]


def test_npz_with_pickles_is_refused_by_load_npy_suffix_check(tmp_path):
    """A zip of arrays named .npy is not an .npy: refused by the magic check, nothing unpickled."""
    marker = tmp_path / "PWNED"
    with zipfile.ZipFile(tmp_path / "x.npy", "w") as z:
        z.writestr("a.npy", b"junk")
    with pytest.raises(ScagentsError, match="not a readable .npy"):
        load_npy(tmp_path / "x.npy")
    assert not marker.exists()


def test_no_unsafe_loader_left_in_the_package():
    """No pickle-capable load of data a user or the internet can supply."""
    root = Path(__file__).resolve().parents[2] / "scagents"
    bad = []
    for p in root.rglob("*.py"):
        text = p.read_text()
        for needle in ("allow_pickle=True", "read_pickle(", "pickle.load(", "pickle.loads("):
            if needle in text:
                bad.append(f"{p.relative_to(root)}: {needle}")
    assert not bad, bad


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_data_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    from scagents.data import write

    a = ad.AnnData(np.ones((3, 2), np.float32))
    path = tmp_path / "d.h5ad"
    write(a, path)
    before = path.read_bytes()

    def boom(self, filename, **kw):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", boom)
    with pytest.raises(OSError, match="disk full"):
        write(a, path)
    assert path.read_bytes() == before  # the earlier file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5ad"]  # no temporary left

"""Atomic file writes and strict JSON: the one place every scagents writer goes through.

A process killed while writing must never leave half a file where a whole one is expected, and a
file written before must stay intact until its replacement is complete. Every writer therefore
writes a temporary file in the same folder (created exclusively, so a planted symbolic link is never
followed), flushes it to disk (``fsync``) and renames it over the target (:func:`os.replace`, atomic
on POSIX and Windows)::

    with atomic_path(path) as tmp:   # any writer that takes a path: to_csv, torch.save, h5py …
        df.to_csv(tmp)
    write_text(path, text)            # bytes / text / JSON shortcuts
    write_json(path, obj)

JSON written by scagents is strict (:func:`dumps`): NaN and ±Infinity become ``null`` (bare ``NaN``
is not JSON, ``JSON.parse`` rejects it), numpy scalars and arrays become numbers and lists, paths
become strings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_bytes", "write_text", "write_json", "dumps", "jsonable",
           "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp"
"""Suffix of the temporary files (listings skip names ending in it)."""


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entry table so a rename survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed and renamed to ``path``.

    Parameters
    ----------
    path
        The file to (re)write; its folder is created if missing.

    Yields
    ------
    pathlib.Path
        ``.<name>.<random>.tmp`` in the same folder, already created (empty) by this process. Write
        the whole file there (writers that pick a format from the suffix need it given explicitly,
        e.g. ``savefig(tmp, format="png")``).

    Notes
    -----
    When the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode(encoding))


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: non-finite floats → ``None``; numpy, paths, sets converted.

    Objects with no JSON form (other than the above) become their ``str``.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return Path(obj).as_posix()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalar or array
        return jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    return str(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``obj`` (:func:`jsonable` first, then ``allow_nan=False``)."""
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (:func:`dumps`) to ``path`` atomically; returns ``path``."""
    return write_text(path, dumps(obj, indent=indent))

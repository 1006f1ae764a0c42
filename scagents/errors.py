"""Exceptions raised by scagents.

Every error a user can trigger with bad input derives from :class:`ScagentsError` and its message
says what is wrong *and* how to fix it. They also derive from the matching built-in exception
(``ValueError``, ``KeyError``, ``FileNotFoundError``) so generic handlers keep working.
"""

from __future__ import annotations

import os
from pathlib import Path


class ScagentsError(Exception):
    """Base class of all errors scagents raises on bad input."""


class DataError(ScagentsError, ValueError):
    """The data are malformed (NaNs, negative counts, duplicate names, empty, wrong shape...)."""


class DataFileError(DataError):
    """A file cannot be read: missing, empty, unknown format or corrupt."""


class DataFileNotFoundError(DataFileError, FileNotFoundError):
    """The input path does not exist (also a :class:`FileNotFoundError`)."""


class PerturbationError(DataError):
    """Perturbation metadata are missing or inconsistent (no column, no control cells...)."""


class GeneNotFoundError(ScagentsError, KeyError):
    """A gene named by the user is not in the data or the model."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ModalityError(DataError):
    """A modality is unknown or missing."""


class GoalError(ScagentsError, ValueError):
    """A goal string cannot be parsed into a perturbation request."""


class ModelFileError(ScagentsError, ValueError):
    """A Boolean-network model file cannot be parsed."""


def check_path(path: str | os.PathLike, what: str = "data file") -> None:
    """Raise a clear error when ``path`` is missing or an empty file.

    Lives here (not in :mod:`scagents.data`) so that the command line can check its input paths
    before importing the scientific stack.

    Raises
    ------
    DataFileNotFoundError
        The path does not exist (the message lists files with a similar name).
    DataFileError
        The path is an empty file.
    """
    path = Path(path)
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        hint = ""
        if parent.is_dir():
            near = sorted(p.name for p in parent.iterdir() if p.name.startswith(path.stem[:3]))[:5]
            if near:
                hint = f" Files with a similar name there: {', '.join(near)}."
        raise DataFileNotFoundError(
            f"The {what} {str(path)!r} does not exist. Check the path (relative paths are resolved "
            f"from {os.getcwd()!r}).{hint}"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise DataFileError(
            f"The {what} {str(path)!r} is empty (0 bytes), probably from an interrupted download or "
            "copy. Download or write the file again."
        )

"""Exceptions raised by scagents.

Every error a user can trigger with bad input derives from :class:`ScagentsError` and its message
says what is wrong *and* how to fix it. They also derive from the matching built-in exception
(``ValueError``, ``KeyError``, ``FileNotFoundError``) so generic handlers keep working.
"""

from __future__ import annotations


class ScagentsError(Exception):
    """Base class of all errors scagents raises on bad input."""


class DataError(ScagentsError, ValueError):
    """The data are malformed (NaNs, negative counts, duplicate names, empty, wrong shape...)."""


class DataFileError(DataError):
    """A file cannot be read: missing, empty, unknown format or corrupt."""


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

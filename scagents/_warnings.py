"""Dependency warnings that say nothing about the user's data, and the one place that silences them.

Low in the package (no scagents imports) so that every layer — data, integration, the agents, the
API and the command line — can run under the same narrow filters.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEPENDENCY_WARNINGS", "dependency_warnings_filtered", "filter_dependency_warnings"]

#: (category, module regex, message regex) of dependency warnings that say nothing about the
#: user's data; each is silenced only for that category, from that library, with that message
DEPENDENCY_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (FutureWarning, r"(mudata|muon|anndata|scanpy)(\.|$)", ""),
    (DeprecationWarning, r"(mudata|muon|anndata|scanpy|langgraph|langchain_core)(\.|$)", ""),
    # a MuData whose modalities share names (protein CD4 and gene CD4) cannot join its modalities'
    # .var columns in the global .var; scagents reads each modality's own table, so nothing is lost
    (UserWarning, r"mudata(\.|$)",
     r"Cannot join columns with the same name because (obs|var)_names are intersecting"),
)


def filter_dependency_warnings() -> None:
    """Silence the dependency warnings of :data:`DEPENDENCY_WARNINGS` (e.g. mudata's 22 future
    warnings per run, its "var_names are intersecting" note).

    They concern the libraries' own next versions or internals, not the user's data; every other
    warning (scagents' own, or a dependency's about the data) still shows. The command line and
    :func:`scagents.run` apply these filters only while they run (inside ``warnings.catch_warnings``), so
    the caller's filters are left as they were.
    """
    for category, module, message in DEPENDENCY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


@contextmanager
def dependency_warnings_filtered() -> Iterator[None]:
    """:func:`filter_dependency_warnings` only inside a ``with`` block (or a function decorated
    with ``@dependency_warnings_filtered()``); the caller's filters are restored afterwards."""
    with warnings.catch_warnings():
        filter_dependency_warnings()
        yield

"""The working directory of the tools: path sandboxing, short results, clear error strings.

Every path a model passes to a tool is resolved by :meth:`Workspace.resolve`, which refuses paths
that leave the working directory (``..``, absolute paths elsewhere, symbolic links pointing out).
Tools keep full objects on disk inside the workspace and return a short JSON summary
(:meth:`Workspace.summarise`); when a summary would still be too long for a model's context, its
long lists are cut and the complete result is written to ``results/<tool>_<n>.json``.

A bad call never raises: :func:`format_error` turns an exception into one line starting with
``error:`` that says what is wrong and ends with ``fix:`` and what to do about it.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scagents._atomic import TMP_SUFFIX, jsonable, write_json
from scagents.errors import GeneNotFoundError, ScagentsError

__all__ = ["Workspace", "WorkspacePathError", "format_error", "format_validation_error",
           "MAX_RESULT_CHARS", "MAX_ERROR_CHARS", "cap"]

MAX_RESULT_CHARS = 2000
"""Longest JSON text a tool returns to the model; longer results are cut and saved in full."""

MAX_ERROR_CHARS = 600
"""Longest error line a tool returns; a longer description is cut, saying how much was left out."""

OUTSIDE_LINK = "symbolic link to a file outside the working directory (tools refuse it)"


class WorkspacePathError(ScagentsError, ValueError):
    """A path given to a tool lies outside the working directory."""


class Workspace:
    """A working directory inside which every tool reads and writes.

    Parameters
    ----------
    root
        The working directory (created if missing).

    Attributes
    ----------
    root
        Its absolute, symlink-free path.
    ledger
        The campaign ledger (``campaigns.sqlite``) used by the campaign tools.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._n_results = 0

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def ledger(self) -> Path:
        """The campaign ledger ``campaigns.sqlite`` (refused if a link leads out of the workspace)."""
        return self.resolve("campaigns.sqlite", what="campaign ledger")

    @property
    def runs(self) -> Path:
        """Folder of the agent runs made by ``predict_perturbation``."""
        return self.root / "runs"

    # ------------------------------------------------------------------------------------ paths
    def resolve(self, path: str | Path, *, must_exist: bool = False, what: str = "file") -> Path:
        """Absolute path of ``path`` inside the workspace.

        Parameters
        ----------
        path
            Relative to the workspace, or absolute but inside it.
        must_exist
            Raise :class:`FileNotFoundError` when nothing is there.
        what
            What the path names, for the messages (``"data file"``, ``"results file"``…).

        Returns
        -------
        pathlib.Path
            The resolved path (symbolic links followed).

        Raises
        ------
        WorkspacePathError
            The path is empty or leaves the working directory.
        FileNotFoundError
            ``must_exist`` and the path does not exist.
        """
        text = str(path).strip()
        if not text:
            raise WorkspacePathError(f"The {what} path is empty; give a path relative to the "
                                     f"working directory {self.root}.")
        p = Path(text).expanduser()
        full = (p if p.is_absolute() else self.root / p).resolve()
        if not full.is_relative_to(self.root):
            raise WorkspacePathError(
                f"The {what} path {text!r} is outside the working directory {self.root}; tools "
                "may only read and write inside it. Copy the file into the working directory and "
                "give its path relative to it.")
        if must_exist and not full.exists():
            raise FileNotFoundError(f"No {what} {self.rel(full)!r} in the working directory "
                                    f"{self.root}.")
        return full

    def rel(self, path: str | Path) -> str:
        """``path`` relative to the workspace (as the model should quote it)."""
        p = Path(path).resolve()
        return p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else str(p)

    def new_file(self, folder: str, stem: str, suffix: str) -> Path:
        """A file ``<folder>/<stem><suffix>`` in the workspace (``<stem>_2`` … if taken).

        The folder must resolve inside the workspace, and a name taken by anything (a file, a
        folder, a dangling symbolic link) is skipped, so a tool never writes through a link.
        """
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._") or "out"
        safe = safe[:100]
        d = self.resolve(folder, what="output folder")
        d.mkdir(parents=True, exist_ok=True)
        out, i = d / f"{safe}{suffix}", 2
        while os.path.lexists(out):
            out, i = d / f"{safe}_{i}{suffix}", i + 1
        return out

    def listing(self, folder: str = ".", *, limit: int = 100) -> list[dict]:
        """Files under ``folder`` (relative paths and sizes), newest first.

        A symbolic link leading out of the workspace is listed by its own name only, without the
        size or path of its target.
        """
        base = self.resolve(folder, must_exist=True, what="folder")
        rows: list[tuple[float, dict]] = []
        for p in base.rglob("*"):
            if p.name.endswith(TMP_SUFFIX):
                continue
            name = p.relative_to(self.root).as_posix()  # the link's own name, never its target
            if p.is_symlink() and not p.resolve().is_relative_to(self.root):
                rows.append((p.lstat().st_mtime, {"path": name, "bytes": None,
                                                  "note": OUTSIDE_LINK}))
            elif p.is_file():
                st = p.stat()
                rows.append((st.st_mtime, {"path": name, "bytes": st.st_size}))
        rows.sort(key=lambda r: r[0], reverse=True)
        return [r for _, r in rows[:limit]]

    # ---------------------------------------------------------------------------------- results
    def summarise(self, tool: str, result: dict, *, limit: int = MAX_RESULT_CHARS) -> str:
        """The JSON text returned to the model, at most about ``limit`` characters.

        When ``result`` is longer, the full result is written to ``results/<tool>_<n>.json`` and
        its lists are cut (longest first) until the text fits; ``full_result`` then names the file.
        """
        clean = _jsonable(result)
        text = json.dumps(clean, separators=(",", ":"))
        if len(text) <= limit:
            return text
        self._n_results += 1
        full = self.new_file("results", f"{tool}_{self._n_results}", ".json")
        write_json(full, clean)
        short = dict(clean, full_result=self.rel(full))
        for _ in range(200):
            text = json.dumps(short, separators=(",", ":"))
            if len(text) <= limit or not _cut_longest(short):
                break
        if len(text) > limit:  # nothing left to cut: keep the head of the text
            text = json.dumps({"summary": text[: limit - 200] + "…",
                               "full_result": self.rel(full)}, separators=(",", ":"))
        return text


def _jsonable(obj: Any) -> Any:
    """Plain JSON values (:func:`scagents._atomic.jsonable`: NaN → None …), floats rounded."""
    return _round(jsonable(obj))


def _round(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return round(obj, 6) if isinstance(obj, float) else obj


def cap(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending ``… (N more characters)`` when cut."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(f"… ({len(text)} more characters)"))  # the note's longest form
    return text[:keep] + f"… ({len(text) - keep} more characters)"


def _cut_longest(d: dict) -> bool:
    """Halve the longest list found in ``d`` (recursively); ``False`` when none can be cut."""
    best: tuple[int, list | None, Any, Any] = (1, None, None, None)

    def visit(container: Any) -> None:
        nonlocal best
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for k, v in items:
            if isinstance(v, list):
                n = len(json.dumps(v))
                if len(v) > 1 and n > best[0]:
                    best = (n, v, container, k)
            if isinstance(v, dict | list):
                visit(v)

    visit(d)
    _, lst, parent, key = best
    if lst is None:
        return False
    kept = lst[: max(1, len(lst) // 2)]
    parent[key] = kept
    if isinstance(parent, dict):
        parent.setdefault(f"{key}_total", len(lst))  # the length before the first cut
    return True


# ----------------------------------------------------------------------------------- errors
def format_validation_error(exc: ValidationError) -> str:
    """One line naming each bad argument, what was wrong and the value given."""
    parts = []
    errors = exc.errors()
    for err in errors[:6]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "arguments"
        given = err.get("input")
        shown = cap(json.dumps(_jsonable(given)), 60) if given is not None else "missing"
        parts.append(f"argument {cap(loc, 60)!r}: {cap(str(err.get('msg', 'invalid')), 120)} "
                     f"(got {shown})")
    if len(errors) > 6:
        parts.append(f"and {len(errors) - 6} more")
    tail = ". fix: call the tool again with the arguments corrected as described in its schema."
    head = "error: invalid arguments — "
    return head + cap(" ".join("; ".join(parts).split()),
                      MAX_ERROR_CHARS - len(head) - len(tail)) + tail


def format_error(exc: BaseException, *, workspace: Workspace | None = None, tool: str = "") -> str:
    """A one-line message for the model: ``error: <what is wrong>. fix: <what to do>``.

    Unexpected exceptions (bugs) are described by their type and message, and their traceback is
    appended to ``tool_errors.log`` in the workspace.
    """
    if isinstance(exc, ValidationError):
        return format_validation_error(exc)
    msg = " ".join(str(exc).split()) or type(exc).__name__
    msg = cap(msg, 20 * MAX_ERROR_CHARS)  # cut again below, once the fix is known
    if isinstance(exc, WorkspacePathError):
        fix = "use a path inside the working directory (relative paths are resolved there)."
    elif isinstance(exc, GeneNotFoundError):
        fix = ("use a gene the message allows (check the spelling against the data, the twin "
               "model or the campaign's proposed genes), then call the tool again.")
    elif isinstance(exc, FileNotFoundError):
        fix = "check the name with the list_files tool; paths are relative to the working directory."
    elif isinstance(exc, ScagentsError):
        fix = ("do what the message above says (change the arguments, or first call the tool it "
               "names), then call the tool again.")
    else:
        if workspace is not None:
            try:  # never through a link leading out of the workspace
                log = workspace.resolve("tool_errors.log", what="error log")
            except WorkspacePathError:
                log = None
            if log is not None:
                with log.open("a") as fh:
                    fh.write(f"--- {tool}\n{''.join(traceback.format_exception(exc))}\n")
        head = f"error: {tool or 'the tool'} failed unexpectedly ({type(exc).__name__}: "
        tail = ("). fix: try other arguments; if it persists this is a bug in scagents "
                "(traceback in tool_errors.log of the working directory).")
        return head + cap(msg, MAX_ERROR_CHARS - len(head) - len(tail)) + tail
    campaign_error = type(exc).__name__ in ("CampaignError", "IngestError", "GeneNotFoundError")
    hint = _TOOL_HINTS.get(tool, "") if campaign_error or tool == "steer_cells" else ""
    tail = f" fix: {fix}{hint}"
    return "error: " + cap(msg, MAX_ERROR_CHARS - len("error: ") - len(tail)) + tail


#: extra advice for campaign errors, whose library messages name the command-line interface
_TOOL_HINTS = {
    "ingest_results": " With the tools: create a campaign and propose genes with "
                      "recommend_perturbations(campaign=NAME, goal=..., candidates=[...]); only "
                      "proposed genes can be ingested.",
    "recommend_perturbations": " A new campaign needs both goal and candidates (or "
                               "candidates_file).",
    "steer_cells": " With this tool the CLI's --model FILE is model='FILE' (a file inside the working "
                   "directory) and --inputs GENE=VALUE is inputs={'GENE': VALUE}.",
}

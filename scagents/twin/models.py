"""Shipped Boolean models: the T-helper model (default) and Krumsiek 2011 (read from scanpy)."""

from __future__ import annotations

import os
from pathlib import Path

from scagents.errors import ModelFileError
from scagents.twin.rules import BooleanNetwork, read_model

MODEL_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "th_mendoza2006"

# Krumsiek et al. (2011) common-myeloid-progenitor model. The rules and coupling list are read at run
# time from scanpy's own copy (scanpy/sim_models/krumsiek11.txt); the fates, the progenitor start
# state and the HGNC aliases below are scagents' additions.
KRUMSIEK_SOURCE = (
    "Krumsiek J, Marr C, Schroeder T, Theis FJ (2011) Hierarchical differentiation of myeloid "
    "progenitors is encoded in the transcription factor network. PLoS ONE 6(8): e22649. "
    "doi:10.1371/journal.pone.0022649 (rules from scanpy/sim_models/krumsiek11.txt)"
)
KRUMSIEK_FATES = {
    "erythroid": "EKLF and not Fli1",
    "megakaryocyte": "Fli1 and not EKLF",
    "monocyte": "(cJun or EgrNab) and not Gfi1",
    # Krumsiek et al.'s granulocyte attractor has Pu.1, Cebpa and Gfi1 on.
    "granulocyte": "Gfi1 and Cebpa and Pu.1",
}
# Common myeloid progenitor: Gata2 on, Pu.1 and Cebpa moderate, Gata1 low; per-cell spread.
# With noise 0.1 this start yields all four fates (about 28 % erythroid, 32 % megakaryocyte,
# 20 % granulocyte, 7 % monocyte, the rest undecided at 400 steps of dt 0.05).
KRUMSIEK_INITIAL = {"Gata2": (0.8, 0.05), "Gata1": (0.1, 0.1), "Pu.1": (0.6, 0.15),
                    "Cebpa": (0.5, 0.2)}
KRUMSIEK_ALIASES = {
    "SPI1": "Pu.1", "PU1": "Pu.1", "GATA1": "Gata1", "GATA2": "Gata2", "ZFPM1": "Fog1",
    "KLF1": "EKLF", "TAL1": "SCL", "CEBPA": "Cebpa", "JUN": "cJun", "C-JUN": "cJun",
    "EGR1": "EgrNab", "EGR2": "EgrNab",
}


def _krumsiek11() -> BooleanNetwork:
    import scanpy

    path = Path(os.path.dirname(scanpy.__file__)) / "sim_models" / "krumsiek11.txt"
    if not path.is_file():
        raise ModelFileError(
            f"scanpy's Krumsiek model file {path} is missing; reinstall scanpy (>= 1.4) to use "
            "load_model('krumsiek11')."
        )
    net = read_model(path, format="scanpy")
    net.name = "krumsiek11"
    net.source = KRUMSIEK_SOURCE
    net.fates = dict(KRUMSIEK_FATES)
    net.initial_state = {g: m for g, (m, _s) in KRUMSIEK_INITIAL.items()}
    net.initial_sd = {g: s for g, (_m, s) in KRUMSIEK_INITIAL.items()}
    net.aliases = dict(KRUMSIEK_ALIASES)
    return net


def _th() -> BooleanNetwork:
    return read_model(MODEL_DIR / "th_mendoza2006.txt", format="scanpy")


_REGISTRY = {
    "th_mendoza2006": _th,
    "krumsiek11": _krumsiek11,
}
_ALIASES = {"th": "th_mendoza2006", "default": "th_mendoza2006", "krumsiek": "krumsiek11",
            "mendoza2006": "th_mendoza2006"}


def list_models() -> list[str]:
    """Names of the shipped models (the first is the default)."""
    return list(_REGISTRY)


def shipped_model(name: str | Path) -> str | None:
    """The registry name of a shipped model (``"th"`` → ``"th_mendoza2006"``), or ``None``.

    Callers that sandbox file access (the tools) use it to tell a shipped model from a path.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in _REGISTRY else None


def load_model(name: str | Path = DEFAULT_MODEL) -> BooleanNetwork:
    """Load a shipped model by name, or read a model file.

    Parameters
    ----------
    name
        ``"th"`` / ``"th_mendoza2006"`` (T-helper Th0/Th1/Th2, the default), ``"krumsiek11"``
        (myeloid progenitors, read from scanpy's file), or a path to a model file in any format
        :func:`~scagents.twin.read_model` understands.

    Returns
    -------
    BooleanNetwork
        A fresh network object (safe to modify).

    Raises
    ------
    ModelFileError
        When ``name`` is neither a shipped model nor an existing file.
    """
    lookup = shipped_model(name)
    if lookup is not None:
        return _REGISTRY[lookup]()
    path = Path(name)
    if path.is_file():
        return read_model(path)
    raise ModelFileError(
        f"No shipped model or file named {str(name)!r}. Shipped models: {', '.join(list_models())} "
        f"(also 'th'); or pass the path of a model file."
    )

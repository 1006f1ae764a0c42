"""The one description of a perturbation used across scagents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

PerturbationKind = Literal["knockout", "knockdown", "overexpression", "stimulation"]
KINDS: tuple[str, ...] = ("knockout", "knockdown", "overexpression", "stimulation")


@dataclass(frozen=True)
class Perturbation:
    """A perturbation of one or several genes.

    Parameters
    ----------
    targets
        Gene symbols perturbed together (a multi-gene knockout has several).
    kind
        ``"knockout"`` (activity forced to 0), ``"knockdown"`` (activity scaled by ``strength``),
        ``"overexpression"`` (activity forced to its maximum) or ``"stimulation"`` (an input set on).
    strength
        Fraction of activity *removed* by a knockdown (0.7 leaves 30 %); ignored otherwise.
    start_time
        Pseudotime (fraction of the simulated trajectory, 0-1) at which the perturbation is applied.
    """

    targets: tuple[str, ...]
    kind: PerturbationKind = "knockout"
    strength: float = 0.7
    start_time: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            object.__setattr__(self, "targets", (self.targets,))
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise ValueError("A perturbation needs at least one target gene.")
        if self.kind not in KINDS:
            raise ValueError(f"Unknown perturbation kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {self.strength}.")
        if not 0.0 <= self.start_time <= 1.0:
            raise ValueError(f"start_time must be in [0, 1], got {self.start_time}.")

    @property
    def label(self) -> str:
        """A short label such as ``"IFNG knockout"`` or ``"STAT1+IRF1 knockout"``."""
        return f"{'+'.join(self.targets)} {self.kind}"

    def to_dict(self) -> dict:
        return {"targets": list(self.targets), "kind": self.kind, "strength": self.strength,
                "start_time": self.start_time}

    @classmethod
    def from_dict(cls, d: dict) -> Perturbation:
        return cls(targets=tuple(d["targets"]), kind=d.get("kind", "knockout"),
                   strength=float(d.get("strength", 0.7)), start_time=float(d.get("start_time", 0.0)))

    @classmethod
    def from_obs(cls, target_genes: str, kind: str) -> Perturbation | None:
        """The perturbation of standardised ``obs`` columns ``target_genes`` (``"A+B"``) and
        ``perturbation_type``; ``None`` for control cells or when no target is named. A kind outside
        :data:`KINDS` (e.g. ``"CRISPRi"`` spelled another way) is read as a knockout."""
        targets = tuple(t for t in str(target_genes).split("+") if t)
        kind = str(kind)
        if not targets or kind == "control":
            return None
        return cls(targets, kind=kind if kind in KINDS else "knockout")


def target_groups(targets: Sequence[Sequence[str]], kinds: Sequence[str] | None = None
                  ) -> list[list[int]]:
    """Positions grouped by target gene set and kind: every label of one perturbation (per
    promoter ``STAT2_P1`` / ``STAT2_P2``, per guide ``STAT2g1`` / ``STAT2g2``, ``A+B`` and
    ``B+A``) falls in one group, so a split of the groups never puts one perturbation's labels on
    both sides. Kinds stay apart, as for the goal's own labels: a knockout and an over-expression
    of one gene are different experiments.

    Parameters
    ----------
    targets
        The target genes of each perturbation (e.g. ``[p.targets for p in task.perturbations]``).
    kinds
        The kind of each perturbation; ``None``: group by target genes alone.

    Returns
    -------
    list of list of int
        The groups in order of their first member, each in position order; with one label per
        target set and kind, ``[[0], [1], …]``.
    """
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(targets):
        groups.setdefault(target_group_key(t, None if kinds is None else str(kinds[i])), []).append(i)
    return list(groups.values())


def target_group_key(targets: Sequence[str], kind: str | None = None) -> str:
    """The key of a perturbation's target gene set and kind (``"STAT2 knockout"``; ``"A+B
    knockout"`` for both ``A+B`` and ``B+A``): equal exactly for the labels :func:`target_groups`
    puts in one group."""
    key = "+".join(sorted(set(targets)))
    return key if kind is None else f"{key} {kind}"


def unit_means(values: Sequence[float], units: Sequence[str] | None = None) -> np.ndarray:
    """One value per unit: the mean of its labels' values (NaN skipped; NaN when all are).

    Parameters
    ----------
    values
        One value per label (a validation metric).
    units
        The unit of each label (:func:`target_group_key`: ``STAT2_P1`` and ``STAT2_P2`` share
        one); ``None``: every label is its own unit.

    Returns
    -------
    numpy.ndarray
        The units' values in order of their first label; ``values`` unchanged when every unit is
        one label.
    """
    v = np.asarray(values, dtype=np.float64)
    if units is None:
        return v
    keys = [str(u) for u in units]
    if len(keys) != len(v):
        raise ValueError(f"{len(v)} values but {len(keys)} units.")
    if len(set(keys)) == len(keys):
        return v
    members: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    return np.array([_nanmean(v[idx]) for idx in members.values()])


def unit_mean(values: Sequence[float], units: Sequence[str] | None = None) -> float:
    """The mean over units of :func:`unit_means`: each unit's labels averaged first, then the
    units, so a gene with four guide labels weighs as much as a gene with one (NaN skipped; NaN
    when every unit is). With one label per unit, the mean over the labels (the same sum, in the
    same order, as :meth:`pandas.Series.mean` and :func:`numpy.nanmean`)."""
    return _nanmean(unit_means(values, units))


def _nanmean(v: np.ndarray) -> float:
    """NaN-skipping mean as pandas computes it (NaN set to 0, summed, divided by the count)."""
    missing = np.isnan(v)
    count = int((~missing).sum())
    if not count:
        return float("nan")
    return float(np.where(missing, 0.0, v).sum() / count)

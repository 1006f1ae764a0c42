"""Is a gene expressed in the twin's milieu, and which milieu would switch it on?

A knockout (or knockdown) can only lower a gene that is on. When the target of a loss-of-function
goal is off in the control cells of the chosen milieu, "no detectable effect" is the honest answer,
and the useful follow-up is the milieu in which the gene *is* expressed. :func:`scan_milieus`
simulates control cells under combinations of the model's input genes (all 0 / 1 combinations
for up to :data:`MAX_FULL_INPUTS` inputs, else every single input and every pair switched on on
top of the current milieu) and :func:`target_expression` says, for one gene, whether it is
expressed now and which of the scanned milieus express it.

>>> from scagents.twin import load_model
>>> from scagents.twin.milieu import scan_milieus, target_expression
>>> net = load_model("th")
>>> scan = scan_milieus(net, n_cells=32)
>>> target_expression(net, "IFNAR1", control_activity=0.0, scan=scan)["expressed"]
False
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from scagents.twin.rules import BooleanNetwork
from scagents.twin.simulate import SILENT_ACTIVITY, simulate

__all__ = ["EXPRESSED_ACTIVITY", "MAX_FULL_INPUTS", "current_milieu", "hold_inputs",
           "scan_milieus", "target_expression"]

EXPRESSED_ACTIVITY = SILENT_ACTIVITY
"""Mean control activity from which a gene counts as expressed (its knockout can lower it)."""
MAX_FULL_INPUTS = 6
"""Up to this many inputs every 0 / 1 combination is scanned; beyond, single inputs and pairs."""


def current_milieu(network: BooleanNetwork, inputs: dict[str, float] | None = None
                   ) -> dict[str, float]:
    """The input activities a simulation uses: ``inputs`` over the model's own values (0 when
    neither sets an input)."""
    inputs = inputs or {}
    return {g: float(inputs.get(g, network.input_values.get(g, 0.0))) for g in network.inputs}


_P = TypeVar("_P")


def hold_inputs(predict: _P, genes: Sequence[str], inputs: Iterable[str]) -> _P:
    """Predictors that leave the model's milieu inputs unchanged.

    The twin clamps its input genes (``BooleanNetwork.inputs``: TCR, IL12, …) to the milieu's
    value in every cell, so a perturbation cannot change them — unless it targets one itself (a
    knockout clamps its targets to 0). Their measured mean change is sampling noise of the per-cell
    input values, and a predictor fitted to such data predicts noise for them. This wraps
    ``predict(targets, kind) -> delta over genes`` so that the entries of ``inputs`` among
    ``genes`` are 0, except the perturbation's own targets.

    Parameters
    ----------
    predict
        ``predict(targets, kind) -> 1-D delta`` in ``genes`` order, a ``{name: predict}`` mapping
        of them (each wrapped), or ``None`` (returned as is).
    genes
        The predicted genes, in order.
    inputs
        The model's input genes (on real data: none, and ``predict`` is returned unchanged).

    Returns
    -------
    The same kind of object as ``predict``.

    Examples
    --------
    >>> import numpy as np
    >>> held = hold_inputs(lambda targets, kind: np.ones(3), ["TCR", "GATA3", "TBX21"], ["TCR"])
    >>> held(("GATA3",), "knockout").tolist()
    [0.0, 1.0, 1.0]
    >>> held(("TCR",), "knockout").tolist()          # its own knockout does change it
    [1.0, 1.0, 1.0]
    """
    genes = [str(g) for g in genes]
    held = set(map(str, inputs)) & set(genes)
    if predict is None or not held:
        return predict
    if isinstance(predict, dict):
        return {k: hold_inputs(f, genes, held) for k, f in predict.items()}  # type: ignore[return-value]
    pos = {g: i for i, g in enumerate(genes) if g in held}
    inner: Callable = predict  # type: ignore[assignment]

    def predict_held(targets, kind) -> np.ndarray:
        out = np.array(inner(targets, kind), dtype=float, copy=True)
        own = {str(t) for t in targets}
        out[[i for g, i in pos.items() if g not in own]] = 0.0
        return out

    predict_held.__wrapped__ = inner  # type: ignore[attr-defined]
    return predict_held  # type: ignore[return-value]


def _milieus(network: BooleanNetwork, now: dict[str, float]) -> list[dict[str, float]]:
    names = list(network.inputs)
    if len(names) <= MAX_FULL_INPUTS:
        return [dict(zip(names, map(float, bits), strict=True))
                for bits in itertools.product((0, 1), repeat=len(names))]
    out = {tuple(now.items()): dict(now)}
    for k in (1, 2):
        for on in itertools.combinations(names, k):
            m = {**now, **dict.fromkeys(on, 1.0)}
            out.setdefault(tuple(m.items()), m)  # each milieu once
    return list(out.values())


def scan_milieus(network: BooleanNetwork, *, inputs: dict[str, float] | None = None,
                 n_cells: int = 64, seed: int = 0) -> pd.DataFrame:
    """Mean control activity of every gene under combinations of the model's inputs.

    Parameters
    ----------
    network
        The model.
    inputs
        The run's milieu (overrides of the model's input values); the base of the single / pair
        switches when the model has more than :data:`MAX_FULL_INPUTS` inputs.
    n_cells
        Control cells simulated per milieu.
    seed
        Seed of every simulation.

    Returns
    -------
    pandas.DataFrame
        One row per milieu: the input values (columns named like the inputs) then the mean
        activity (sampled along the trajectories, ``layers["activity"]``) of every non-input gene.
        Empty (no rows) when the model has no inputs.
    """
    if not network.inputs:
        return pd.DataFrame(columns=[g for g in network.genes])
    rows = []
    for milieu in _milieus(network, current_milieu(network, inputs)):
        with warnings.catch_warnings():  # silent milieus are expected here
            warnings.simplefilter("ignore", UserWarning)
            rna = simulate(network, n_cells=n_cells, seed=seed, inputs=milieu,
                           modalities=["rna"])["rna"]
        act = np.asarray(rna.layers["activity"], dtype=np.float64).mean(axis=0)
        genes = pd.Series(act, index=[str(g) for g in rna.var_names])
        rows.append({**milieu, **genes.drop(list(network.inputs), errors="ignore").to_dict()})
    return pd.DataFrame(rows)


def _fmt(milieu: dict[str, float]) -> str:
    return ", ".join(f"{g}={v:g}" for g, v in milieu.items())


def target_expression(network: BooleanNetwork, gene: str, *, control_activity: float,
                      inputs: dict[str, float] | None = None, scan: pd.DataFrame | None = None,
                      kind: str = "knockout", threshold: float = EXPRESSED_ACTIVITY,
                      n_show: int = 3) -> dict:
    """Whether ``gene`` is expressed in the run's milieu and, if not, which milieu expresses it.

    Parameters
    ----------
    network
        The model.
    gene
        A non-input gene of the model (the goal's target).
    control_activity
        Its mean activity in the run's control cells.
    inputs
        The run's milieu (``--inputs``), over the model's input values.
    scan
        :func:`scan_milieus` output (computed here when ``None`` and the gene is not expressed).
    kind
        The goal's perturbation kind (for the sentence).
    threshold
        Activity from which the gene counts as expressed.
    n_show
        Milieus named in the sentence.

    Returns
    -------
    dict
        ``gene``, ``control_activity``, ``expressed``, ``threshold``, ``milieu`` (the run's input
        values), ``n_milieus`` (scanned), ``switch_on`` (milieus expressing the gene; those at
        twice the threshold first, then those that switch the fewest inputs from the run's
        milieu, then the strongest:
        ``{"inputs": {...}, "activity": a}``) and ``sentence`` (``""`` when expressed).
    """
    now = current_milieu(network, inputs)
    out = {"gene": gene, "control_activity": round(float(control_activity), 4),
           "expressed": bool(control_activity >= threshold), "threshold": threshold,
           "milieu": now, "n_milieus": 0, "switch_on": [], "sentence": ""}
    if out["expressed"]:
        return out
    head = (f"{gene} is not expressed under this milieu (mean control activity "
            f"{control_activity:.3f} < {threshold:g}"
            + (f"; inputs {_fmt(now)}" if now else "") + f"): a {kind} cannot lower a gene that "
            "is already off, so no effect on it is expected")
    if not network.inputs:
        out["sentence"] = (f"{head}. The model has no milieu inputs; only other initial states "
                           "('# @initial GENE = value' lines or a sidecar file) can switch it on.")
        return out
    if scan is None:
        scan = scan_milieus(network, inputs=inputs)
    out["n_milieus"] = int(len(scan))
    if gene in scan:
        on = scan[scan[gene] >= threshold]
        # clearly expressed (twice the threshold) first, then fewest inputs switched (by at
        # least half their range), then the strongest
        flips = sum((on[g] - now[g]).abs() >= 0.5 for g in network.inputs)
        order = sorted(range(len(on)), key=lambda i: (bool(on[gene].iloc[i] < 2 * threshold),
                                                      int(flips.iloc[i]),
                                                      -float(on[gene].iloc[i])))
        out["switch_on"] = [{"inputs": {g: float(on[g].iloc[i]) for g in network.inputs},
                             "activity": round(float(on[gene].iloc[i]), 4)} for i in order]
    how = ("every 0/1 combination" if len(network.inputs) <= MAX_FULL_INPUTS else
           "each input and each pair of inputs switched on")
    if out["switch_on"]:
        shown = "; ".join(f"{_fmt(m['inputs'])} (activity {m['activity']:.2f})"
                          for m in out["switch_on"][:n_show])
        best = out["switch_on"][0]["inputs"]
        changed = {g: v for g, v in best.items() if v != now.get(g)}
        out["sentence"] = (f"{head}. It is expressed in {len(out['switch_on'])} of the "
                           f"{len(scan)} milieus checked ({how} of the inputs "
                           f"{', '.join(network.inputs)}), e.g. {shown}"
                           + (": rerun with --inputs "
                              + " ".join(f"{g}={v:g}" for g, v in changed.items()) if changed
                              else "") + ".")
    else:
        top = float(scan[gene].max()) if gene in scan and len(scan) else 0.0
        out["sentence"] = (f"{head}. None of the {len(scan)} milieus checked ({how} of the inputs "
                           f"{', '.join(network.inputs)}) expresses it (highest activity "
                           f"{top:.3f}); other initial states ('# @initial GENE = value') may.")
    return out

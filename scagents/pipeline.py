"""The ``run`` pipeline: goal → data → prediction → report.

On the embedded default the data come from the mechanistic twin: control and perturbed cells are
simulated with the same seed, and the predicted response *is* the twin's simulated response (a
mechanistic prediction, with known ground truth). On a user's data set the response to a perturbation
is predicted by the linear gene-embedding baseline trained on the other perturbations of the data;
when the perturbation was measured, the prediction is made with that perturbation held out and then
checked against the observed cells.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

import scagents
from scagents.goal import Goal, parse_goal
from scagents.report import plot_effects, plot_embedding, plot_fate_shift, write_report

DEFAULT_MODEL = "th"
MIN_EFFECT = 0.05  # smallest |delta| listed as up / down
MAX_PADJ = 0.05


def default_out_dir(goal: str, root: str | Path = "scagents_runs") -> Path:
    """A new folder under ``root`` named after the time and the goal."""
    slug = "".join(c if c.isalnum() else "_" for c in goal.lower()).strip("_")[:40]
    base = Path(root) / f"{datetime.now():%Y%m%d-%H%M%S}_{slug}"
    out, i = base, 1
    while out.exists():
        out, i = Path(f"{base}_{i}"), i + 1
    return out


def gene_effects(
    control: np.ndarray, perturbed: np.ndarray, genes: Sequence[str]
) -> pd.DataFrame:
    """Per-gene change of mean expression from control, with Welch-test adjusted p-values.

    Parameters
    ----------
    control, perturbed
        Cells × genes log-normalised expression of control and perturbed cells.
    genes
        Gene names.

    Returns
    -------
    A DataFrame indexed by gene with ``control_mean``, ``perturbed_mean``, ``delta`` and ``padj``
    (Benjamini–Hochberg), sorted by decreasing ``|delta|``.
    """
    c_mean, p_mean = control.mean(0), perturbed.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pvals = stats.ttest_ind(perturbed, control, axis=0, equal_var=False).pvalue
    pvals = np.where(np.isfinite(pvals), pvals, 1.0)
    padj = stats.false_discovery_control(pvals, method="bh")
    df = pd.DataFrame(
        {"control_mean": c_mean, "perturbed_mean": p_mean, "delta": p_mean - c_mean, "padj": padj},
        index=pd.Index(list(genes), name="gene"),
    )
    return df.reindex(df["delta"].abs().sort_values(ascending=False).index)


def _gene_rows(df: pd.DataFrame) -> list[dict]:
    return [
        {"gene": g, "delta": float(r.delta), "control_mean": float(r.control_mean),
         "perturbed_mean": float(r.perturbed_mean),
         **({"padj": float(r.padj)} if "padj" in df else {})}
        for g, r in df.iterrows()
    ]


def _top(df: pd.DataFrame, direction: str, n: int = 10) -> list[dict]:
    sel = df["delta"] > MIN_EFFECT if direction == "up" else df["delta"] < -MIN_EFFECT
    if "padj" in df:
        sel &= df["padj"] < MAX_PADJ
    return _gene_rows(df[sel].head(n))


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _pca2(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n_comp = min(2, x.shape[1], x.shape[0])
    coords = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
    if coords.shape[1] < 2:
        coords = np.column_stack([coords, np.zeros(len(coords))])
    return coords


def predict_on_twin(
    goal_text: str, *, model: str = DEFAULT_MODEL, n_cells: int = 2000, seed: int = 0,
    out: Path, progress: tqdm | None = None,
) -> dict:
    """Simulate control and perturbed cells on a twin model and describe the response."""
    from scagents.data import lognormalize
    from scagents.twin import load_model, simulate

    net = load_model(model)
    goal = parse_goal(goal_text, net.genes, aliases=net.aliases, inputs=net.inputs)
    _step(progress, f"simulating {n_cells} control + {n_cells} perturbed cells on the twin")
    mdata = simulate(net, perturbations=[None, goal.perturbation], n_cells=n_cells, seed=seed)
    rna = mdata["rna"]
    lognormalize(rna)
    _step(progress, "computing the response")
    is_ctrl = rna.obs["is_control"].to_numpy(bool)
    x = _dense(rna.layers["lognorm"])
    effects = gene_effects(x[is_ctrl], x[~is_ctrl], rna.var_names)
    act = _dense(rna.layers["activity"])
    activity_delta = pd.Series(act[~is_ctrl].mean(0) - act[is_ctrl].mean(0), index=rna.var_names)

    fates = rna.obs["fate"].astype(str)
    fate_shift = {
        "control": fates[is_ctrl].value_counts(normalize=True).round(4).to_dict(),
        goal.perturbation.label: fates[~is_ctrl].value_counts(normalize=True).round(4).to_dict(),
    }
    _step(progress, "plotting")
    figures = {
        "effects": plot_effects(_gene_rows(effects), out / "effects.png",
                                title=f"Simulated response to {goal.perturbation.label}").name,
        "fate_shift": plot_fate_shift(fate_shift, out / "fate_shift.png",
                                      title="Fate reached by each simulated cell").name,
        "embedding": plot_embedding(
            _pca2(x, seed), ["control" if c else goal.perturbation.label for c in is_ctrl],
            out / "embedding.png", title="Cells (PCA of log-normalised counts)").name,
    }
    notes = [
        "The response is simulated on the mechanistic twin: the Boolean rules of the model are run "
        "as stochastic Hill-type dynamics, RNA counts are sampled with a count-noise model with "
        "dropout, and effects are computed from those counts exactly as for measured data.",
        f"Model: {net.name}" + (f" — {net.source}" if getattr(net, "source", "") else "") + ".",
        "Largest change in noiseless model activity: "
        + ", ".join(f"{g} {v:+.2f}" for g, v in
                    activity_delta.reindex(activity_delta.abs().sort_values(ascending=False).index)
                    .head(5).items()) + ".",
        f"Genes are listed as up / down when |delta| > {MIN_EFFECT} and the Welch-test "
        f"Benjamini–Hochberg adjusted p < {MAX_PADJ}.",
    ]
    return {
        "goal": goal.to_dict(),
        "perturbation": goal.perturbation.to_dict(),
        "data": {"source": f"twin:{net.name}", "description": f"digital twin, model {net.name}",
                 "n_cells": int(rna.n_obs), "n_genes": int(rna.n_vars)},
        "method": {"name": "twin simulation",
                   "description": "mechanistic simulation of control and perturbed cells"},
        "genes": _gene_rows(effects),
        "top_up": _top(effects, "up"),
        "top_down": _top(effects, "down"),
        "activity_delta": activity_delta.round(6).to_dict(),
        "fate_shift": fate_shift,
        "figures": figures,
        "notes": notes,
    }


def predict_on_data(
    goal_text: str, path: str | Path, *, perturbation_key: str | None = None,
    control_labels: Sequence[str] | None = None, seed: int = 0, out: Path,
    progress: tqdm | None = None,
) -> dict:
    """Predict the response to the goal's perturbation on a user's data set."""
    from scagents.baselines import LinearGeneEmbedding, MeanEffect
    from scagents.data import load, lognormalize, perturbation_effects, pseudobulk
    from scagents.metrics import prediction_report

    adata = load(path, perturbation_key=perturbation_key, control_labels=control_labels)
    if not hasattr(adata, "obs_names") or hasattr(adata, "mod"):  # MuData: use its RNA modality
        adata = adata["rna"] if "rna" in adata.mod else adata[list(adata.mod)[0]]
    _step(progress, "normalising and summarising per perturbation")
    lognormalize(adata)
    goal: Goal = parse_goal(goal_text, adata.var_names)
    label = "+".join(goal.perturbation.targets)
    effects = perturbation_effects(adata, layer="lognorm")
    control = pseudobulk(adata, layer="lognorm").loc["control"]
    observed = label in effects.index
    train = effects.drop(index=label) if observed else effects
    _step(progress, "fitting the linear gene-embedding baseline")
    model = LinearGeneEmbedding().fit(control, train) if len(train) >= 2 else MeanEffect().fit(
        control, train)
    pred = model.predict(list(goal.perturbation.targets)).reindex(adata.var_names).fillna(0.0)
    df = pd.DataFrame({"control_mean": control, "perturbed_mean": control + pred, "delta": pred})
    df = df.reindex(df["delta"].abs().sort_values(ascending=False).index)
    result: dict = {
        "goal": goal.to_dict(),
        "perturbation": goal.perturbation.to_dict(),
        "data": {"source": str(path), "description": f"{Path(path).name}",
                 "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars)},
        "method": {"name": model.name,
                   "description": f"trained on {len(train)} other perturbations of the data"
                   + (f" ({label} held out)" if observed else "")},
        "genes": _gene_rows(df),
        "top_up": _top(df, "up"),
        "top_down": _top(df, "down"),
        "fate_shift": None,
        "notes": [],
    }
    figures = {"effects": plot_effects(_gene_rows(df), out / "effects.png",
                                       title=f"Predicted response to {goal.perturbation.label}").name}
    if observed:
        obs_delta = effects.loc[label].reindex(adata.var_names)
        metrics = prediction_report(pred.to_numpy(), obs_delta.to_numpy())
        result["evaluation"] = {
            "description": f"{label} was measured in these data: the prediction above was made "
            "without its cells and is compared here with the observed change from control.",
            "metrics": {k: float(v) for k, v in metrics.items()},
        }
    result["figures"] = figures
    return result


def _step(progress: tqdm | None, desc: str) -> None:
    if progress is not None:
        progress.set_description_str(desc)
        progress.update(1)


def run(
    goal: str, *, data: str | Path | None = None, out: str | Path | None = None, seed: int = 0,
    n_cells: int = 2000, model: str = DEFAULT_MODEL, perturbation_key: str | None = None,
    control_labels: Sequence[str] | None = None, progress: bool = True,
) -> dict:
    """Answer a goal such as ``"predict IFNG knockout"`` and write the report.

    Parameters
    ----------
    goal
        The goal in plain words.
    data
        A ``.h5ad`` / ``.h5mu`` / 10x file or folder; ``None`` uses the embedded twin (``model``).
    out
        Output folder; default a new folder under ``./scagents_runs/``.
    seed
        Random seed; the same seed gives the same report.
    n_cells
        Cells simulated per condition on the twin.
    model
        Twin model for the default data (``"th"`` or ``"krumsiek11"``).
    perturbation_key, control_labels
        Passed to :func:`scagents.data.load` for user data.
    progress
        Show a progress bar.

    Returns
    -------
    The result dictionary also written to ``report.json``; ``result["out"]`` is the folder.
    """
    t0 = time.perf_counter()
    out_dir = Path(out) if out is not None else default_out_dir(goal)
    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=4, disable=not progress, leave=False, unit="step")
    try:
        _step(bar, "loading")
        if data is None:
            result = predict_on_twin(goal, model=model, n_cells=n_cells, seed=seed, out=out_dir,
                                     progress=bar)
        else:
            result = predict_on_data(goal, data, perturbation_key=perturbation_key,
                                     control_labels=control_labels, seed=seed, out=out_dir,
                                     progress=bar)
        result.update(seed=seed, version=scagents.__version__, min_effect=MIN_EFFECT)
        paths = write_report(result, out_dir)
    finally:
        bar.close()
    result["wall_time_s"] = round(time.perf_counter() - t0, 2)  # not in report.json: keeps it reproducible
    result["out"] = str(out_dir)
    result["files"] = {k: str(v) for k, v in paths.items()}
    return result

"""Simulated single cells with known ground truth: RNA, ATAC and surface-protein counts.

Each cell is one stochastic trajectory of the network (:mod:`scagents.twin.dynamics`) observed at a
random step, so cells spread along the trajectories (``obs["pseudotime"]``), and labelled with the
fate its trajectory reaches at the end. Counts are drawn from that noiseless activity:

RNA
    Negative binomial (Poisson–gamma, ``var = mu + dispersion * mu**2``) around
    ``mu = size_factor * scale_g * (basal + (1 - basal) * activity)`` with a log-normal per-cell size
    factor and per-gene scales summing to ``library_size``, then zero-inflated: each count is set to
    0 with probability ``dropout``.
ATAC
    Per gene a promoter region (``chrTwin:GENE_prom``) whose accessibility is the gene's regulatory
    input ``f_g(x)`` (its rule evaluated on the regulators' activity) and, for genes with regulators,
    an enhancer (``chrTwin:GENE_enh1``) opened by the mean Hill activation of its activators (closed
    by repressors when it has none). Counts are Poisson around ``depth * (0.02 + 0.8 * access)``.
ADT (``prot``)
    Negative-binomial counts with a background plus a signal proportional to activity, for the
    model's surface genes (all genes when it names none).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from scagents.errors import ModalityError
from scagents.perturbation import Perturbation
from scagents.twin.dynamics import _check_hill, _compiled, classify_fate, initial_states, integrate
from scagents.twin.models import load_model
from scagents.twin.rules import BooleanNetwork, rule_variables

MODALITIES: tuple[str, ...] = ("rna", "atac", "prot")
SILENT_ACTIVITY = 0.1
"""A model is *silent* when no non-input gene of any control cell ends above this activity."""


def is_silent(network: BooleanNetwork, final: np.ndarray) -> bool:
    """Whether every cell of ``final`` (``(n_cells, n_genes)``) is all-off: no gene that is not a
    model input above :data:`SILENT_ACTIVITY`."""
    dynamic = [j for j, g in enumerate(network.genes) if g not in network.inputs]
    return bool(dynamic) and float(np.max(final[:, dynamic], initial=0.0)) <= SILENT_ACTIVITY


def silent_warning(network: BooleanNetwork, final: np.ndarray,
                   inputs: dict[str, float] | None = None) -> str | None:
    """A warning when every cell ends in one all-off state, naming the inputs to set.

    Parameters
    ----------
    network
        The model.
    final
        ``(n_cells, n_genes)`` end-of-trajectory activities (control cells).
    inputs
        The input activities the simulation used (overrides of the model's milieu).

    Returns
    -------
    str or None
        The warning, or ``None`` when some gene is active.
    """
    if not is_silent(network, final):
        return None
    inputs = inputs or {}
    levels = ", ".join(f"{g} = {inputs.get(g, network.input_values.get(g, 0.0)):g}"
                       for g in network.inputs)
    hint = (f"set its milieu inputs ({levels}), e.g. --inputs {network.inputs[0]}=1, or with "
            f"'# @input {network.inputs[0]} = 1' lines / a {network.name}.inputs.json sidecar"
            if network.inputs else
            "give it initial states ('# @initial GENE = 0.8' lines or a sidecar file)")
    return (f"model {network.name!r} simulates every cell to one all-off state (no gene above "
            f"activity {SILENT_ACTIVITY}): no perturbation can change anything; {hint}.")


def _nb(rng: np.random.Generator, mu: np.ndarray, dispersion: float) -> np.ndarray:
    """Negative-binomial counts as a Poisson–gamma mixture (``var = mu + dispersion mu^2``)."""
    if dispersion <= 0:
        return rng.poisson(mu).astype(np.float32)
    lam = rng.gamma(shape=1.0 / dispersion, scale=mu * dispersion)
    return rng.poisson(lam).astype(np.float32)


def _resolve(network: BooleanNetwork, p: Perturbation) -> Perturbation:
    targets = tuple(network.resolve_gene(t) for t in p.targets)
    return Perturbation(targets=targets, kind=p.kind, strength=p.strength,
                        start_time=p.start_time, extra=p.extra)


def _label(p: Perturbation | None) -> str:
    if p is None:
        return "control"
    label = "+".join(p.targets)
    if p.kind != "knockout":
        label += f" {p.kind}"
    if p.start_time > 0:
        label += f" @{p.start_time:g}"
    return label


def _enhancer_drive(cn, x_gm: np.ndarray, network: BooleanNetwork,
                    hill: str = "standard") -> tuple[list[str], np.ndarray]:
    """Genes with an enhancer and its accessibility (gene-major rows) from regulator activity."""
    h, _nh = cn.hill(x_gm, form=hill)
    genes, rows = [], []
    idx = {g: i for i, g in enumerate(network.genes)}
    edges = network.edges
    for g in network.genes:
        node = network.asts.get(g)
        if node is None or g in network.inputs:
            continue
        regs = edges[edges["target"] == g]
        act = [idx[s] for s in regs.loc[regs["sign"] > 0, "source"]]
        rep = [idx[s] for s in regs.loc[regs["sign"] < 0, "source"]]
        if not act and not rep:  # a constant rule (G = True): no regulator drives an enhancer
            continue
        if act:
            drive = h[act].mean(axis=0)
        else:
            drive = 1.0 - h[rep].mean(axis=0)
        genes.append(g)
        rows.append(drive)
    return genes, np.array(rows).reshape(len(rows), x_gm.shape[1])


def _as_perturbation(p: Perturbation | str) -> Perturbation:
    """A condition of :func:`simulate`: a Perturbation, or a gene name (``"IFNG"``; ``"A+B"`` for a
    combination) read as its knockout."""
    if isinstance(p, Perturbation):
        return p
    if isinstance(p, str) and p.strip():
        return Perturbation(tuple(t.strip() for t in p.split("+") if t.strip()))
    raise TypeError(f"perturbations: expected Perturbation objects, gene names ('IFNG', 'A+B' for a "
                    f"knockout) or None for the control, got {p!r}.")


def simulate(
    network: BooleanNetwork | str = "th",
    *,
    perturbations: Perturbation | str | Sequence[Perturbation | str | None] | None = None,
    n_cells: int = 1000,
    n_steps: int = 400,
    dt: float = 0.05,
    noise: float = 0.1,
    seed: int = 0,
    inputs: dict[str, float] | None = None,
    modalities: Sequence[str] = MODALITIES,
    library_size: float = 1000.0,
    dropout: float = 0.1,
    dispersion: float = 0.3,
    basal: float = 0.05,
    hill: str = "standard",
) -> md.MuData:
    """Simulate single cells of a Boolean network under control and perturbed conditions.

    Parameters
    ----------
    network
        A :class:`~scagents.twin.BooleanNetwork`, or a shipped model name / model file path
        (see :func:`~scagents.twin.load_model`).
    perturbations
        ``None`` for control cells only; a :class:`~scagents.perturbation.Perturbation` or a gene
        name (``"IFNG"``, ``"A+B"``: its knockout); or a list of them where ``None`` stands for the
        control condition. Targets may be aliases (``"TBET"``, ``"PU.1"``).
    n_cells
        Cells per condition.
    n_steps, dt, noise
        Euler–Maruyama steps, step size and noise amplitude of the dynamics.
    seed
        Seed; the same seed gives identical output. Each condition draws from its own stream
        derived from ``(seed, condition index)``.
    inputs
        ``{input gene: activity}`` overriding the model's default milieu (e.g. ``{"IL12A": 1}``).
    modalities
        Any of ``"rna"``, ``"atac"``, ``"prot"``; ``"rna"`` is always produced.
    library_size
        Expected RNA counts per cell over the model genes when all are fully active.
    dropout
        Zero-inflation probability of each RNA count.
    dispersion
        Negative-binomial over-dispersion of RNA counts (``var = mu + dispersion * mu**2``).
    basal
        Fraction of a gene's maximal expression when its activity is 0.
    hill
        Hill form of the dynamics and of the ATAC promoter accessibility: ``"standard"`` (default)
        or ``"normalized"`` (:math:`h(x) / h(1)`, keeps Boolean fixed points; see
        :mod:`scagents.twin.dynamics`).

    Returns
    -------
    mudata.MuData
        ``mdata["rna"]``: ``X`` raw counts (float32 holding integers), ``layers["activity"]`` the
        noiseless activity at the sampled time, ``obsm["final_state"]`` the noiseless end-of-trajectory
        state (columns in ``uns["twin"]["genes"]`` order), ``obs["pseudotime"]`` (0–1) and
        ``obs["fate"]``. ``mdata["atac"]`` region counts (``var["gene"]``, ``var["kind"]``),
        ``mdata["prot"]`` ADT counts (``var["gene"]``). Every modality and ``mdata.obs`` carry
        ``perturbation``, ``target_genes``, ``perturbation_type``, ``is_control``, ``pseudotime``
        and ``fate``. ``mdata.uns["twin"]`` holds the ground truth: ``model``, ``source``,
        ``genes``, ``edges`` (DataFrame: source, target, sign, weight), ``fates``,
        ``perturbations`` ({label: Perturbation dict}), ``params``, ``seed`` and ``warnings``
        (:func:`silent_warning` when the model simulates to one all-off state; also issued as a
        ``UserWarning``).

    Raises
    ------
    GeneNotFoundError
        A perturbation target or input is not in the model (the message lists the closest names).
    ModalityError
        An unknown modality was requested.
    """
    net = load_model(network) if isinstance(network, str) else network
    mods = list(dict.fromkeys(["rna", *modalities]))
    for m in mods:
        if m not in MODALITIES:
            raise ModalityError(f"Unknown modality {m!r}; choose from {', '.join(MODALITIES)}.")
    if n_cells < 1 or n_steps < 1:
        raise ValueError("n_cells and n_steps must be >= 1.")
    _check_hill(hill)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")

    if perturbations is None:
        conditions: list[Perturbation | None] = [None]
    elif isinstance(perturbations, (Perturbation, str)):
        conditions = [_as_perturbation(perturbations)]
    else:
        conditions = [None if p is None else _as_perturbation(p) for p in perturbations]
    conditions = [None if p is None else _resolve(net, p) for p in conditions]
    labels: list[str] = []
    for p in conditions:
        label, k = _label(p), 2
        while label in labels:
            label, k = f"{_label(p)} #{k}", k + 1
        labels.append(label)
    # validate inputs early (resolves aliases)
    inputs = {net.resolve_gene(k): float(v) for k, v in (inputs or {}).items()}

    acts, finals, times, obs_rows = [], [], [], []
    for ci, p in enumerate(conditions):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1, ci]))
        x0 = initial_states(net, n_cells, rng, inputs)
        steps = rng.integers(0, n_steps + 1, size=n_cells)
        final, _, sampled = integrate(net, x0, n_steps=n_steps, dt=dt, noise=noise, rng=rng,
                                      perturbation=p, inputs=inputs, sample_steps=steps,
                                      hill=hill)
        acts.append(sampled)
        finals.append(final)
        times.append(steps / n_steps)
        fates = classify_fate(net, final)
        obs_rows.append(pd.DataFrame({
            "perturbation": labels[ci],
            "target_genes": "" if p is None else "+".join(p.targets),
            "perturbation_type": "control" if p is None else p.kind,
            "is_control": p is None,
            "pseudotime": steps / n_steps,
            "fate": fates.astype(str),
        }))
    ref = [i for i, p in enumerate(conditions) if p is None] or list(range(len(conditions)))
    silent = silent_warning(net, np.concatenate([finals[i] for i in ref]), inputs)
    if silent:
        warnings.warn(silent, UserWarning, stacklevel=2)
    activity = np.concatenate(acts)
    final = np.concatenate(finals)
    obs = pd.concat(obs_rows, ignore_index=True)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    for col in ("perturbation", "target_genes", "perturbation_type", "fate"):
        obs[col] = pd.Categorical(obs[col])
    n_total = len(obs)

    # count noise: one stream for gene parameters, one per modality
    rng_genes = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    weights = rng_genes.lognormal(0.0, 0.5, size=net.n_genes)
    scale = library_size * weights / weights.sum()
    rng_c = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    size_factor = rng_c.lognormal(0.0, 0.3, size=(n_total, 1))
    size_factor /= size_factor.mean()
    mu = size_factor * scale[None, :] * (basal + (1.0 - basal) * activity)
    counts = _nb(rng_c, mu, dispersion)
    counts[rng_c.random(counts.shape) < dropout] = 0.0

    var = pd.DataFrame(index=pd.Index(net.genes, name="gene"))
    var["is_input"] = [g in net.inputs for g in net.genes]
    var["is_surface"] = [g in net.surface for g in net.genes]
    var["scale"] = scale
    rna = ad.AnnData(X=counts, obs=obs.copy(), var=var)
    rna.layers["activity"] = activity.astype(np.float32)
    rna.obsm["final_state"] = final.astype(np.float32)
    rna.obs["size_factor"] = size_factor[:, 0]
    data = {"rna": rna}

    cn = _compiled(net)
    x_gm = np.ascontiguousarray(activity.T)
    if "atac" in mods:
        rng_a = np.random.default_rng(np.random.SeedSequence([seed, 3]))
        promoter = np.clip(cn.rule_values(x_gm, hill), 0.0, 1.0)  # inputs: their own activity
        enh_genes, enh = _enhancer_drive(cn, x_gm, net, hill)
        access = np.vstack([promoter, enh]).T
        names = [f"chrTwin:{g}_prom" for g in net.genes] + [f"chrTwin:{g}_enh1" for g in enh_genes]
        depth = rng_a.lognormal(np.log(2.0), 0.3, size=(n_total, 1))
        atac_counts = rng_a.poisson(depth * (0.02 + 0.8 * access)).astype(np.float32)
        avar = pd.DataFrame(index=pd.Index(names, name="region"))
        avar["gene"] = list(net.genes) + enh_genes
        avar["kind"] = ["promoter"] * net.n_genes + ["enhancer"] * len(enh_genes)
        avar["regulators"] = [
            "+".join(rule_variables(net.asts[g])) if net.asts.get(g) is not None else ""
            for g in avar["gene"]
        ]
        atac = ad.AnnData(X=atac_counts, obs=obs.copy(), var=avar)
        atac.layers["accessibility"] = access.astype(np.float32)
        data["atac"] = atac
    if "prot" in mods:
        rng_p = np.random.default_rng(np.random.SeedSequence([seed, 4]))
        surface = list(net.surface) or list(net.genes)
        cols = [net.genes.index(g) for g in surface]
        background = rng_p.uniform(5.0, 20.0, size=len(surface))
        signal = rng_p.uniform(100.0, 300.0, size=len(surface))
        p_sf = rng_p.lognormal(0.0, 0.2, size=(n_total, 1))
        mu_p = p_sf * (background + signal * activity[:, cols])
        pvar = pd.DataFrame(index=pd.Index([f"ADT_{g}" for g in surface], name="protein"))
        pvar["gene"] = surface
        prot = ad.AnnData(X=_nb(rng_p, mu_p, 0.1), obs=obs.copy(), var=pvar)
        data["prot"] = prot

    with warnings.catch_warnings():  # mudata 0.3 announces a future default of .update()
        warnings.simplefilter("ignore", FutureWarning)
        mdata = md.MuData(data)
    for col in ("perturbation", "target_genes", "perturbation_type", "is_control", "pseudotime", "fate"):
        mdata.obs[col] = obs[col].values
    mdata.uns["twin"] = {
        "model": net.name,
        "source": net.source,
        "genes": np.array(net.genes, dtype=object),
        "edges": net.edges.copy(),
        "fates": dict(net.fates),
        "perturbations": {
            lab: {"targets": np.array(p.targets, dtype=object), "kind": p.kind,
                  "strength": p.strength, "start_time": p.start_time}
            for lab, p in zip(labels, conditions, strict=True) if p is not None
        },
        "params": {"n_cells": n_cells, "n_steps": n_steps, "dt": dt, "noise": noise,
                   "library_size": library_size, "dropout": dropout, "dispersion": dispersion,
                   "basal": basal, "hill_n": net.hill_n, "hill_k": net.hill_k, "hill": hill, "tau": net.tau,
                   "inputs": {g: v for g, v in inputs.items()},
                   "modalities": np.array(mods, dtype=object)},
        "seed": seed,
        "warnings": np.array([silent] if silent else [], dtype=object),
    }
    return mdata

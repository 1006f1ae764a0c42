"""Random Boolean networks with realistic motifs, and a check that a simulation carries signal.

Used to choose and evaluate network-inference settings on many networks with known truth
(``benchmarks/grn_select.py``) instead of a handful of published models.

>>> from scagents.twin.generate import random_network, informative_simulation
>>> net = random_network(30, seed=1)
>>> mdata, check = informative_simulation(net, n_cells=300, seed=1)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from scagents.twin.rules import BooleanNetwork, read_model

__all__ = ["SignalCheck", "informative_simulation", "random_network", "signal_check", "vary_milieu"]


def random_network(n_genes: int, *, seed: int = 0, n_inputs: int | None = None, hub_exponent: float = 1.2,
                   max_in_degree: int = 3, p_repress: float = 0.35, n_ffl: int | None = None,
                   n_toggle: int | None = None, p_autoreg: float = 0.1) -> BooleanNetwork:
    """A random Boolean network whose wiring resembles transcriptional networks.

    Out-degree is scale-free (each regulator's chance of being picked is ``rank**-hub_exponent``, so
    a few hub TFs regulate many genes); every non-input gene has 1 to ``max_in_degree`` regulators.
    On top of that, feed-forward loops (``A→B``, ``A→C``, ``B→C``), toggle switches (mutual
    inhibition with self-activation) and autoregulation are planted. Rules combine a gene's
    activators with ``or`` / ``and`` and its repressors with ``and not``; input genes (no rule) get a
    per-cell random activity, the milieu that drives variation.

    Parameters
    ----------
    n_genes
        Genes, inputs included (at least 4).
    seed
        Seed; the same seed gives the same network.
    n_inputs
        Input genes; default ``max(1, n_genes // 10)``.
    hub_exponent
        Exponent of the preferential choice of regulators (0 = uniform).
    max_in_degree
        Most regulators per gene before motifs are added.
    p_repress
        Probability that an edge is a repression.
    n_ffl, n_toggle
        Feed-forward loops and toggle switches to plant; defaults ``n_genes // 8`` and ``n_genes // 15``.
    p_autoreg
        Probability that a gene activates itself.

    Returns
    -------
    BooleanNetwork
        Genes ``G00``...; ``edges`` is the truth (self-loops included; network metrics exclude them).
    """
    if n_genes < 4:
        raise ValueError(f"n_genes must be at least 4, got {n_genes}.")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 18]))
    width = len(str(n_genes - 1))
    genes = [f"G{i:0{width}d}" for i in range(n_genes)]
    n_in = max(1, n_genes // 10) if n_inputs is None else int(n_inputs)
    inputs = genes[:n_in]
    # candidate regulators in a random order; popularity falls off as a power of that rank
    order = rng.permutation(n_genes)
    pop = np.empty(n_genes)
    pop[order] = (np.arange(n_genes) + 1.0) ** -hub_exponent
    regs: dict[str, dict[str, int]] = {g: {} for g in genes[n_in:]}  # target -> {regulator: sign}
    for j in range(n_in, n_genes):
        k = int(rng.integers(1, max_in_degree + 1))
        p = pop.copy()
        p[j] = 0.0
        for i in rng.choice(n_genes, size=min(k, n_genes - 1), replace=False, p=p / p.sum()):
            regs[genes[j]][genes[i]] = -1 if rng.random() < p_repress else 1
    non_input = genes[n_in:]
    for _ in range(n_genes // 8 if n_ffl is None else n_ffl):  # feed-forward loops
        a = genes[int(rng.choice(n_genes, p=pop / pop.sum()))]
        b, c = rng.choice([g for g in non_input if g != a], 2, replace=False)
        regs[b][a] = regs[b].get(a, 1)
        regs[c][a] = regs[c].get(a, 1)
        regs[c][b] = regs[c].get(b, 1 if rng.random() > p_repress else -1)
    for _ in range(n_genes // 15 if n_toggle is None else n_toggle):  # mutual inhibition + self-activation
        x, y = rng.choice(non_input, 2, replace=False)
        regs[x][y], regs[y][x] = -1, -1
        regs[x][x], regs[y][y] = 1, 1
    for g in non_input:
        if rng.random() < p_autoreg:
            regs[g][g] = 1
    lines = [f"@name random{n_genes}_s{seed}",
             "@source scagents.twin.generate.random_network (synthetic)", "@hill n = 4, k = 0.5, tau = 1"]
    for g in inputs:
        lines.append(f"@input {g} = {rng.uniform(0.3, 0.7):.2f} sd 0.35")
    for g in non_input:
        lines.append(f"@initial {g} = {rng.uniform(0.0, 0.6):.2f} sd 0.25")
    for g in inputs:
        lines.append(f"{g} =")
    for g in non_input:
        act = [r for r, s in regs[g].items() if s > 0]
        rep = [r for r, s in regs[g].items() if s < 0]
        if act:
            glue = " and " if len(act) > 1 and rng.random() < 0.3 else " or "
            rule = f"({glue.join(act)})"
        else:  # only repressors: on unless repressed
            rule = ""
        if rep:
            neg = " or ".join(rep)
            rule = f"{rule} and not ({neg})" if rule else f"not ({neg})"
        lines.append(f"{g} = {rule}")
    return read_model("\n".join(lines) + "\n", format="scanpy")


@dataclass
class SignalCheck:
    """Outcome of :func:`signal_check`."""

    passed: bool
    n_varying: int
    n_dynamic: int
    frac_varying: float
    max_activity: float
    reasons: list[str] = field(default_factory=list)


def signal_check(mdata, *, min_sd: float = 0.1, min_frac: float = 0.4) -> SignalCheck:
    """Does a twin simulation carry signal for network inference?

    Judged on the control cells' noiseless activity (``rna.layers["activity"]``): a gene *varies*
    when its activity has standard deviation ≥ ``min_sd`` across cells. The simulation passes when
    at least ``min_frac`` of the non-input genes vary and some non-input gene is active at the end
    of the trajectories (``obsm["final_state"]`` above 0.1: not all-off once initial transients
    have decayed).

    Parameters
    ----------
    mdata
        Output of :func:`scagents.twin.simulate`.
    min_sd, min_frac
        Thresholds above.
    """
    rna = mdata.mod["rna"] if hasattr(mdata, "mod") else mdata
    ctrl = rna.obs["is_control"].to_numpy(bool)
    act = np.asarray(rna.layers["activity"])[ctrl if ctrl.any() else slice(None)]
    dynamic = ~rna.var["is_input"].to_numpy(bool)
    sd = act[:, dynamic].std(axis=0)
    n_var = int((sd >= min_sd).sum())
    n_dyn = int(dynamic.sum())
    frac = n_var / max(n_dyn, 1)
    final = np.asarray(rna.obsm["final_state"])[ctrl if ctrl.any() else slice(None)]
    mx = float(final[:, dynamic].max(initial=0.0))
    reasons = []
    if mx <= 0.1:
        reasons.append("all genes off")
    if frac < min_frac:
        reasons.append(f"only {n_var} of {n_dyn} genes vary (sd ≥ {min_sd})")
    return SignalCheck(not reasons, n_var, n_dyn, frac, mx, reasons)


def vary_milieu(network: BooleanNetwork, rng: np.random.Generator, *, input_sd: float = 0.35,
                initial_sd: float = 0.3) -> BooleanNetwork:
    """A copy of ``network`` whose inputs and initial states are drawn per cell around random means.

    Input genes get a mean uniform in ``[0.2, 0.8]`` and per-cell sd ``input_sd``; every other gene
    starts at a mean uniform in ``[0, 0.7]`` with sd ``initial_sd``.
    """
    import copy

    net = copy.deepcopy(network)
    for g in net.genes:
        if g in net.inputs:
            net.input_values[g] = float(rng.uniform(0.2, 0.8))
            net.input_sd[g] = input_sd
        else:
            net.initial_state[g] = float(rng.uniform(0.0, 0.7))
            net.initial_sd[g] = initial_sd
    return net


def informative_simulation(network: BooleanNetwork, *, n_cells: int = 500, seed: int = 0, tries: int = 4,
                           perturbations=None, min_sd: float = 0.1, min_frac: float = 0.4, **simulate_kwargs):
    """Simulate ``network`` in a regime that passes :func:`signal_check`, trying other milieus if not.

    The first try uses the model's own milieu and initial states; later tries draw them at random
    (:func:`vary_milieu`, seeded by ``seed`` and the try).

    Returns
    -------
    (mudata.MuData or None, dict)
        The simulation (``None`` when no try passed) and a record: ``passed``, ``tries``,
        ``frac_varying`` and the reasons of the last failure.
    """
    from scagents.twin.simulate import simulate

    rng = np.random.default_rng(np.random.SeedSequence([seed, 181]))
    check = None
    for t in range(tries):
        net = network if t == 0 else vary_milieu(network, rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # silent models are what the check rejects
            mdata = simulate(net, n_cells=n_cells, seed=seed + 1000 * t, perturbations=perturbations,
                             modalities=("rna",), **simulate_kwargs)
        check = signal_check(mdata, min_sd=min_sd, min_frac=min_frac)
        if check.passed:
            return mdata, {"passed": True, "tries": t + 1, "frac_varying": check.frac_varying,
                           "network": net}
    return None, {"passed": False, "tries": tries, "frac_varying": check.frac_varying if check else 0.0,
                  "reasons": check.reasons if check else []}

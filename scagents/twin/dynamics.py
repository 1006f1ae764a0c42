"""Hill-type stochastic dynamics of a Boolean network, vectorised over cells.

Each gene ``g`` with a rule follows the stochastic differential equation

.. math::

    dx_g = \\frac{p_g f_g(x) - x_g}{\\tau} dt + \\sigma \\sqrt{p_g f_g(x) + x_g}\\, dW_g

integrated by Euler–Maruyama and clipped to ``[0, 1]``. ``f_g`` is the Boolean rule turned into a
continuous function as in BoolODE / scanpy's ``sim``: a positive literal ``A`` becomes the Hill
activation :math:`h(x_A) = x_A^n / (k^n + x_A^n)`, ``not A`` becomes :math:`1 - h(x_A)`, ``and`` the
product of its operands and ``or`` the probabilistic sum :math:`1 - \\prod (1 - \\cdot)` (fuzzy
logic that keeps ``f`` in ``[0, 1]``). The noise term has the chemical-Langevin form of BoolODE
(production plus degradation), so a silent gene with no input stays silent. ``p_g`` is 1 except
under a knockdown. Coupling weights of a scanpy-format file are kept as edge weights only; the
dynamics use the same ``n`` and ``k`` for every edge.

``hill="normalized"`` (opt-in; the default is ``"standard"``) uses Odefy's normalized Hill function
:math:`\\tilde h(x) = h(x) / h(1) = h(x) (1 + k^n)` (Wittmann et al. 2009, BMC Syst Biol 3:98; the
``normHill`` of CNORode), so :math:`\\tilde h(0) = 0` and :math:`\\tilde h(1) = 1`: at a Boolean
state ``f`` equals the Boolean rule's value and every Boolean fixed point is a fixed point of the
deterministic dynamics. With the standard form ``h(1) = 1 / (1 + k^n)`` (0.94 for ``n = 4``,
``k = 0.5``), so an ``and`` of many literals stays below 1 and a self-sustaining state can decay.

Each rule is compiled once into a Python function of whole arrays: the state is held gene-major,
shape ``(n_genes, n_cells)``, so a rule is a handful of numpy operations on contiguous rows and
there is no loop over cells.

Inputs (genes without a rule or with only themselves as rule) are clamped to their initial value per
cell, or to the value given in ``inputs``. A knockout clamps its targets to 0, an overexpression or a
stimulation to 1, and a knockdown scales production by ``1 - strength``, from the step
``round(start_time * n_steps)`` on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scagents.errors import ModelFileError
from scagents.perturbation import Perturbation
from scagents.twin.rules import BooleanNetwork, parse_rule

DEFAULT_INITIAL_SD = 0.05
HILL_FORMS: tuple[str, ...] = ("standard", "normalized")
"""Hill activation forms: ``"standard"`` :math:`h(x)`, ``"normalized"`` :math:`h(x) / h(1)`."""


def _check_hill(hill: str) -> str:
    if hill not in HILL_FORMS:
        raise ValueError(f"hill must be one of {', '.join(HILL_FORMS)}, got {hill!r}.")
    return hill

# --------------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------------


def _expr(node: tuple, idx: dict[str, int]) -> str:
    kind = node[0]
    if kind == "var":
        return f"h[{idx[node[1]]}]"
    if kind == "const":
        return repr(float(node[1]))
    if kind == "not":
        return _comp(node[1], idx)
    if kind == "and":
        return "(" + " * ".join(_expr(c, idx) for c in node[1]) + ")"
    # or
    return f"(1.0 - {_comp(node, idx)})"


def _comp(node: tuple, idx: dict[str, int]) -> str:
    """Expression for ``1 - value(node)``."""
    kind = node[0]
    if kind == "var":
        return f"nh[{idx[node[1]]}]"
    if kind == "const":
        return repr(1.0 - float(node[1]))
    if kind == "not":
        return _expr(node[1], idx)
    if kind == "or":
        return "(" + " * ".join(_comp(c, idx) for c in node[1]) + ")"
    return f"(1.0 - {_expr(node, idx)})"


@dataclass
class CompiledNetwork:
    """A network compiled to array code (see :func:`compile_network`)."""

    network: BooleanNetwork
    rule_fn: object
    dynamic: np.ndarray  # indices of genes with a (non-trivial) rule
    inputs: np.ndarray  # indices of input genes (clamped)
    source: str

    def hill(self, x: np.ndarray, out: tuple[np.ndarray, np.ndarray] | None = None,
             form: str = "standard") -> tuple[np.ndarray, np.ndarray]:
        """Hill activation ``h`` and ``1 - h`` of a gene-major state array (into ``out`` if given).

        ``form="normalized"`` gives :math:`h(x) / h(1)` (capped at 1), exact 0 and 1 at ``x = 0, 1``.
        """
        n, k = self.network.hill_n, self.network.hill_k
        h, nh = out if out is not None else (np.empty_like(x), np.empty_like(x))
        if float(n).is_integer() and 1 <= n <= 16:
            np.copyto(h, x)
            for _ in range(int(n) - 1):
                h *= x
        else:
            np.power(x, n, out=h)
        np.add(h, k**n, out=nh)
        h /= nh
        if _check_hill(form) == "normalized":
            h *= h.dtype.type(1.0 + k**n)
            np.minimum(h, 1.0, out=h)
        np.subtract(1.0, h, out=nh)
        return h, nh

    def rule_values(self, x: np.ndarray, hill: str = "standard") -> np.ndarray:
        """``f(x)`` for a gene-major state ``(n_genes, n_cells)``; inputs keep their own value."""
        h, nh = self.hill(x, form=hill)
        out = x.copy()
        self.rule_fn(h, nh, out)
        return out


def compile_network(network: BooleanNetwork) -> CompiledNetwork:
    """Compile every rule of ``network`` once into one function of gene-major arrays.

    The generated function is built from the parsed rule trees only (gene names become array
    indices), so no text of the model file is executed.
    """
    idx = {g: i for i, g in enumerate(network.genes)}
    inputs = [idx[g] for g in network.inputs]
    lines = ["def _rules(h, nh, out):"]
    dynamic = []
    for g in network.genes:
        node = network.asts.get(g)
        if node is None or idx[g] in inputs:
            continue
        dynamic.append(idx[g])
        try:
            lines.append(f"    out[{idx[g]}] = {_expr(node, idx)}")
        except RecursionError:
            raise _too_deep(network, g) from None
    if not dynamic:
        lines.append("    pass")
    source = "\n".join(lines)
    namespace: dict = {}
    try:
        code = compile(source, f"<rules of {network.name}>", "exec")
    except (SyntaxError, RecursionError):  # e.g. 'too many nested parentheses'
        gene = None
        for j, line in zip(dynamic, lines[1:], strict=False):  # name the rule (only on this failure)
            try:
                compile(line.strip(), "<rule>", "exec")
            except (SyntaxError, RecursionError):
                gene = network.genes[j]
                break
        raise _too_deep(network, gene) from None
    exec(code, namespace)  # noqa: S102
    return CompiledNetwork(network, namespace["_rules"], np.array(dynamic, dtype=int),
                           np.array(inputs, dtype=int), source)


def _too_deep(network: BooleanNetwork, gene: str | None) -> ModelFileError:
    """The refusal of a rule nested too deeply to be compiled (Python allows 200 nested brackets)."""
    which = f"the rule of {gene}" if gene else "a rule"
    return ModelFileError(f"model {network.name!r}: {which} is nested too deeply to be simulated (its compiled "
                          "expression needs more than the 200 nested brackets Python allows: about 100-200 "
                          "levels of and/or); simplify it (e.g. to a disjunctive normal form).")


_CACHE: dict[int, CompiledNetwork] = {}


def _compiled(network: BooleanNetwork) -> CompiledNetwork:
    key = id(network)
    cn = _CACHE.get(key)
    if cn is None or cn.network is not network:
        cn = compile_network(network)
        _CACHE[key] = cn
    return cn


# --------------------------------------------------------------------------------------------------
# Initial states, fates
# --------------------------------------------------------------------------------------------------


def _check_inputs(network: BooleanNetwork, inputs: dict[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (inputs or {}).items():
        gene = network.resolve_gene(name)
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"Input {name} = {value}: input activities must lie in [0, 1].")
        out[gene] = value
    return out


def initial_states(
    network: BooleanNetwork,
    n_cells: int,
    rng: np.random.Generator,
    inputs: dict[str, float] | None = None,
) -> np.ndarray:
    """Draw initial activities for ``n_cells`` cells.

    Gene ``g`` starts at ``N(initial_state[g], initial_sd[g])`` (defaults 0 and 0.05) clipped to
    ``[0, 1]``; an input starts at ``inputs[g]`` when given, else at ``N(input_values[g],
    input_sd[g])``.

    Parameters
    ----------
    network
        The model.
    n_cells
        Number of cells.
    rng
        Random generator (``np.random.default_rng(seed)``).
    inputs
        ``{input gene or alias: activity}``, fixed for every cell.

    Returns
    -------
    numpy.ndarray
        ``(n_cells, n_genes)`` float64 activities.
    """
    fixed = _check_inputs(network, inputs)
    x = np.empty((n_cells, network.n_genes))
    for j, g in enumerate(network.genes):
        if g in fixed:
            x[:, j] = fixed[g]
            continue
        if g in network.input_values:
            mean, sd = network.input_values[g], network.input_sd.get(g, 0.0)
        else:
            mean = network.initial_state.get(g, 0.0)
            sd = network.initial_sd.get(g, DEFAULT_INITIAL_SD)
        x[:, j] = mean + sd * rng.standard_normal(n_cells)
    np.clip(x, 0.0, 1.0, out=x)
    return x


def _bool_eval(node: tuple, active: np.ndarray, idx: dict[str, int]) -> np.ndarray:
    kind = node[0]
    if kind == "var":
        return active[..., idx[node[1]]]
    if kind == "const":
        return np.full(active.shape[:-1], bool(node[1]))
    if kind == "not":
        return ~_bool_eval(node[1], active, idx)
    parts = [_bool_eval(c, active, idx) for c in node[1]]
    return np.logical_and.reduce(parts) if kind == "and" else np.logical_or.reduce(parts)


def classify_fate(
    network: BooleanNetwork, states: np.ndarray, *, threshold: float = 0.5,
    default: str = "undecided",
) -> np.ndarray:
    """Name the fate of each state by the model's fate conditions.

    A gene counts as on when its activity exceeds ``threshold``; the first fate (in model order)
    whose condition holds wins; states matching none get ``default``.

    Parameters
    ----------
    network
        The model; its :attr:`~BooleanNetwork.fates` are Boolean conditions.
    states
        ``(..., n_genes)`` activities.

    Returns
    -------
    numpy.ndarray
        Fate names, shape ``states.shape[:-1]``, dtype object.
    """
    states = np.asarray(states, dtype=float)
    if states.shape[-1] != network.n_genes:
        raise ValueError(f"states have {states.shape[-1]} genes, the model has {network.n_genes}.")
    idx = {g: i for i, g in enumerate(network.genes)}
    active = states > threshold
    out = np.full(states.shape[:-1], default, dtype=object)
    assigned = np.zeros(states.shape[:-1], dtype=bool)
    for fate, condition in network.fates.items():
        hit = _bool_eval(parse_rule(condition), active, idx) & ~assigned
        out[hit] = fate
        assigned |= hit
    return out


# --------------------------------------------------------------------------------------------------
# Integration
# --------------------------------------------------------------------------------------------------


def _as_list(perturbation) -> list[Perturbation]:
    if perturbation is None:
        return []
    if isinstance(perturbation, Perturbation):
        return [perturbation]
    return [p for p in perturbation if p is not None]


def integrate(
    network: BooleanNetwork,
    x0: np.ndarray,
    *,
    n_steps: int,
    dt: float,
    noise: float,
    rng: np.random.Generator,
    perturbation: Perturbation | Sequence[Perturbation] | None = None,
    inputs: dict[str, float] | None = None,
    record_every: int | None = None,
    sample_steps: np.ndarray | None = None,
    hill: str = "standard",
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Integrate the dynamics; the engine behind :func:`run_dynamics` and ``simulate``.

    ``hill`` is the Hill form (:data:`HILL_FORMS`; see the module docstring); the other arguments
    are those of :func:`run_dynamics`.

    Returns
    -------
    final
        ``(n_cells, n_genes)`` state after ``n_steps``.
    records
        ``(n_records, n_cells, n_genes)`` states at steps ``0, r, 2r, ...`` when ``record_every=r``.
    samples
        ``(n_cells, n_genes)``: cell ``i``'s state at step ``sample_steps[i]`` when given.
    """
    cn = _compiled(network)
    x0 = np.asarray(x0, dtype=float)
    if x0.ndim != 2 or x0.shape[1] != network.n_genes:
        raise ValueError(
            f"x0 must have shape (n_cells, {network.n_genes}) for model {network.name!r}, got {x0.shape}."
        )
    if n_steps < 0 or dt <= 0 or noise < 0:
        raise ValueError("n_steps must be >= 0, dt > 0 and noise >= 0.")
    _check_hill(hill)
    n_cells = x0.shape[0]
    x = np.ascontiguousarray(np.clip(x0.T, 0.0, 1.0), dtype=np.float32)  # gene-major

    fixed = _check_inputs(network, inputs)
    for g, v in fixed.items():
        x[network.genes.index(g)] = v
    clamp_idx = list(cn.inputs)
    clamp_val = [x[i].copy() for i in clamp_idx]

    # perturbation schedule: (start step, clamp indices, clamp values, production changes)
    events = []
    for p in _as_list(perturbation):
        start = int(round(p.start_time * n_steps))
        idx = [network.gene_index(t) for t in p.targets]
        if p.kind == "knockdown":
            events.append((start, [], [], {i: 1.0 - p.strength for i in idx}))
        else:
            value = 0.0 if p.kind == "knockout" else 1.0
            events.append((start, idx, [value] * len(idx), {}))
    events.sort(key=lambda e: e[0])

    production = np.ones((network.n_genes, 1), dtype=np.float32)
    knocked_down = any(e[3] for e in events)
    clamp = np.array(clamp_idx, dtype=int)
    values = (np.array(clamp_val, dtype=np.float32).reshape(len(clamp_idx), n_cells) if clamp_idx
              else np.zeros((0, n_cells), dtype=np.float32))

    def apply(step: int) -> None:
        nonlocal clamp, values
        for start, idx, vals, prod in events:
            if start != step:
                continue
            for i, f in prod.items():
                production[i] = f
                values[clamp == i] *= f  # a knocked-down input is clamped lower
            for i, v in zip(idx, vals, strict=True):
                keep = clamp != i
                clamp, values = clamp[keep], values[keep]
                clamp = np.append(clamp, i)
                values = np.vstack([values, np.full((1, n_cells), v, dtype=np.float32)])
        if clamp.size:
            x[clamp] = values

    records = None
    if record_every is not None:
        if record_every < 1:
            raise ValueError("record_every must be >= 1.")
        records = np.empty((n_steps // record_every + 1, n_cells, network.n_genes), dtype=np.float32)
    samples = None
    if sample_steps is not None:
        sample_steps = np.asarray(sample_steps, dtype=int)
        order = np.argsort(sample_steps, kind="stable")
        bounds = np.searchsorted(sample_steps[order], np.arange(n_steps + 2))
        samples = np.empty((n_cells, network.n_genes), dtype=np.float32)

    # all genes are updated; inputs and clamped genes are reset by apply() before each step
    sq = np.float32(noise * np.sqrt(dt))
    rate = np.float32(dt / network.tau)
    f = x.copy()
    buffers = (np.empty_like(x), np.empty_like(x))
    xi, tmp = np.empty_like(x), np.empty_like(x)
    for step in range(n_steps + 1):
        apply(step)
        if records is not None and step % record_every == 0:
            records[step // record_every] = x.T
        if samples is not None:
            sel = order[bounds[step]:bounds[step + 1]]
            if sel.size:
                samples[sel] = x[:, sel].T
        if step == n_steps:
            break
        h, nh = cn.hill(x, buffers, hill)
        cn.rule_fn(h, nh, f)
        if knocked_down:
            f *= production
        np.subtract(f, x, out=tmp)
        tmp *= rate
        if sq > 0:
            rng.standard_normal(out=xi, dtype=np.float32)
            np.add(f, x, out=f)  # f is rewritten by the next rule evaluation
            np.sqrt(f, out=f)
            xi *= f
            xi *= sq
            x += xi
        x += tmp
        np.clip(x, 0.0, 1.0, out=x)
    return x.T.copy(), records, samples


def run_dynamics(
    network: BooleanNetwork,
    x0: np.ndarray,
    *,
    n_steps: int,
    dt: float = 0.05,
    noise: float = 0.1,
    rng: np.random.Generator | int | None = None,
    perturbation: Perturbation | Sequence[Perturbation] | None = None,
    inputs: dict[str, float] | None = None,
    record_every: int = 1,
    hill: str = "standard",
) -> np.ndarray:
    """Simulate trajectories of many cells at once (Euler–Maruyama on Hill-type dynamics).

    Parameters
    ----------
    network
        The model (:func:`scagents.twin.read_model` / :func:`scagents.twin.load_model`).
    x0
        ``(n_cells, n_genes)`` initial activities, e.g. from :func:`initial_states`.
    n_steps
        Number of Euler steps.
    dt
        Step size (in units of the activity time constant ``tau``).
    noise
        Noise amplitude ``sigma`` (0 gives deterministic dynamics).
    rng
        Random generator or seed.
    perturbation
        A :class:`~scagents.perturbation.Perturbation` (or several applied together), active from
        step ``round(start_time * n_steps)``.
    inputs
        ``{input gene: activity}`` clamps for the whole run; other inputs stay at their ``x0`` value.
    record_every
        Record the state every this many steps.
    hill
        ``"standard"`` (default) Hill activation :math:`h(x) = x^n / (k^n + x^n)`, or
        ``"normalized"`` :math:`h(x) / h(1)` (Odefy), which keeps the model's Boolean fixed points.

    Returns
    -------
    numpy.ndarray
        ``(n_steps // record_every + 1, n_cells, n_genes)`` float32: the states at steps
        ``0, record_every, 2 * record_every, ...``.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    _, records, _ = integrate(network, x0, n_steps=n_steps, dt=dt, noise=noise, rng=rng,
                              perturbation=perturbation, inputs=inputs, record_every=record_every,
                              hill=hill)
    return records

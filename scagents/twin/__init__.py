"""scagents.twin — a mechanistic digital twin: Boolean-rule models simulated as Hill-type stochastic
dynamics, observed as single-cell RNA, ATAC and surface-protein counts with known ground truth.

>>> from scagents.twin import load_model, simulate
>>> from scagents.perturbation import Perturbation
>>> net = load_model("th")
>>> mdata = simulate(net, perturbations=[None, Perturbation("IFNG")], n_cells=300)
"""

from scagents.twin.dynamics import (
    classify_fate,
    compile_network,
    initial_states,
    run_dynamics,
)
from scagents.twin.models import DEFAULT_MODEL, list_models, load_model, shipped_model
from scagents.twin.rules import BooleanNetwork, read_model
from scagents.twin.simulate import simulate

__all__ = [
    "DEFAULT_MODEL",
    "BooleanNetwork",
    "classify_fate",
    "compile_network",
    "initial_states",
    "list_models",
    "load_model",
    "read_model",
    "run_dynamics",
    "shipped_model",
    "simulate",
]

"""Perturbation-response environments: predict how a cell responds to a perturbation.

An episode follows one control cell under one perturbation (Gymnasium :class:`PerturbationResponseEnv`)
or ``num_envs`` cells at once (:class:`PerturbationResponseVecEnv`, stepped in one NumPy call).

Observation (flat ``Box``, blocks named in ``env.modality_slices``)
    ``[state of the cell, one block per modality | perturbation encoding | pseudotime]``; the last
    two form the ``"context"`` block. The encoding (:mod:`scagents.envs.encoding`) is the summed
    gene embedding of the targets (a PCA of the *training* pseudobulk, so a held-out perturbation
    has a meaningful encoding), a one-hot kind and an unknown-target flag.
Action (flat ``Box``, blocks in ``env.action_slices``)
    The predicted post-perturbation *change* (delta from the control mean), per modality.
Reward
    ``-reward_scale · mean_m MSE_m(action_m, delta_m)``: the negative mean squared error against
    the observed (real data) or simulated (twin) delta, averaged over features within a modality
    and then over modalities (so a 6-protein panel counts as much as 300 genes). The best reward
    is 0, reached by ``action = delta``. ``info["reward_components"]`` splits the reward over the
    action dimensions (``-reward_scale · w_j (a_j - delta_j)²``, summing to the reward); since each
    depends only on its own action and the next observation does not depend on the action, a
    policy can be trained with one advantage per dimension
    (:attr:`scagents.policies.TrainConfig.reward_components`).
Residual mode (``baseline=`` of :class:`PerturbationResponseVecEnv` and :func:`predict_delta`)
    A baseline prediction ``b`` per perturbation (e.g. the linear model of
    :mod:`scagents.baselines`, fitted on the training perturbations) is appended to the
    observation as a ``"baseline"`` block, and the action is a *correction*: the prediction scored
    is ``b + action``. A policy whose mean is ~0 at initialisation therefore starts at the
    baseline.
Episode
    ``T = task.n_points`` steps. For static data ``T = 1``. For twin trajectories
    (:meth:`ResponseTask.from_twin` with ``n_points > 1``) step ``t`` observes the cell's state at
    pseudotime point ``t`` and is scored against the population delta at that point; the next
    observation is the same cell's state at point ``t + 1`` whatever the action (teacher forcing).

The data live in a :class:`ResponseTask`, built from the twin or from a real AnnData/MuData, and
split by perturbation (:meth:`ResponseTask.split`): a held-out perturbation is never in training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anndata as ad
import gymnasium as gym
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from scagents.envs.encoding import (
    as_perturbation,
    encode_perturbations,
    encoding_size,
    gene_embedding_from_effects,
)
from scagents.errors import DataError, ModalityError, PerturbationError
from scagents.perturbation import Perturbation

__all__ = [
    "ResponseTask",
    "PerturbationResponseEnv",
    "PerturbationResponseVecEnv",
    "predict_delta",
    "evaluate_policy",
]

CONTEXT = "context"
"""Name of the observation block holding the perturbation encoding and the pseudotime."""


# ================================================================================== the task data
@dataclass
class ResponseTask:
    """Control cells, perturbation targets and encodings behind the response environments.

    Build it with :meth:`from_twin` or :meth:`from_anndata`; split it with :meth:`split`.

    Attributes
    ----------
    modalities
        Modality names in observation/action order (``"rna"``, ``"atac"``, ``"prot"``, …).
    features
        Feature names per modality (genes, regions, proteins).
    states
        Per modality, ``(n_cells, T, d_m)`` float32 states of the control cells at each point.
    pseudotime
        ``(n_cells, T)`` float32 pseudotime of each control cell at each point.
    perturbations, labels
        The perturbations and their unique labels.
    deltas
        Per modality, ``(n_perturbations, T, d_m)`` float32: mean perturbed minus mean control.
    control_mean
        Per modality, ``(T, d_m)`` mean control state.
    embedding
        Genes × ``k`` gene embedding used by :meth:`encode` (from the training perturbations).
    action_bounds
        Per modality, the bound ``b`` of the action box ``[-b, b]``.
    gene_features
        A user-supplied embedding that replaces the PCA one (kept across splits), or ``None``.
    embedding_k
        Columns of the PCA embedding.
    source
        Where the data came from (``"twin:<model>"`` or ``"anndata"``).
    cell_states
        Optional per-cell states of the *perturbed* cells, ``{label: (n_cells_p, d) float32}``
        for the gene modality (:attr:`embedding_modality`) at the last point; kept only when the
        builder is called with ``keep_cells=True`` (e.g. to infer a network from the training
        cells, :mod:`scagents.evaluation`). :meth:`subset` / :meth:`split` keep the entries of
        the kept perturbations only.
    """

    modalities: tuple[str, ...]
    features: dict[str, list[str]]
    states: dict[str, np.ndarray]
    pseudotime: np.ndarray
    perturbations: list[Perturbation]
    labels: list[str]
    deltas: dict[str, np.ndarray]
    control_mean: dict[str, np.ndarray]
    action_bounds: dict[str, float]
    embedding: pd.DataFrame = field(default_factory=pd.DataFrame)
    gene_features: pd.DataFrame | None = None
    embedding_k: int = 8
    source: str = ""
    cell_states: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if not self.modalities:
            raise ModalityError("A ResponseTask needs at least one modality.")
        n_cells, n_points = self.pseudotime.shape
        for m in self.modalities:
            if m not in self.states or m not in self.deltas:
                raise ModalityError(f"Modality {m!r} has no states or deltas.")
            if self.states[m].shape[:2] != (n_cells, n_points):
                raise DataError(f"states[{m!r}] has shape {self.states[m].shape}, expected "
                                f"({n_cells}, {n_points}, d).")
            if self.deltas[m].shape != (len(self.labels), n_points, self.states[m].shape[2]):
                raise DataError(f"deltas[{m!r}] has shape {self.deltas[m].shape}, expected "
                                f"({len(self.labels)}, {n_points}, {self.states[m].shape[2]}).")
        if len(set(self.labels)) != len(self.labels):
            raise PerturbationError("Perturbation labels must be unique.")
        if self.embedding.empty:
            self.embedding = self._fit_embedding()

    # ------------------------------------------------------------------------------ shapes
    @property
    def n_cells(self) -> int:
        """Number of control cells."""
        return int(self.pseudotime.shape[0])

    @property
    def n_points(self) -> int:
        """Steps per episode ``T`` (pseudotime points)."""
        return int(self.pseudotime.shape[1])

    @property
    def n_perturbations(self) -> int:
        """Number of perturbations."""
        return len(self.labels)

    @property
    def n_groups(self) -> int:
        """Number of target gene sets and kinds (:meth:`target_groups`)."""
        return len(self.target_groups())

    def target_groups(self) -> list[list[int]]:
        """Positions of the perturbations grouped by target gene set and kind
        (:func:`scagents.perturbation.target_groups`): the units every split of this task moves
        together (``STAT2_P1`` and ``STAT2_P2``; not STAT2's knockout and its over-expression)."""
        from scagents.perturbation import target_groups

        return target_groups([p.targets for p in self.perturbations],
                             [p.kind for p in self.perturbations])

    @property
    def dims(self) -> dict[str, int]:
        """Features per modality."""
        return {m: int(self.states[m].shape[2]) for m in self.modalities}

    @property
    def encoding_dim(self) -> int:
        """Length of the perturbation encoding."""
        return encoding_size(self.embedding.shape[1])

    @property
    def encoding(self) -> np.ndarray:
        """``(n_perturbations, encoding_dim)`` encodings of the task's perturbations."""
        return self.encode(self.perturbations)

    @property
    def action_slices(self) -> dict[str, slice]:
        """Block of each modality in the flat action (and target) vector."""
        out, start = {}, 0
        for m, d in self.dims.items():
            out[m] = slice(start, start + d)
            start += d
        return out

    @property
    def modality_slices(self) -> dict[str, slice]:
        """Blocks of the flat observation: one per modality, then :data:`CONTEXT`."""
        out = dict(self.action_slices)
        start = sum(self.dims.values())
        out[CONTEXT] = slice(start, start + self.encoding_dim + 1)
        return out

    def __repr__(self) -> str:
        dims = ", ".join(f"{m}={d}" for m, d in self.dims.items())
        return (f"ResponseTask({self.source or 'data'}: {self.n_perturbations} perturbations, "
                f"{self.n_cells} control cells, T={self.n_points}, {dims}, "
                f"encoding={self.encoding_dim})")

    # ------------------------------------------------------------------------------ encoding
    @property
    def embedding_modality(self) -> str:
        """The modality whose features are genes (``"rna"`` if present)."""
        return "rna" if "rna" in self.modalities else self.modalities[0]

    def _fit_embedding(self) -> pd.DataFrame:
        if self.gene_features is not None:
            return self.gene_features.astype(np.float64)
        m = self.embedding_modality
        genes = pd.Index(self.features[m]).astype(str)
        control = pd.Series(self.control_mean[m][-1].astype(np.float64), index=genes)
        if self.n_perturbations == 0:
            return pd.DataFrame(np.zeros((len(genes), self.embedding_k)), index=genes,
                                columns=[f"PC{i + 1}" for i in range(self.embedding_k)])
        effects = pd.DataFrame(self.deltas[m][:, -1].astype(np.float64), index=self.labels,
                               columns=genes)
        return gene_embedding_from_effects(control, effects, k=self.embedding_k)

    def encode(self, perturbations: Sequence[Perturbation | str]) -> np.ndarray:
        """Encode perturbations with this task's gene embedding.

        Parameters
        ----------
        perturbations
            Perturbations or labels (they need not belong to the task).

        Returns
        -------
        numpy.ndarray
            ``(n, encoding_dim)`` float32 (see :mod:`scagents.envs.encoding`).
        """
        return encode_perturbations(perturbations, self.embedding)

    # ------------------------------------------------------------------------------ lookup
    def index(self, perturbation: Perturbation | str | int) -> int:
        """Position of a perturbation (by index, label, or equal :class:`Perturbation`)."""
        if isinstance(perturbation, int | np.integer):
            if not 0 <= int(perturbation) < self.n_perturbations:
                raise PerturbationError(f"Perturbation index {perturbation} is out of range "
                                        f"(0-{self.n_perturbations - 1}).")
            return int(perturbation)
        if isinstance(perturbation, str) and perturbation in self.labels:
            return self.labels.index(perturbation)
        p = as_perturbation(perturbation)
        for i, q in enumerate(self.perturbations):
            if (q.targets, q.kind) == (p.targets, p.kind):
                return i
        raise PerturbationError(f"Perturbation {perturbation!r} is not in this task; known: "
                                f"{self.labels[:10]}{' …' if self.n_perturbations > 10 else ''}.")

    def observed_delta(self, perturbation: Perturbation | str | int, *, modality: str | None = None,
                       point: int = -1) -> np.ndarray:
        """The observed/simulated delta of one perturbation.

        Parameters
        ----------
        perturbation
            Index, label or :class:`Perturbation`.
        modality
            One modality's block, or ``None`` for all modalities concatenated (action layout).
        point
            Pseudotime point (default the last).

        Returns
        -------
        numpy.ndarray
            1-D float64 delta.
        """
        i = self.index(perturbation)
        mods = self.modalities if modality is None else (self._check_modality(modality),)
        return np.concatenate([self.deltas[m][i, point] for m in mods]).astype(np.float64)

    def _check_modality(self, modality: str) -> str:
        if modality not in self.modalities:
            raise ModalityError(f"Modality {modality!r} is not in the task; it has "
                                f"{', '.join(self.modalities)}.")
        return modality

    # ------------------------------------------------------------------------------ splitting
    def subset(self, indices: Sequence[int], *, refit_embedding: bool = True) -> ResponseTask:
        """A task with only the perturbations at ``indices`` (same control cells).

        Parameters
        ----------
        indices
            Perturbation positions to keep.
        refit_embedding
            Recompute the gene embedding from the kept perturbations only.
        """
        idx = np.asarray(indices, dtype=int)
        new = replace(self, perturbations=[self.perturbations[i] for i in idx],
                      labels=[self.labels[i] for i in idx],
                      deltas={m: d[idx] for m, d in self.deltas.items()},
                      embedding=pd.DataFrame() if refit_embedding else self.embedding,
                      cell_states=None if self.cell_states is None else
                      {self.labels[i]: self.cell_states[self.labels[i]] for i in idx
                       if self.labels[i] in self.cell_states})
        return new

    def split(self, test: Sequence[Perturbation | str | int] | None = None, *,
              n_folds: int | None = None, fold: int = 0, test_fraction: float = 0.2,
              seed: int = 0) -> tuple[ResponseTask, ResponseTask]:
        """Split by perturbation into a training and a held-out task.

        The gene embedding of *both* tasks is refitted on the training perturbations only, so
        nothing of a held-out perturbation's data enters training (its encoding uses only its
        target names).

        Parameters
        ----------
        test
            Perturbations to hold out. If ``None``: fold ``fold`` of a shuffled ``n_folds``-fold
            split when ``n_folds`` is given, else a random ``test_fraction`` of them.
        n_folds, fold
            K-fold split over target gene sets and kinds (scikit-learn ``KFold(shuffle=True)``
            over :meth:`target_groups`): every label of one target set and kind (``STAT2_P1``,
            ``STAT2_P2``; ``STAT2g1``, ``STAT2g2``) is on one side. With one label per target set
            and kind this is the K-fold split over perturbations.
        test_fraction
            Share of the target gene sets held out (with all their labels) when neither ``test``
            nor ``n_folds`` is given.
        seed
            Seed of the shuffle.

        Returns
        -------
        train, test
            Two tasks with disjoint perturbations.
        """
        n = self.n_perturbations
        groups = self.target_groups()
        n_g = len(groups)
        if test is not None:
            test_idx = sorted({self.index(p) for p in test})
        elif n_folds is not None:
            from sklearn.model_selection import KFold

            if not 2 <= n_folds <= n_g or not 0 <= fold < n_folds:
                raise DataError(f"Need 2 ≤ n_folds ≤ {n_g} (target gene sets) and 0 ≤ fold < "
                                f"n_folds, got n_folds={n_folds}, fold={fold}.")
            splits = list(KFold(n_splits=n_folds, shuffle=True, random_state=seed)
                          .split(np.arange(n_g)))
            test_idx = sorted(i for g in splits[fold][1] for i in groups[g])
        else:
            n_test = int(round(test_fraction * n_g))
            if not 1 <= n_test < n_g:
                raise DataError(f"test_fraction={test_fraction} holds out {n_test} of {n_g} "
                                "target gene sets; both sides need at least one.")
            picked = np.random.default_rng(seed).choice(n_g, n_test, replace=False)
            test_idx = sorted(i for g in picked for i in groups[g])
        train_idx = [i for i in range(n) if i not in set(test_idx)]
        if not train_idx or not test_idx:
            raise DataError(f"The split leaves {len(train_idx)} training and {len(test_idx)} test "
                            "perturbations; both need at least one.")
        train = self.subset(train_idx, refit_embedding=True)
        held = self.subset(test_idx, refit_embedding=False)
        held.embedding = train.embedding
        if set(train.labels) & set(held.labels):  # an invariant, kept under python -O
            raise RuntimeError("held-out perturbation leaked into training")
        return train, held

    # ------------------------------------------------------------------------------ builders
    @classmethod
    def from_twin(cls, network="th", perturbations: Sequence[Perturbation | str] | None = None, *,
                  n_cells: int = 256, n_points: int = 1, n_steps: int = 400, dt: float = 0.05,
                  noise: float = 0.1, seed: int = 0, inputs: Mapping[str, float] | None = None,
                  modalities: Sequence[str] = ("rna", "atac", "prot"), embedding_k: int = 8,
                  gene_features: pd.DataFrame | None = None,
                  keep_cells: bool = False) -> ResponseTask:
        """Simulate control and perturbed trajectories on the twin.

        The same ``n_cells`` initial states and the same noise stream are used for the control and
        every perturbation (common random numbers), so deltas are low-variance. States are the
        noiseless activities seen through each modality:

        * ``rna``: every gene's activity;
        * ``atac``: accessibility of each regulated gene's promoter, its regulatory input ``f_g(x)``
          (as ``mdata["atac"].layers["accessibility"]`` of :func:`scagents.twin.simulate`);
        * ``prot``: activity of the model's surface genes (all genes if it names none).

        Parameters
        ----------
        network
            A :class:`~scagents.twin.BooleanNetwork` or shipped model name.
        perturbations
            Perturbations or labels (``"IFNG"``, ``"TBX21 overexpression"``); ``None``: a knockout
            and an overexpression of every gene with a rule.
        n_cells
            Control cells (and cells simulated per perturbation).
        n_points
            Pseudotime points ``T`` (episode length): states at ``(t + 1) / T`` of the run.
        n_steps, dt, noise, inputs
            Dynamics settings of :func:`scagents.twin.run_dynamics`; ``n_steps`` is rounded down
            to a multiple of ``n_points``.
        seed
            Seed of the initial states and the noise.
        modalities
            Any of ``"rna"``, ``"atac"``, ``"prot"``.
        embedding_k, gene_features
            Gene-embedding size, or a fixed genes × features table to use instead.
        keep_cells
            Keep every perturbed cell's final gene-modality state in :attr:`cell_states`.

        Returns
        -------
        ResponseTask
        """
        from scagents.twin import compile_network, initial_states, load_model, run_dynamics

        net = load_model(network) if isinstance(network, str) else network
        bad = [m for m in modalities if m not in ("rna", "atac", "prot")]
        if bad or not modalities:
            raise ModalityError(f"Unknown twin modalities {bad}; choose from rna, atac, prot.")
        if n_points < 1 or n_cells < 2 or n_steps < n_points:
            raise DataError("Need n_points ≥ 1, n_cells ≥ 2 and n_steps ≥ n_points.")
        if perturbations is None:
            perturbations = [Perturbation((g,), kind=k) for g in net.genes if g not in net.inputs
                             for k in ("knockout", "overexpression")]
        perts = []
        for p in perturbations:
            p = as_perturbation(p)
            targets = tuple(net.resolve_gene(t) for t in p.targets)
            perts.append(Perturbation(targets, kind=p.kind, strength=p.strength,
                                      start_time=p.start_time))
        labels = [_twin_label(p) for p in perts]
        if len(set(labels)) != len(labels):
            raise PerturbationError(f"Duplicated perturbations in {labels}.")
        every = n_steps // n_points
        cn = compile_network(net)
        dyn = np.asarray(cn.dynamic, dtype=int)
        surface = [net.genes.index(g) for g in (net.surface or net.genes)]

        def views(records: np.ndarray) -> dict[str, np.ndarray]:
            x = records[1:]                                      # (T, cells, genes)
            out = {}
            if "rna" in modalities:
                out["rna"] = x
            if "atac" in modalities:
                flat = x.reshape(-1, x.shape[-1])
                f = np.clip(cn.rule_values(np.ascontiguousarray(flat.T, dtype=np.float64)), 0, 1).T
                out["atac"] = f[:, dyn].reshape(*x.shape[:2], len(dyn))
            if "prot" in modalities:
                out["prot"] = x[..., surface]
            return {m: out[m] for m in modalities}

        x0 = initial_states(net, n_cells, np.random.default_rng([seed, 0]), dict(inputs or {}))

        def run(p: Perturbation | None) -> dict[str, np.ndarray]:
            rec = run_dynamics(net, x0, n_steps=every * n_points, dt=dt, noise=noise,
                               rng=np.random.default_rng([seed, 1]), perturbation=p,
                               inputs=dict(inputs or {}), record_every=every)
            return views(rec)

        control = run(None)
        states = {m: np.ascontiguousarray(v.transpose(1, 0, 2), dtype=np.float32)
                  for m, v in control.items()}
        control_mean = {m: v.mean(axis=1).astype(np.float32) for m, v in control.items()}
        deltas = {m: np.empty((len(perts), n_points, v.shape[-1]), np.float32)
                  for m, v in control.items()}
        gene_mod = "rna" if "rna" in modalities else tuple(modalities)[0]
        cell_states: dict[str, np.ndarray] | None = {} if keep_cells else None
        for i, p in enumerate(perts):
            for m, v in run(p).items():
                deltas[m][i] = v.mean(axis=1) - control_mean[m]
                if cell_states is not None and m == gene_mod:
                    cell_states[labels[i]] = np.ascontiguousarray(v[-1], dtype=np.float32)
        features = {"rna": list(net.genes), "atac": [f"{net.genes[j]}_prom" for j in dyn],
                    "prot": [f"ADT_{net.genes[j]}" for j in surface]}
        pt = np.tile(((np.arange(n_points) + 1) / n_points).astype(np.float32), (n_cells, 1))
        return cls(modalities=tuple(modalities), features={m: features[m] for m in modalities},
                   states=states, pseudotime=pt, perturbations=perts, labels=labels,
                   deltas=deltas, control_mean=control_mean,
                   action_bounds={m: 1.0 for m in modalities}, gene_features=gene_features,
                   embedding_k=embedding_k, source=f"twin:{net.name}", cell_states=cell_states)

    @classmethod
    def from_anndata(cls, adata: ad.AnnData | md.MuData, *,
                     layer: str | None | Mapping[str, str | None] = "lognorm",
                     modalities: Sequence[str] | None = None,
                     n_top_features: int | Mapping[str, int] | None = None,
                     max_control_cells: int = 2000, min_cells: int = 5, embedding_k: int = 8,
                     gene_features: pd.DataFrame | None = None, seed: int = 0,
                     keep_cells: bool = False) -> ResponseTask:
        """Build a static (``T = 1``) task from a real or simulated perturbation data set.

        Parameters
        ----------
        adata
            An AnnData (one modality, called ``"rna"``) or a MuData; the standard ``.obs`` columns
            (``perturbation``, ``target_genes``, ``perturbation_type``, ``is_control``) are written
            by :func:`scagents.data.standardize` on a copy if they are missing.
        layer
            Layer per modality (a name for all, or ``{modality: name}``); ``"lognorm"`` is computed
            (``log1p`` of counts scaled to 10⁴ per cell) when the layer is absent; ``None`` = ``X``.
        modalities
            Modalities of a MuData to use (default all).
        n_top_features
            Keep the most variable features per modality (an int for all, or per modality).
        max_control_cells
            Control cells kept as episode starts (a random subset; the control *mean* uses all).
        min_cells
            Perturbations with fewer cells are left out.
        embedding_k, gene_features
            Gene-embedding size, or a fixed genes × features table to use instead.
        seed
            Seed of the control-cell subset.
        keep_cells
            Keep every perturbed cell's gene-modality values in :attr:`cell_states`.

        Returns
        -------
        ResponseTask
        """
        from scagents.data import lognormalize, standardize

        if isinstance(adata, md.MuData):
            names = list(modalities) if modalities is not None else list(adata.mod)
            unknown = [m for m in names if m not in adata.mod]
            if unknown:
                raise ModalityError(f"Modalities {unknown} are not in the MuData ({list(adata.mod)}).")
            rna_name = "rna" if "rna" in adata.mod else names[0]
            blocks = {m: adata.mod[m] for m in names}
            ref = adata.mod[rna_name]
        elif isinstance(adata, ad.AnnData):
            blocks = {"rna": adata}
            ref = adata
        else:
            raise DataError(f"from_anndata() takes an AnnData or MuData, got {type(adata).__name__}.")
        if "is_control" not in ref.obs or "target_genes" not in ref.obs:
            ref = standardize(ref, copy=True)
        obs = ref.obs
        is_ctrl = obs["is_control"].fillna(False).to_numpy(dtype=bool)
        if not is_ctrl.any():
            raise PerturbationError("No control cells (obs['is_control'] is all False); run "
                                    "scagents.data.standardize(adata, control_labels=[...]).")
        mats, features = {}, {}
        for m, a in blocks.items():
            if not a.obs_names.equals(ref.obs_names):
                a = a[ref.obs_names]
            lay = layer.get(m, "lognorm") if isinstance(layer, Mapping) else layer
            X = _modality_matrix(a, lay, lognormalize)
            names_m = a.var_names.astype(str).tolist()
            top = n_top_features.get(m) if isinstance(n_top_features, Mapping) else n_top_features
            if top is not None and top < X.shape[1]:
                keep = np.sort(np.argsort(-X.var(axis=0), kind="stable")[:top])
                X, names_m = X[:, keep], [names_m[j] for j in keep]
            mats[m], features[m] = X, names_m
        labels_all = obs["perturbation"].astype(str).to_numpy()
        targets_all = obs["target_genes"].astype(str).to_numpy()
        kinds_all = obs["perturbation_type"].astype(str).to_numpy()
        perts, labels, groups = [], [], []
        for lab in sorted(set(labels_all[~is_ctrl])):
            cells = np.flatnonzero((labels_all == lab) & ~is_ctrl)
            pert = Perturbation.from_obs(targets_all[cells[0]], kinds_all[cells[0]])
            if len(cells) < min_cells or pert is None:
                continue
            perts.append(pert)
            labels.append(lab)
            groups.append(cells)
        if not perts:
            raise PerturbationError(f"No perturbation has at least {min_cells} cells.")
        ctrl_idx = np.flatnonzero(is_ctrl)
        rng = np.random.default_rng(seed)
        start_idx = np.sort(rng.choice(ctrl_idx, min(max_control_cells, len(ctrl_idx)), replace=False))
        control_mean = {m: X[ctrl_idx].mean(axis=0, keepdims=True) for m, X in mats.items()}
        deltas = {m: np.stack([X[g].mean(axis=0) for g in groups])[:, None, :] - control_mean[m][None]
                  for m, X in mats.items()}
        states = {m: X[start_idx][:, None, :] for m, X in mats.items()}
        gene_mod = "rna" if "rna" in mats else next(iter(mats))
        cell_states = ({lab: np.ascontiguousarray(mats[gene_mod][g], dtype=np.float32)
                        for lab, g in zip(labels, groups, strict=True)} if keep_cells else None)
        if "pseudotime" in obs:
            pt = obs["pseudotime"].to_numpy(dtype=np.float32)[start_idx][:, None]
        else:
            pt = np.zeros((len(start_idx), 1), np.float32)
        bounds = {m: float(max(np.abs(X).max(), 1e-3)) for m, X in mats.items()}
        return cls(modalities=tuple(mats), features=features,
                   states={m: np.ascontiguousarray(s, dtype=np.float32) for m, s in states.items()},
                   pseudotime=np.ascontiguousarray(pt, dtype=np.float32), perturbations=perts,
                   labels=labels, deltas={m: d.astype(np.float32) for m, d in deltas.items()},
                   control_mean={m: c.astype(np.float32) for m, c in control_mean.items()},
                   action_bounds=bounds, gene_features=gene_features, embedding_k=embedding_k,
                   source="anndata", cell_states=cell_states)

    @classmethod
    def from_backed(cls, source, *, n_top_genes: int | None = None, max_control_cells: int = 2000,
                    min_cells: int = 5, embedding_k: int = 8, target_sum: float = 1e4,
                    seed: int = 0, chunk_size: int | None = None,
                    standardize_kwargs: dict | None = None) -> ResponseTask:
        """A static (``T = 1``) task from a backed ``.h5ad``, in one streaming pass plus a small read.

        Equal to ``from_anndata(adata, n_top_features=n_top_genes, ...)`` on the same data loaded
        in memory (``lognorm`` layer), but ``X`` is never loaded whole: the arrays come from
        :func:`scagents.data.backed.response_arrays_backed` (see there for the parameters;
        ``chunk_size=None`` uses its default).

        Returns
        -------
        ResponseTask
            With ``source="anndata-backed"``.
        """
        from scagents.data.backed import response_arrays_backed

        kw = {} if chunk_size is None else {"chunk_size": chunk_size}
        r = response_arrays_backed(source, n_top_genes=n_top_genes,
                                   max_control_cells=max_control_cells, min_cells=min_cells,
                                   target_sum=target_sum, seed=seed,
                                   standardize_kwargs=standardize_kwargs, **kw)
        return cls(modalities=("rna",), features={"rna": r.genes},
                   states={"rna": np.ascontiguousarray(r.start_states[:, None, :])},
                   pseudotime=r.pseudotime, perturbations=r.perturbations, labels=r.labels,
                   deltas={"rna": r.deltas}, control_mean={"rna": r.control_mean},
                   action_bounds={"rna": r.absmax}, embedding_k=embedding_k,
                   source="anndata-backed")




def _twin_label(p: Perturbation) -> str:
    label = "+".join(p.targets)
    return label if p.kind == "knockout" else f"{label} {p.kind}"


def _modality_matrix(a: ad.AnnData, layer: str | None, lognormalize: Callable) -> np.ndarray:
    if layer is None:
        X = a.X
    elif layer in a.layers:
        X = a.layers[layer]
    elif layer == "lognorm":
        X = lognormalize(a, copy=True).layers["lognorm"]
    else:
        raise DataError(f"Layer {layer!r} is not in the data (layers: {list(a.layers) or 'none'}); "
                        "pass layer=None to use X, or 'lognorm' to compute log-normalised values.")
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise DataError("The expression values contain NaN or infinite entries; fill or drop them.")
    return X


# ================================================================================== the core
class _ResponseCore:
    """Precomputed flat arrays of a task; vectorised observation and reward for index arrays."""

    def __init__(self, task: ResponseTask, *, reward_scale: float = 1.0,
                 modalities: Sequence[str] | None = None, baseline: np.ndarray | None = None):
        self.task = task
        mods = tuple(modalities) if modalities is not None else task.modalities
        self.modalities = mods
        self.cells = np.ascontiguousarray(np.concatenate([task.states[m] for m in mods], axis=2))
        self.targets = np.ascontiguousarray(np.concatenate([task.deltas[m] for m in mods], axis=2))
        self.context = np.ascontiguousarray(task.encoding, dtype=np.float32)
        self.pt = task.pseudotime
        dims = [task.dims[m] for m in mods]
        self.weights = np.concatenate([np.full(d, 1.0 / (len(mods) * d)) for d in dims]
                                      ).astype(np.float32)
        self.reward_scale = np.float32(reward_scale)
        self.d_state, self.d_enc = self.cells.shape[2], self.context.shape[1]
        self.act_dim = self.targets.shape[2]
        self.baseline = None
        if baseline is not None:
            base = np.asarray(baseline, dtype=np.float32)
            if base.ndim == 2:
                base = np.repeat(base[:, None, :], self.targets.shape[1], axis=1)
            if base.shape != self.targets.shape:
                raise DataError(f"baseline has shape {np.shape(baseline)}; expected "
                                f"{self.targets.shape} (perturbations, points, action size) or "
                                f"{(self.targets.shape[0], self.act_dim)}.")
            self.baseline = np.ascontiguousarray(base)
        self.d_base = 0 if self.baseline is None else self.act_dim
        self.obs_dim = self.d_state + self.d_enc + 1 + self.d_base
        self.act_high = np.concatenate([np.full(d, task.action_bounds[m], np.float32)
                                        for m, d in zip(mods, dims, strict=True)])
        starts = np.cumsum([0, *dims])
        self.mod_slices = {m: slice(int(starts[i]), int(starts[i + 1])) for i, m in enumerate(mods)}

    def observe(self, ci: np.ndarray, pi: np.ndarray, k: int | np.ndarray) -> np.ndarray:
        out = np.empty((len(ci), self.obs_dim), np.float32)
        out[:, : self.d_state] = self.cells[ci, k]
        out[:, self.d_state: self.d_state + self.d_enc] = self.context[pi]
        out[:, self.d_state + self.d_enc] = self.pt[ci, k]
        if self.baseline is not None:
            out[:, self.d_state + self.d_enc + 1:] = self.baseline[pi, k]
        return out

    def slices(self, task_slices: Mapping[str, slice]) -> dict[str, slice]:
        """Observation blocks: the task's, plus ``"baseline"`` in residual mode."""
        out = dict(task_slices)
        if self.baseline is not None:
            start = self.d_state + self.d_enc + 1
            out["baseline"] = slice(start, start + self.d_base)
        return out

    def squared_error(self, action: np.ndarray, pi: np.ndarray, k: int | np.ndarray) -> np.ndarray:
        a = np.asarray(action, dtype=np.float32).reshape(len(pi), self.act_dim)
        err = a - self.targets[pi, k]
        if self.baseline is not None:
            err += self.baseline[pi, k]
        np.square(err, out=err)
        return err

    def reward(self, action: np.ndarray, pi: np.ndarray, k: int | np.ndarray) -> np.ndarray:
        return self.reward_and_components(action, pi, k)[0]

    def reward_and_components(self, action: np.ndarray, pi: np.ndarray, k: int | np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
        """Rewards ``(n,)`` and their split over action dimensions ``(n, act_dim)`` (summing to them)."""
        comps = self.squared_error(action, pi, k)
        comps *= -self.weights * self.reward_scale
        return comps.sum(axis=1), comps

    def spaces(self) -> tuple[gym.spaces.Box, gym.spaces.Box]:
        obs = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        act = gym.spaces.Box(-self.act_high, self.act_high, dtype=np.float32)
        return obs, act


def _check_task(task: Any) -> ResponseTask:
    if not isinstance(task, ResponseTask):
        raise DataError(f"Expected a ResponseTask, got {type(task).__name__}; build one with "
                        "ResponseTask.from_twin(...) or ResponseTask.from_anndata(adata).")
    if task.n_perturbations == 0:
        raise PerturbationError("The task has no perturbation to sample episodes from.")
    return task


# ================================================================================== single env
class PerturbationResponseEnv(gym.Env):
    """Gymnasium environment: predict one control cell's response to one perturbation.

    See the module docstring for the observation, action, reward and episode.

    Parameters
    ----------
    task
        The data (:class:`ResponseTask`).
    reward_scale
        Multiplies the negative error.

    Attributes
    ----------
    modality_slices
        Observation blocks (one per modality, then ``"context"``), used by
        :func:`scagents.policies.train` to build one branch per modality.
    action_slices
        Action blocks, one per modality.

    Notes
    -----
    ``reset(options={"perturbation": label_or_index, "cell": index})`` fixes the episode.
    ``info`` holds ``perturbation`` (label), ``point`` and, after a step, ``mse`` per modality.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, task: ResponseTask, *, reward_scale: float = 1.0):
        self.task = _check_task(task)
        self._core = _ResponseCore(task, reward_scale=reward_scale)
        self.observation_space, self.action_space = self._core.spaces()
        self.modality_slices = task.modality_slices
        self.action_slices = task.action_slices
        self._ci = np.zeros(1, dtype=np.int64)
        self._pi = np.zeros(1, dtype=np.int64)
        self._k = 0

    def _info(self) -> dict[str, Any]:
        return {"perturbation": self.task.labels[int(self._pi[0])], "point": self._k}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options.get("perturbation") is not None:
            self._pi[0] = self.task.index(options["perturbation"])
        else:
            self._pi[0] = self.np_random.integers(self.task.n_perturbations)
        if options.get("cell") is not None:
            self._ci[0] = int(options["cell"]) % self.task.n_cells
        else:
            self._ci[0] = self.np_random.integers(self.task.n_cells)
        self._k = 0
        return self._core.observe(self._ci, self._pi, 0)[0], self._info()

    def step(self, action):
        core = self._core
        sq = core.squared_error(action, self._pi, self._k)[0]
        comps = (-sq * core.weights * core.reward_scale).astype(np.float32)
        reward = float(comps.sum(dtype=np.float64))
        mse = {m: float(sq[s].mean()) for m, s in core.mod_slices.items()}
        self._k += 1
        terminated = self._k >= self.task.n_points
        k = min(self._k, self.task.n_points - 1)
        obs = core.observe(self._ci, self._pi, k)[0]
        info = {**self._info(), "mse": mse, "reward_components": comps}
        return obs, reward, terminated, False, info


# ================================================================================== vector env
class PerturbationResponseVecEnv(VectorEnv):
    """``num_envs`` response episodes stepped together in one NumPy call (what training uses).

    Every reset draws, for each copy, a control cell and a perturbation uniformly at random. All
    copies have the same episode length ``T``, so they end together and are reset in the same
    call (``SAME_STEP`` autoreset: the returned observation starts the next episode, the final one
    is in ``infos["final_obs"]`` with mask ``infos["_final_obs"]``).

    Parameters
    ----------
    task
        The data (:class:`ResponseTask`).
    num_envs
        Parallel episodes per call.
    reward_scale
        Multiplies the negative error.
    baseline
        Residual mode (see the module docstring): ``(n_perturbations, d_action)`` or
        ``(n_perturbations, T, d_action)`` baseline deltas of the task's perturbations, appended
        to the observation as a ``"baseline"`` block and added to the action before scoring.
    """

    def __init__(self, task: ResponseTask, num_envs: int = 256, *, reward_scale: float = 1.0,
                 baseline: np.ndarray | None = None):
        if num_envs < 1:
            raise DataError(f"num_envs must be positive, got {num_envs}.")
        self.task = _check_task(task)
        self._core = _ResponseCore(task, reward_scale=reward_scale, baseline=baseline)
        self.num_envs = int(num_envs)
        self.single_observation_space, self.single_action_space = self._core.spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
        self.modality_slices = self._core.slices(task.modality_slices)
        self.action_slices = task.action_slices
        self._rng = np.random.default_rng()
        self._ci = np.zeros(self.num_envs, np.int64)
        self._pi = np.zeros(self.num_envs, np.int64)
        self._k = 0

    def _sample(self) -> None:
        self._ci = self._rng.integers(self.task.n_cells, size=self.num_envs)
        self._pi = self._rng.integers(self.task.n_perturbations, size=self.num_envs)
        self._k = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._sample()
        return self._core.observe(self._ci, self._pi, 0), {"perturbation_index": self._pi.copy()}

    def step(self, actions):
        core = self._core
        rewards, comps = core.reward_and_components(actions, self._pi, self._k)
        rewards = rewards.astype(np.float64)
        self._k += 1
        done = self._k >= self.task.n_points
        infos: dict[str, Any] = {"reward_components": comps}
        if done:
            infos["final_obs"] = core.observe(self._ci, self._pi, self._k - 1)
            infos["_final_obs"] = np.ones(self.num_envs, dtype=bool)
            self._sample()
        obs = core.observe(self._ci, self._pi, self._k)
        terminated = np.full(self.num_envs, done)
        truncated = np.zeros(self.num_envs, dtype=bool)
        return obs, rewards, terminated, truncated, infos


# ================================================================================== evaluation
def _policy_fn(policy: Any) -> Callable[[np.ndarray], np.ndarray]:
    if hasattr(policy, "predict"):
        return lambda obs: np.asarray(policy.predict(obs, deterministic=True))
    if callable(policy):
        return lambda obs: np.asarray(policy(obs))
    raise TypeError(f"policy must have .predict(obs, deterministic=True) or be callable, got "
                    f"{type(policy).__name__}.")


def predict_delta(policy: Any, task: ResponseTask, perturbation: Perturbation | str | int, *,
                  modality: str | None = None, point: int = -1,
                  max_cells: int | None = 512, baseline: np.ndarray | None = None) -> np.ndarray:
    """A policy's predicted delta for one perturbation, averaged over control cells.

    Parameters
    ----------
    policy
        A trained :class:`scagents.policies.ActorCritic` (its deterministic mean is used) or a
        callable mapping a batch of observations to a batch of actions.
    task
        The task whose control cells and embedding are used (typically the held-out task).
    perturbation
        Index, label or :class:`Perturbation`; one not in the task is encoded from its targets.
    modality
        Return one modality's block, or ``None`` for all (the action layout).
    point
        Pseudotime point.
    max_cells
        Use at most this many control cells (the first ones); ``None`` uses all.
    baseline
        Residual mode: the baseline deltas of ``task``'s perturbations (as for
        :class:`PerturbationResponseVecEnv`); the prediction is baseline + mean correction, and
        ``perturbation`` must then belong to ``task``.

    Returns
    -------
    numpy.ndarray
        1-D float64 predicted delta, comparable with :meth:`ResponseTask.observed_delta`.
    """
    core = _ResponseCore(task, baseline=baseline)
    n = task.n_cells if max_cells is None else min(max_cells, task.n_cells)
    ci = np.arange(n)
    try:
        enc = core.context[task.index(perturbation)]
    except PerturbationError:
        if isinstance(perturbation, int | np.integer):
            raise
        enc = task.encode([perturbation])[0]
    k = point % task.n_points
    if core.baseline is not None:
        pi = np.full(n, task.index(perturbation), dtype=np.int64)
        obs = core.observe(ci, pi, k)
    else:
        obs = core.observe(ci, np.zeros(n, dtype=np.int64), k)
        obs[:, core.d_state: core.d_state + core.d_enc] = enc
    actions = _policy_fn(policy)(obs).reshape(n, core.act_dim)
    mean = actions.mean(axis=0).astype(np.float64)
    if core.baseline is not None:
        mean += core.baseline[pi[0], k]
    if modality is None:
        return mean
    return mean[core.mod_slices[task._check_modality(modality)]]


def evaluate_policy(policy: Any, task: ResponseTask, *, modality: str | None = None, k: int = 20,
                    max_cells: int | None = 512, baseline: np.ndarray | None = None
                    ) -> pd.DataFrame:
    """Score a policy on every perturbation of a (held-out) task with scagents.metrics.

    Parameters
    ----------
    policy
        As in :func:`predict_delta`.
    task
        Typically the test task of :meth:`ResponseTask.split`.
    modality
        Modality to score (default: the gene modality, ``"rna"`` when present).
    k
        Top-DE genes of :func:`scagents.metrics.pearson_delta_topk`.
    max_cells
        Control cells averaged per prediction.
    baseline
        Residual mode, as in :func:`predict_delta` (baseline deltas of ``task``'s perturbations).

    Returns
    -------
    pandas.DataFrame
        One row per perturbation: ``perturbation``, ``modality`` and every key of
        :func:`scagents.metrics.prediction_report`.
    """
    from scagents.metrics import prediction_report

    mod = modality or task.embedding_modality
    rows = []
    for i, label in enumerate(task.labels):
        pred = predict_delta(policy, task, i, modality=mod, max_cells=max_cells,
                             baseline=baseline)
        obs = task.observed_delta(i, modality=mod)
        rows.append({"perturbation": label, "modality": mod,
                     **prediction_report(pred, obs, k=min(k, len(obs)))})
    return pd.DataFrame(rows)

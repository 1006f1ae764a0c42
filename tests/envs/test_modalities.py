"""Per-modality views of a ResponseTask (scagents.envs.modalities): RNA, ATAC, joint, protein."""

from __future__ import annotations

import numpy as np
import pytest

from scagents.envs import PerturbationResponseVecEnv, ResponseTask
from scagents.envs.modalities import modality_task, twin_feature_genes
from scagents.errors import DataError, ModalityError
from scagents.evaluation import heldout_scores

PERTS = ["IFNG", "TBX21", "GATA3", "STAT1", "STAT6", "IL4", "TBX21 overexpression",
         "GATA3 overexpression", "STAT4", "SOCS1"]


@pytest.fixture(scope="module")
def full() -> ResponseTask:
    return ResponseTask.from_twin("th", PERTS, n_cells=48, n_steps=200, seed=0,
                                  modalities=("rna", "atac", "prot"), keep_cells=True)


def test_twin_feature_genes_strip_the_twin_naming(full):
    genes = twin_feature_genes(full)
    assert set(genes) == {"atac", "prot"}
    assert genes["atac"] == [f.removesuffix("_prom") for f in full.features["atac"]]
    assert genes["prot"] == [f.removeprefix("ADT_") for f in full.features["prot"]]
    assert set(genes["atac"]) <= set(full.features["rna"])       # every promoter belongs to a gene


def test_twin_feature_genes_refuses_real_data(full):
    from dataclasses import replace

    with pytest.raises(DataError, match="twin task"):
        twin_feature_genes(replace(full, source="anndata"))


def test_atac_view_keeps_atac_only_and_knows_the_targets(full):
    genes = twin_feature_genes(full)
    atac = modality_task(full, ("atac",), feature_genes=genes)
    assert atac.modalities == ("atac",) and atac.embedding_modality == "atac"
    assert atac.features["atac"] == genes["atac"]
    np.testing.assert_array_equal(atac.deltas["atac"], full.deltas["atac"])
    np.testing.assert_array_equal(atac.states["atac"], full.states["atac"])
    assert atac.cell_states is None                 # the kept cells hold RNA values, not ATAC
    assert atac.embedding.index.tolist() == genes["atac"]
    # the last encoding column flags an unknown target: gene names make every target known,
    # the raw promoter names make every target unknown
    assert atac.encoding[:, -1].sum() == 0
    raw = modality_task(full, ("atac",))
    assert raw.encoding[:, -1].sum() == raw.n_perturbations


def test_joint_view_layout_and_cells(full):
    joint = modality_task(full, ("rna", "atac"), feature_genes=twin_feature_genes(full))
    d_rna, d_atac = full.dims["rna"], full.dims["atac"]
    assert joint.action_slices == {"rna": slice(0, d_rna), "atac": slice(d_rna, d_rna + d_atac)}
    assert joint.cell_states is full.cell_states   # RNA is still the gene modality
    i = joint.index("TBX21")
    np.testing.assert_array_equal(joint.observed_delta(i),
                                  np.concatenate([full.deltas["rna"][i, -1],
                                                  full.deltas["atac"][i, -1]]))
    env = PerturbationResponseVecEnv(joint, num_envs=4)
    assert set(env.modality_slices) == {"rna", "atac", "context"}
    # the RNA embedding is the one of an RNA-only view
    rna = modality_task(full, ("rna",))
    np.testing.assert_allclose(joint.encoding, rna.encoding)


def test_heldout_scores_on_the_atac_view_score_atac(full):
    atac = modality_task(full, ("atac",), feature_genes=twin_feature_genes(full))
    df = heldout_scores(atac, method="linear", seed=0, fold=0, n_folds=5)
    assert len(df) == 2 and np.isfinite(df["mse"]).all()
    _, test = atac.split(n_folds=5, fold=0, seed=0)
    obs = np.stack([test.observed_delta(i) for i in range(test.n_perturbations)])
    zero = heldout_scores(atac, method="no_change", seed=0, fold=0, n_folds=5)
    np.testing.assert_allclose(zero["mse"].to_numpy(), (obs ** 2).mean(axis=1), rtol=1e-6)


@pytest.mark.parametrize("mods, kw, err, match", [
    ((), {}, ModalityError, "at least one"),
    (("rna", "rna"), {}, ModalityError, "repeat"),
    (("hic",), {}, ModalityError, "not in the task"),
    (("atac",), {"feature_genes": {"atac": ["A", "B"]}}, DataError, "one gene per feature"),
])
def test_bad_requests_get_one_clear_error(full, mods, kw, err, match):
    with pytest.raises(err, match=match):
        modality_task(full, mods, **kw)


def test_repeated_genes_are_refused(full):
    genes = ["STAT1"] * full.dims["atac"]
    with pytest.raises(DataError, match="repeats"):
        modality_task(full, ("atac",), feature_genes={"atac": genes})

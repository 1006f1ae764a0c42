"""Validation and standardisation: the standard obs columns and one clear error per bad input."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scagents import data as D
from scagents.errors import DataError, PerturbationError
from tests.conftest import shared_file


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_adata(n_per_group: int = 3, labels=("non-targeting", "STAT1", "IRF1+STAT1"), sparse=False,
               key="gene", X=None) -> ad.AnnData:
    lab = np.repeat(list(labels), n_per_group)
    n = len(lab)
    if X is None:
        X = np.random.default_rng(1).poisson(3.0, size=(n, 5)).astype(np.float32)
    obs = pd.DataFrame({key: lab}, index=[f"cell{i}" for i in range(n)])
    var = pd.DataFrame(index=["STAT1", "IRF1", "GAPDH", "CBL", "UBASH3B"])
    return ad.AnnData(sp.csr_matrix(X) if sparse else X, obs=obs, var=var)


# ---------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------


def test_papalexi_standardize():
    adata = D.load(shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"))
    obs = adata.obs
    assert int(obs["is_control"].sum()) == 2386
    rec = adata.uns["scagents"]["data"]
    assert rec["is_counts"] is True
    assert rec["control_labels"] == ["non-targeting"] and rec["perturbation_key"] == "perturbation"
    targets = set(obs.loc[~obs["is_control"], "target_genes"])
    assert len(targets) == 25 and {"IFNGR1", "STAT1", "IRF1", "JAK2", "CAV1"} <= targets
    assert set(obs.loc[obs["is_control"], "target_genes"]) == {""}
    assert set(obs["perturbation_type"]) == {"knockout", "control"}
    assert isinstance(obs["perturbation"].dtype, pd.CategoricalDtype)
    assert obs["is_control"].dtype == bool


def test_kang_stimulation():
    path = shared_file("stimulation/kang2018_ifnb_pbmc.h5ad")
    before = sha256(path)
    adata = D.load(path)  # the 'stim' column is found and recognised as a stimulation
    obs = adata.obs
    assert adata.uns["scagents"]["data"]["perturbation_key"] == "stim"
    assert obs["is_control"].sum() == 1000
    assert (obs.loc[obs["stim"] == "CTRL", "is_control"]).all()
    assert set(obs.loc[~obs["is_control"], "perturbation_type"]) == {"stimulation"}
    assert list(obs["stim"].cat.categories) == ["CTRL", "STIM"]  # original column kept
    explicit = D.load(path, perturbation_key="stim", perturbation_type="stimulation")
    assert explicit.obs["perturbation_type"].equals(obs["perturbation_type"])
    assert sha256(path) == before


@pytest.mark.parametrize("rel", ["multiome/pbmc5k_citeseq_small.h5ad", "multiome/mimitou2019_citeseq_pbmc.h5ad",
                                 "multiome/pbmc_multiome_small.h5mu"])
def test_multiome_without_perturbation_column(rel):
    data = D.read(shared_file(rel))
    with pytest.raises(PerturbationError, match="No perturbation (column|labels).*perturbation_key=.*--perturbation-key"):
        D.standardize(data)


def test_no_obs_columns_says_the_cells_look_unperturbed():
    import anndata as ad
    import numpy as np

    adata = ad.AnnData(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(PerturbationError, match="obs has no columns.*--perturbation-key.*without --data"):
        D.standardize(adata)


def test_scicar_time_as_stimulation():
    adata = D.load(shared_file("multiome/cao2018_scicar_a549_dex_rna.h5ad"), perturbation_key="Time",
                   control_labels="0", perturbation_type="stimulation")
    assert adata.uns["scagents"]["data"]["is_counts"] is False  # normalised values
    assert set(adata.obs.loc[~adata.obs["is_control"], "target_genes"]) == {"1", "3"}


# ---------------------------------------------------------------------------------------------
# standard columns
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_standard_columns(sparse):
    adata = make_adata(sparse=sparse)
    out = D.standardize(adata, copy=True)
    assert "perturbation" not in adata.obs  # copy=True leaves the input alone
    obs = out.obs
    assert list(obs["target_genes"].iloc[[0, 3, 6]]) == ["", "STAT1", "IRF1+STAT1"]
    assert list(obs["is_control"]) == [True] * 3 + [False] * 6
    assert list(obs["perturbation_type"].iloc[[0, 3]]) == ["control", "knockout"]
    assert obs["gene"].equals(adata.obs["gene"])
    assert out.uns["scagents"]["data"]["is_counts"] is True
    assert out.uns["scagents"]["data"]["n_perturbations"] == 2
    assert D.standardize(adata) is None and "is_control" in adata.obs  # in place


@pytest.mark.parametrize(
    "label",
    ["non-targeting", "nontargeting", "non_targeting", "Non-Targeting", "control", "Control", "ctrl", "CTRL",
     "NT", "NTC_12", "safe-targeting", "negative control", "Negative_Control", "unperturbed",
     # issue 14: the common spellings of control guides and vectors
     "negative", "Negative", "none", "None", "neg", "NEG", "neg_ctrl", "NegCtrl",
     "NegCtrl0_NegCtrl0__NegCtrl0_NegCtrl0", "non_targeting_00123", "NonTarget_3", "sgNTC",
     "sgNT_1", "sgCtrl", "sgControl", "gRNA-NT", "safe_targeting", "SafeTargeting_5",
     "Safe-Harbor", "AAVS1", "intergenic", "INTERGENIC", "Intergenic_1", "empty_vector", "EV",
     "GFP", "LacZ", "luciferase", "ctrl+ctrl", "scrambled_guide", "no_guide", "NTg10", "NT_sg2",
     "NTC", "Non-Targeting_1", "nontargeting_2", "AAVS1_3", "sgAAVS1-2",
     # Replogle 2022 (K562 Perturb-seq): gene_transcript and dual-guide sgID_AB controls
     "10748_non-targeting_non-targeting_non-targeting",
     "non-targeting_03786|non-targeting_00417"],
)
def test_control_labels_recognised(label):
    assert D.is_control_label(label)
    out = D.standardize(make_adata(labels=(label, "STAT1")), copy=True)
    assert out.obs["is_control"].sum() == 3


@pytest.mark.parametrize("label", ["STAT1", "NT5E", "NTRK1", "WT1", "NEGR1", "SAFB", "NCOA1", "CTLA4",
                                   "SGCA", "GFPT1", "EVX1", "LUC7L", "NONO", "NCK1", "NACA",
                                   "STAT1+ctrl"])
def test_gene_names_are_not_controls(label):
    assert not D.is_control_label(label)


@pytest.mark.parametrize(
    ("label", "targets"),
    [
        ("STAT1+IRF1", ("STAT1", "IRF1")),
        ("STAT1,IRF1", ("STAT1", "IRF1")),
        ("STAT1 & IRF1", ("STAT1", "IRF1")),
        ("CBL_UBASH3B", ("CBL", "UBASH3B")),  # both measured genes: split
        ("AARS_P1P2", ("AARS",)),  # a CRISPRi library label: its target
        ("AARS_P1P2+STAT1", ("AARS", "STAT1")),
        ("STAT1+ctrl", ("STAT1",)),  # Norman-style single perturbation
        ("ctrl+ctrl", ()),
        ("non-targeting", ()),
    ],
)
def test_split_targets(label, targets):
    assert D.split_targets(label, genes={"STAT1", "IRF1", "CBL", "UBASH3B"}) == targets


def test_user_control_labels_and_type_mapping():
    adata = make_adata(labels=("DMSO-like", "STAT1", "IRF1"))
    out = D.standardize(adata, control_labels=["dmso-like"],
                        perturbation_type={"STAT1": "knockdown", "IRF1": "overexpression"}, copy=True)
    types = out.obs.groupby("perturbation", observed=True)["perturbation_type"].first().to_dict()
    assert types == {"DMSO-like": "control", "STAT1": "knockdown", "IRF1": "overexpression"}


def test_original_standard_named_column_is_kept():
    adata = make_adata(key="target_genes", labels=("control", "STAT1,IRF1"))
    out = D.standardize(adata, copy=True)
    assert list(out.obs["target_genes_original"]) == list(adata.obs["target_genes"])
    assert set(out.obs["target_genes"]) == {"", "STAT1+IRF1"}
    again = D.standardize(out, copy=True)  # idempotent: the recorded column is reused
    assert again.obs["target_genes"].equals(out.obs["target_genes"])


def test_normalised_values_detected():
    adata = make_adata()
    adata.X = np.log1p(adata.X) + 0.5
    out = D.standardize(adata, copy=True)
    assert out.uns["scagents"]["data"]["is_counts"] is False


def test_mudata_load_mirrors_columns_and_leaves_input():
    rna = make_adata(key="perturbation")
    atac = ad.AnnData(np.ones((rna.n_obs, 3), dtype=np.float32), obs=pd.DataFrame(index=rna.obs_names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"rna": rna, "atac": atac})
        out = D.load(mdata)
    assert "is_control" not in mdata.mod["rna"].obs and "is_control" not in mdata.obs
    assert list(out.obs["is_control"]) == list(out.mod["rna"].obs["is_control"])
    assert out.obs["is_control"].sum() == 3
    assert out.uns["scagents"]["data"]["modality"] == "rna"
    only = D.load(mdata, modality="rna")
    assert isinstance(only, ad.AnnData) and only.obs["is_control"].sum() == 3


# ---------------------------------------------------------------------------------------------
# bad inputs: each its own clear error; the file on disk is never modified
# ---------------------------------------------------------------------------------------------


def _with_nan(a):
    a.X[1, 2] = np.nan


def _with_inf(a):
    a.X[2, 1] = np.inf


def _with_negative(a):
    a.X[4, 0] = -2


def _dup_cells(a):
    a.obs_names = ["cell0"] * 2 + list(a.obs_names[2:])


def _dup_genes(a):
    a.var_names = ["STAT1", "STAT1", "GAPDH", "CBL", "UBASH3B"]


BAD_CASES = {
    "nan": (_with_nan, {}, DataError, r"1 NaN value\(s\) \(first at cell 'cell1', gene 'GAPDH'\)"),
    "inf": (_with_inf, {}, DataError, r"infinite value\(s\) \(first at cell 'cell2', gene 'IRF1'\)"),
    "negative counts": (_with_negative, {}, DataError, r"looks like counts .* 1 value\(s\) are negative"),
    "duplicate cells": (_dup_cells, {}, DataError, r"cell name\(s\) occur more than once .*obs_names_make_unique"),
    "duplicate genes": (_dup_genes, {}, DataError, r"gene name\(s\) occur more than once .*\['STAT1'\]"),
    "missing column": (lambda a: a.obs.rename(columns={"gene": "batch"}, inplace=True), {},
                       PerturbationError, r"No perturbation column.*\['batch'\].*perturbation_key="),
    "named column missing": (None, {"perturbation_key": "guide"}, PerturbationError,
                             r"perturbation_key='guide' is not an obs column.*\['gene'\]"),
    "no controls": (lambda a: a.obs.__setitem__("gene", a.obs["gene"].replace("non-targeting", "MYC")), {},
                    PerturbationError, r"No control label .*'MYC' \(3\).*control_labels="),
    "user controls absent": (None, {"control_labels": ["scrambled"]}, PerturbationError,
                             r"None of control_labels=\['scrambled'\] occurs"),
    "missing labels": (lambda a: a.obs.__setitem__("gene", a.obs["gene"].where(a.obs_names != "cell5")), {},
                       PerturbationError, r"1 of 9 cells have no label"),
    "bad type": (None, {"perturbation_type": "deletion"}, PerturbationError, "Unknown perturbation_type 'deletion'"),
    "all zeros": (lambda a: a.X.__setitem__(slice(None), 0), {}, DataError,
                  r"X holds only zeros \(9 cells × 5 genes\): no gene is expressed"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_file_raises_and_is_untouched(tmp_path, case):
    mutate, kwargs, exc, match = BAD_CASES[case]
    adata = make_adata()
    adata.obs["gene"] = adata.obs["gene"].astype(object)
    if mutate is not None:
        mutate(adata)
    path = tmp_path / "bad.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(path)
    before = sha256(path)
    with pytest.raises(exc, match=match):
        D.load(path, **kwargs)
    assert sha256(path) == before
    # in memory too, and the object is not partly modified
    with pytest.raises(exc, match=match):
        D.standardize(adata, **kwargs)
    assert "is_control" not in adata.obs


@pytest.mark.parametrize("shape", [(0, 5), (4, 0)], ids=["0 cells", "0 genes"])
def test_empty_data(tmp_path, shape):
    adata = ad.AnnData(np.zeros(shape, dtype=np.float32),
                       obs=pd.DataFrame({"gene": ["control", "A", "B", "C"][: shape[0]]},
                                        index=[f"c{i}" for i in range(shape[0])]))
    path = tmp_path / "empty.h5ad"
    adata.write_h5ad(path)
    before = sha256(path)
    what = "0 cells" if shape[0] == 0 else "0 genes"
    with pytest.raises(DataError, match=f"have {what}"):
        D.load(path)
    assert sha256(path) == before


def test_sparse_nan_position():
    adata = make_adata(sparse=True, X=np.arange(45, dtype=np.float32).reshape(9, 5) + 1)
    adata.X.data[7] = np.nan  # row 1, column 2
    with pytest.raises(DataError, match="first at cell 'cell1', gene 'GAPDH'"):
        D.standardize(adata)


def test_negative_counts_in_counts_layer():
    adata = make_adata()
    adata.layers["counts"] = adata.X.copy()
    adata.layers["counts"][0, 0] = -1
    with pytest.raises(DataError, match=r"layers\['counts'\] looks like counts"):
        D.standardize(adata)


def test_negative_normalised_values_are_allowed():
    adata = make_adata()
    adata.X = adata.X - adata.X.mean(axis=0) + 0.01  # scaled data, not counts
    out = D.standardize(adata, copy=True)
    assert out.uns["scagents"]["data"]["is_counts"] is False


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_all_zero_matrix_is_refused_in_one_line(sparse):
    adata = make_adata(sparse=sparse, X=np.zeros((9, 5), dtype=np.float32))
    with pytest.raises(DataError) as err:
        D.standardize(adata)
    assert "\n" not in str(err.value) and "only zeros" in str(err.value)
    # one expressed value is enough
    X = np.zeros((9, 5), dtype=np.float32)
    X[3, 1] = 1.0
    D.standardize(make_adata(sparse=sparse, X=X))


@pytest.mark.parametrize("label", ["unassigned", "Unassigned", "unassigned_or_multi", "multiplet",
                                   "Multiplets", "doublet", "STAT1_or_multi", "multi", "ambiguous",
                                   "unknown", "Doublet-2",
                                   # issue 14: junk that names nothing
                                   "", "*", "-", "NA", "N/A", "null", "no_call", "NoCall",
                                   "blank", "unassignable", "multiple_guides", "invalid"])
def test_non_perturbation_labels_are_excluded(label):
    assert D.is_excluded_label(label)
    adata = make_adata(labels=("non-targeting", "STAT1", label))
    D.standardize(adata)
    cells = adata.obs["perturbation"] == label
    assert not adata.obs.loc[cells, "is_control"].any()
    assert (adata.obs.loc[cells, "target_genes"] == "").all()          # not a knockout of "label"
    assert (adata.obs.loc[cells, "perturbation_type"] == "excluded").all()
    rec = adata.uns["scagents"]["data"]
    assert rec["excluded_labels"] == [label] and rec["n_excluded"] == 3
    assert rec["n_perturbations"] == 1 and rec["control_labels"] == ["non-targeting"]


@pytest.mark.parametrize("label", ["STAT1", "MULTI1", "UNC5B", "DOT1L", "non-targeting", "negative",
                                   "none", "NAA10", "NULL1", "BLANK1", "sgNTC", "AAVS1", "EV"])
def test_genes_and_controls_are_not_excluded(label):
    assert not D.is_excluded_label(label)


def test_user_control_label_wins_over_exclusion():
    adata = make_adata(labels=("unassigned", "STAT1"))
    D.standardize(adata, control_labels=["unassigned"])
    assert adata.obs["is_control"].sum() == 3


def test_control_and_junk_labels_in_one_data_set():
    """Every control spelling pools into the control cells; junk is excluded, never a knockout."""
    ctrl = ("negative", "sgNTC_1", "NegCtrl0_NegCtrl0__NegCtrl0_NegCtrl0", "safe-targeting")
    junk = ("*", "no_call", "unassigned")
    labels = np.array([*ctrl, *junk, "STAT1", "IRF1"])
    X = np.random.default_rng(0).poisson(2.0, (len(labels) * 3, 5)).astype(np.float32)
    adata = ad.AnnData(X, obs=pd.DataFrame({"perturbation": np.repeat(labels, 3)},
                                           index=[f"c{i}" for i in range(len(labels) * 3)]),
                       var=pd.DataFrame(index=["STAT1", "IRF1", "GATA3", "TBX21", "CD4"]))
    D.standardize(adata)
    rec = adata.uns["scagents"]["data"]
    assert sorted(rec["control_labels"]) == sorted(ctrl)
    assert sorted(rec["excluded_labels"]) == sorted(junk)
    assert rec["n_perturbations"] == 2 and int(adata.obs["is_control"].sum()) == 12
    assert set(adata.obs.loc[adata.obs["perturbation_type"] == "excluded", "perturbation"]) \
        == set(junk)


def test_column_and_control_errors_name_the_cli_flags():
    # a CLI user cannot pass control_labels=[...]: the errors name the flags too
    obs = pd.DataFrame({"perturbation": ["a", "b", "a", "b"]}, index=[f"c{i}" for i in range(4)])
    adata = ad.AnnData(np.ones((4, 3), np.float32), obs=obs)
    with pytest.raises(PerturbationError, match="CLI: --control LABEL"):
        D.standardize(adata.copy())
    with pytest.raises(PerturbationError, match="CLI: --perturbation-key COLUMN"):
        D.standardize(adata.copy(), perturbation_key="guide")


# ---------------------------------------------------------------------------------------------
# files as other tools write them: guide-level labels, lower-case symbols, Ensembl IDs
# ---------------------------------------------------------------------------------------------


def _papalexi_guides(form: str) -> ad.AnnData:
    """Papalexi with its per-cell guide (``STAT1g2``, ``NTg7``) as the only perturbation column,
    written the way ``form`` says (``{t}g{n}``, ``{t}_g{n}``, ``{t}_{n}``)."""
    adata = ad.read_h5ad(shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"))
    parts = adata.obs["top_grna"].astype(str).str.extract(r"^(.*?)g(\d+)$")
    adata.obs["guide"] = [form.format(t=t, n=n) for t, n in zip(parts[0], parts[1], strict=True)]
    adata.obs = adata.obs[["guide", "perturbation"]].rename(columns={"perturbation": "truth"})
    return adata


@pytest.mark.parametrize("form", ["{t}g{n}", "{t}_g{n}", "{t}_{n}", "{t}-sgRNA{n}"])
def test_papalexi_guide_labels_name_their_targets(form):
    """Every guide of a target names that target — also IRF1, CMTM6, … which the 299 genes do not
    measure — and the NT guides are the controls (the real file's own target column agrees)."""
    adata = _papalexi_guides(form)
    D.standardize(adata)
    obs = adata.obs
    truth = obs["truth"].astype(str)
    assert (obs["is_control"] == (truth == "non-targeting")).all()
    perturbed = ~obs["is_control"]
    assert (obs.loc[perturbed, "target_genes"].astype(str) == truth[perturbed]).all()
    assert adata.uns["scagents"]["data"]["n_perturbations"] == 25


@pytest.mark.parametrize(
    ("labels", "genes", "targets"),
    [
        (("STAT1g1", "STAT1g2"), ("STAT1",), ("STAT1", "STAT1")),
        (("STAT1_g1", "STAT1_2"), ("STAT1",), ("STAT1", "STAT1")),
        (("IRF9g1", "IRF9g2"), (), ("IRF9", "IRF9")),  # not measured: two guides vouch for it
        (("IRF9_1", "IRF9_2"), (), ("IRF9", "IRF9")),
        (("stat1", "Stat1"), ("STAT1",), ("STAT1", "STAT1")),  # the measured gene's spelling
        (("stat1_g1", "STAT1+irf9"), ("STAT1",), ("STAT1", "STAT1+irf9")),
        (("STAT1|IRF1", "STAT1_IRF1"), ("STAT1", "IRF1"), ("STAT1+IRF1", "STAT1+IRF1")),
        (("STAT1_IRF9", "IRF9"), ("STAT1",), ("STAT1+IRF9", "IRF9")),  # IRF9 is a target of its own
        (("NKX2-1", "NKX2-2"), (), ("NKX2-1", "NKX2-2")),  # genes, not guides of "NKX2"
        (("NKX2-1", "CD4"), ("NKX2-1",), ("NKX2-1", "CD4")),
        (("IRF9g1", "STAT1"), ("STAT1",), ("IRF9g1", "STAT1")),  # one guide of an unknown target: kept
    ],
)
def test_labels_as_other_tools_write_them(labels, genes, targets):
    names = list(dict.fromkeys([*genes, "GAPDH"]))
    X = np.random.default_rng(0).poisson(3.0, size=(9, len(names))).astype(np.float32)
    lab = ["non-targeting"] * 3 + [labels[0]] * 3 + [labels[1]] * 3
    adata = ad.AnnData(X, obs=pd.DataFrame({"perturbation": lab}, index=[f"c{i}" for i in range(9)]),
                       var=pd.DataFrame(index=names))
    D.standardize(adata)
    got = adata.obs.groupby("perturbation", observed=True)["target_genes"].first()
    assert (got[labels[0]], got[labels[1]]) == targets


@pytest.mark.parametrize("column", ["gene_symbols", "feature_name", "gene_name", "symbol"])
def test_ensembl_var_names_take_the_symbols(column):
    """Ensembl IDs as var_names with the symbols in a var column: the symbols name the genes
    (targets and goals name symbols), the IDs stay in var['gene_ids'], a symbol shared by two IDs
    is made unique, and an ID without a symbol keeps its ID."""
    adata = make_adata(labels=("non-targeting", "STAT1", "IRF1+STAT1"))
    symbols = ["STAT1", "IRF1", "GAPDH", "GAPDH", None]
    ids = [f"ENSG{i:011d}.{i}" for i in range(5)]
    adata.var = pd.DataFrame({column: pd.Categorical(symbols)}, index=ids)
    out = D.standardize(adata, copy=True)
    assert list(out.var_names) == ["STAT1", "IRF1", "GAPDH", "GAPDH-1", ids[4]]
    assert list(out.var["gene_ids"]) == ids
    rec = out.uns["scagents"]["data"]
    assert rec["gene_names_from"] == f"var[{column!r}]" and rec["n_duplicate_symbols"] == 1
    assert set(out.obs["target_genes"]) == {"", "STAT1", "IRF1+STAT1"}
    assert list(adata.var_names) == ids  # copy=True: the input is untouched


def test_ensembl_var_names_without_symbols_are_kept():
    adata = make_adata()
    adata.var = pd.DataFrame({"n_cells": np.arange(5)}, index=[f"ENSG{i:011d}" for i in range(5)])
    out = D.standardize(adata, copy=True)
    assert list(out.var_names) == list(adata.var_names)
    assert "gene_names_from" not in out.uns["scagents"]["data"]


def test_ensembl_var_names_in_a_mudata_modality():
    rna = make_adata()
    rna.var = pd.DataFrame({"gene_symbols": list(rna.var_names)},
                           index=[f"ENSG{i:011d}" for i in range(5)])
    prot = ad.AnnData(np.ones((rna.n_obs, 2), np.float32), obs=pd.DataFrame(index=rna.obs_names),
                      var=pd.DataFrame(index=["CD3", "CD4"]))
    out = D.load(md.MuData({"rna": rna, "prot": prot}))
    assert list(out["rna"].var_names) == ["STAT1", "IRF1", "GAPDH", "CBL", "UBASH3B"]
    assert "rna:STAT1" in out.var_names or "STAT1" in out.var_names


# Replogle et al. 2022 (K562 CRISPRi Perturb-seq) writes a target in four ways: obs['gene']
# ("AARS"), the target and its transcription start site(s) ("AARS_P1P2", "AARS_P1", "AARS_P2"),
# obs['gene_transcript'] ("1_AARS_P1P2_ENSG00000090861") and obs['sgID_AB'] (two guide IDs)
_REPLOGLE_FORMS = {
    "tss": {"AARS": ["AARS_P1P2", "AARS_P1", "AARS_P2"], "STAT1": ["STAT1_P1P2"],
            "ctrl": ["non-targeting"]},
    "gene_transcript": {"AARS": ["1_AARS_P1P2_ENSG00000090861", "2_AARS_P2_ENSG00000090861"],
                        "STAT1": ["8140_STAT1_P1P2_ENSG00000115415"],
                        "ctrl": ["10748_non-targeting_non-targeting_non-targeting",
                                 "10749_non-targeting_non-targeting_non-targeting"]},
    "sgID_AB": {"AARS": ["AARS_+_70323216.23-P1P2|AARS_-_70323296.23-P1P2"],
                "STAT1": ["STAT1_-_191878976.23-P1P2|STAT1_+_191878966.23-P1P2"],
                "ctrl": ["non-targeting_03786|non-targeting_00417"]},
}


@pytest.mark.parametrize("form", sorted(_REPLOGLE_FORMS))
def test_replogle_labels_name_their_targets(form):
    """Each label names its target (AARS is not a measured gene: the label alone vouches for it)
    and the non-targeting rows are the controls, found in the column Replogle's files use."""
    labels = _REPLOGLE_FORMS[form]
    lab = [x for group in labels.values() for x in group]
    truth = [t for t, group in labels.items() for _ in group]
    key = form if form != "tss" else "perturbation"
    X = np.random.default_rng(0).poisson(3.0, size=(3 * len(lab), 3)).astype(np.float32)
    adata = ad.AnnData(X, obs=pd.DataFrame({key: np.repeat(lab, 3), "truth": np.repeat(truth, 3)},
                                           index=[f"c{i}" for i in range(3 * len(lab))]),
                       var=pd.DataFrame(index=["STAT1", "GAPDH", "IRF1"]))
    D.standardize(adata)
    obs = adata.obs
    assert (obs["is_control"] == (obs["truth"] == "ctrl")).all()
    got = obs.loc[~obs["is_control"], "target_genes"].astype(str)
    assert (got == obs.loc[~obs["is_control"], "truth"]).all()
    rec = adata.uns["scagents"]["data"]
    assert rec["perturbation_key"] == key and rec["n_perturbations"] == 2
    assert rec["control_labels"] == labels["ctrl"]


@pytest.mark.parametrize(("label", "target"), [
    ("AARS_P1P2", "AARS"), ("AARS_P1", "AARS"), ("1_AARS_P1P2_ENSG00000090861", "AARS"),
    ("10000_RPL13_P1_ENSG00000167526", "RPL13"),
    ("10748_non-targeting_non-targeting_non-targeting", "non-targeting"),
    ("AARS_+_70323216.23-P1P2", "AARS"),
    ("STAT1", None), ("STAT1_2", None), ("CBL_UBASH3B", None), ("1_AARS_P1P2_foo", None),
])
def test_library_target(label, target):
    assert D.library_target(label) == target


def _papalexi_small(n: int = 600) -> ad.AnnData:
    adata = ad.read_h5ad(shared_file("perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"))
    return adata[np.random.default_rng(0).choice(adata.n_obs, n, replace=False)].copy()


def _lognorm(X):
    x = sp.csr_matrix(X, dtype=np.float32)
    x = sp.csr_matrix(sp.diags(1e4 / np.maximum(np.asarray(x.sum(1)).ravel(), 1)) @ x)
    x.data = np.log1p(x.data)
    return x


@pytest.mark.parametrize("where", ["layer", "raw", "raw_all_genes"])
@pytest.mark.parametrize("x_is", ["lognorm", "scaled"])
def test_counts_beside_normalised_x_become_x(where, x_is):
    """Papalexi as scanpy users save it: log-normalised (or scaled) X with the counts in
    layers['counts'] or .raw. load() analyses the counts, never the X values as counts, and leaves
    the caller's object as it was."""
    adata = _papalexi_small()
    counts = adata.X.toarray()
    given = _lognorm(counts)
    if x_is == "scaled":
        dense = given.toarray()
        given = (dense - dense.mean(0)) / (dense.std(0) + 1e-6)
    if where == "layer":
        adata.layers["counts"] = adata.X.copy()
    else:
        adata.raw = adata
        if where == "raw_all_genes":  # X cut to some genes after .raw was set
            adata = adata[:, 20:].copy()
            counts = counts[:, 20:]
            given = given[:, 20:]
    adata.X = given
    before = adata.copy()
    out = D.load(adata)
    rec = out.uns["scagents"]["data"]
    assert rec["is_counts"] is True
    assert rec["counts_from"] == ("layers['counts']" if where == "layer" else ".raw")
    np.testing.assert_array_equal(np.asarray(sp.csr_matrix(out.X).toarray()), counts)
    assert out.var_names.equals(adata.var_names) and "counts" not in out.layers
    np.testing.assert_array_equal(np.asarray(sp.csr_matrix(adata.X).toarray()),
                                  np.asarray(sp.csr_matrix(before.X).toarray()))


def test_normalised_raw_and_no_counts_leave_x_as_given():
    """.raw holding log-normalised values (scanpy's tutorial order) is not counts: X is used as
    given and said to be not counts."""
    adata = _papalexi_small()
    adata.X = _lognorm(adata.X)
    adata.raw = adata
    out = D.load(adata)
    rec = out.uns["scagents"]["data"]
    assert rec["is_counts"] is False and "counts_from" not in rec


@pytest.mark.parametrize("kind", ["cpm", "corrected"])
def test_unlogged_values_stop_in_one_line(kind, tmp_path):
    """CPM or ambient-corrected counts (non-integer, far above any log scale) in X: one line
    naming the problem and the fix, in memory and backed, file untouched; log1p of them passes."""
    from scagents.data import backed

    adata = _papalexi_small()
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    if kind == "cpm":
        X = sp.csr_matrix(sp.diags(1e6 / np.asarray(X.sum(1)).ravel()) @ X).astype(np.float32)
    else:
        X.data = X.data * np.float32(0.93) + np.float32(0.01)
    adata.X = X
    path = tmp_path / "unlogged.h5ad"
    adata.write_h5ad(path)
    digest = sha256(path)
    with pytest.raises(DataError, match=r"not whole numbers .* log-transform") as err:
        D.load(path)
    assert "\n" not in str(err.value) and "np.rint" in str(err.value)
    with pytest.raises(DataError, match="log-transform"):
        backed.standardize_backed(backed.open_backed(path))
    assert sha256(path) == digest
    adata.X = X.log1p()
    assert D.load(adata).uns["scagents"]["data"]["is_counts"] is False


# ---------------------------------------------------------------------------------------------
# Cell Ranger multi-genome references: GRCh38_STAT1, mm10_Stat1
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["GRCh38_", "hg19_", "mm10_", "GRCh38-2020-A_", "GRCh38______"])
def test_reference_prefix_is_removed(prefix):
    """One reference's prefix on every gene: the names lose it (the goal and targets name STAT1),
    the run says so, and gene_names() maps results back onto the user's prefixed genes."""
    adata = make_adata()
    adata.var_names = [prefix + g for g in adata.var_names]
    assert D.gene_names(adata).tolist() == ["STAT1", "IRF1", "GAPDH", "CBL", "UBASH3B"]
    out = D.standardize(adata, copy=True)
    assert out.var_names.tolist() == ["STAT1", "IRF1", "GAPDH", "CBL", "UBASH3B"]
    assert set(out.obs["target_genes"]) == {"", "STAT1", "IRF1+STAT1"}
    assert out.uns["scagents"]["data"]["reference_prefix"] == prefix.rstrip("_")
    assert list(out.var["gene_ids"]) == list(adata.var_names)


def test_reference_prefix_on_ensembl_ids_and_symbols():
    adata = make_adata()
    symbols = list(adata.var_names)
    adata.var = pd.DataFrame({"gene_symbols": [f"GRCh38_{g}" for g in symbols]},
                             index=[f"GRCh38_ENSG{i:011d}" for i in range(5)])
    out = D.standardize(adata, copy=True)
    assert out.var_names.tolist() == symbols


def _barnyard(n_human: int = 3) -> ad.AnnData:
    """Human cells (counts on GRCh38 genes), mouse cells and one human-mouse doublet."""
    human = make_adata(n_per_group=n_human)
    n = human.n_obs
    rng = np.random.default_rng(2)
    X = np.zeros((n + 4, 8), np.float32)
    X[:n, :5] = human.X
    X[:n, 5:] = rng.poisson(0.05, (n, 3))  # ambient mouse reads
    X[n:n + 3, 5:] = rng.poisson(5.0, (3, 3))  # mouse cells
    X[n + 3] = 4.0  # a doublet
    obs = pd.DataFrame({"gene": [*human.obs["gene"], *["non-targeting"] * 4]},
                       index=[f"c{i}" for i in range(n + 4)])
    var = pd.DataFrame(index=[*(f"GRCh38_{g}" for g in human.var_names),
                              "mm10___Stat1", "mm10___Irf1", "mm10___Gapdh"])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=var)


def test_two_references_are_refused_by_standardize_in_one_line():
    with pytest.raises(DataError, match=r"2 references \(GRCh38 \(5 genes\), mm10 \(3 genes\).*"
                                        r"scagents.data.load") as err:
        D.standardize(_barnyard(), copy=True)
    assert "\n" not in str(err.value)


def test_barnyard_keeps_the_reference_with_most_counts_and_its_cells(tmp_path):
    adata = _barnyard()
    path = tmp_path / "barnyard.h5ad"
    adata.write_h5ad(path)
    out = D.load(path)
    assert out.var_names.tolist() == ["STAT1", "IRF1", "GAPDH", "CBL", "UBASH3B"]
    assert out.n_obs == 9  # the 9 human cells; 3 mouse cells and the doublet left out
    info = out.uns["scagents"]["data"]["genome"]
    assert info["kept"] == "GRCh38" and info["n_cells_left_out"] == 4
    line = D.genome_line(info)
    assert "kept GRCh38 (most counts)" in line and "4 cells (mm10 cells" in line
    assert D.gene_names(adata).tolist()[:5] == out.var_names.tolist()
    assert D.load(adata).n_obs == 9 and adata.n_obs == 13  # the caller's object is untouched


@pytest.mark.parametrize("names", [["gene_1", "gene_2"], ["chr1_100_200", "chr2_5_9"],
                                   ["ENSG00000000001_STAT1", "ENSG00000000002_IRF1"],
                                   ["STAT1", "IRF1"], ["GRCh38_STAT1", "IRF1", "GAPDH"]])
def test_names_without_a_reference_prefix(names):
    assert D.reference_prefixes(names) == {}


# ---------------------------------------------------------------------------------------------
# combinations holding a goal's genes
# ---------------------------------------------------------------------------------------------


def test_combinations_with_a_goal_gene():
    """Every way of writing a combination holding STAT1 is found; STAT1 itself, IRF1 alone and
    controls are not."""
    labels = ("non-targeting", "STAT1", "IRF1", "STAT1+IRF1", "STAT1_IRF1", "IRF1|STAT1",
              "STAT1;IRF1", "CBL_UBASH3B")
    out = D.standardize(make_adata(n_per_group=2, labels=labels), copy=True)
    assert D.combinations_with(out.obs, ["STAT1"]) == {
        "IRF1|STAT1": 2, "STAT1+IRF1": 2, "STAT1;IRF1": 2, "STAT1_IRF1": 2}
    assert D.combinations_with(out.obs, ["STAT1", "IRF1"]) == {}
    assert D.combinations_with(out.obs, ["GAPDH"]) == {}


def test_barnyard_in_a_mudata_leaves_the_other_species_cells_out_of_every_modality():
    rna = _barnyard()
    prot = ad.AnnData(np.ones((rna.n_obs, 2), np.float32), obs=pd.DataFrame(index=rna.obs_names),
                      var=pd.DataFrame(index=["CD3", "CD4"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = D.load(md.MuData({"rna": rna, "prot": prot}))
    assert out.n_obs == 9 and out["prot"].n_obs == 9 and out["rna"].n_vars == 5
    assert out.uns["scagents"]["data"]["genome"]["kept"] == "GRCh38"

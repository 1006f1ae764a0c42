"""The data agent's goal resolution on a real screen (Papalexi 2021): every measured perturbation
is askable, also the 16 of 25 whose target gene is not among the measured genes, and each resolves
to exactly its own cells, which the policy agent holds out."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from scagents.agents.data import resolve_goal
from scagents.agents.policy import _goal_held
from scagents.agents.state import DataSummary
from scagents.errors import GeneNotFoundError
from tests.conftest import shared_file

PAPALEXI = "perturbseq/papalexi2021_thp1_ifng_crispr.h5ad"
TARGETS = ["ATF2", "BRD4", "CAV1", "CD86", "CMTM6", "CUL3", "ETV7", "IFNGR1", "IFNGR2", "IRF1",
           "IRF7", "JAK2", "MARCH8", "MYC", "NFKBIA", "PDCD1LG2", "POU2F2", "SMAD4", "SPI1", "STAT1",
           "STAT2", "STAT3", "STAT5A", "TNFRSF14", "UBE2L6"]


@pytest.fixture(scope="module")
def papalexi():
    from scagents.data import load, lognormalize
    from scagents.envs import ResponseTask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rna = load(shared_file(PAPALEXI))
    lognormalize(rna)
    task = ResponseTask.from_anndata(rna, modalities=["rna"], max_control_cells=64)
    return rna, task


def test_every_papalexi_target_is_askable_and_held_out(papalexi):
    rna, task = papalexi
    assert sorted(task.labels) == TARGETS
    unmeasured = [t for t in TARGETS if t not in rna.var_names]
    assert len(unmeasured) == 16 and "IRF1" in unmeasured and "SPI1" in unmeasured
    labels = rna.obs["perturbation"].astype(str).to_numpy()
    for target in TARGETS:
        for word in ("knockout", "knockdown"):  # the data carry the default kind (knockout)
            goal, pert, label, note = resolve_goal(f"predict {target.lower()} {word}", rna)
            assert goal.perturbation.targets == (target,) and label == target
            assert pert.targets == (target,) and pert.kind == "knockout"
            assert (note == "") is (word == "knockout")
            data = DataSummary(source="papalexi", description="", path="", n_cells=0, n_genes=0,
                               modalities=["rna"], goal=goal.to_dict(), perturbation=pert.to_dict(),
                               goal_measured=True, goal_label=label, measured=[], candidates=[])
            held, held_note = _goal_held(task, data)
            assert [task.labels[i] for i in held] == [target] and held_note == ""
            # the held-out task perturbation is exactly the goal's cells
            mean = rna.layers["lognorm"][labels == target].mean(0)
            ctrl = rna.layers["lognorm"][rna.obs["is_control"].to_numpy(bool)].mean(0)
            np.testing.assert_allclose(task.observed_delta(target, modality="rna"),
                                       np.asarray(mean - ctrl).ravel(), atol=1e-4)


def test_unknown_target_names_the_closest_perturbation_targets(papalexi):
    rna, _ = papalexi
    with pytest.raises(GeneNotFoundError, match=r"'IRF11'.*perturbation targets.*IRF1"):
        resolve_goal("predict IRF11 knockout", rna)


@pytest.mark.parametrize("sep", ["+", "_", "|", ";"])
def test_single_gene_goal_leaves_combinations_aside(tmp_path, sep):
    """A STAT1 goal on data with STAT1 combinations: the goal's cells are the single-gene ones,
    the combinations holding STAT1 are left out of the data the models see, and the run says how
    many cells that was."""
    import anndata as ad
    import pandas as pd

    from scagents.agents.data import _user_data, set_aside_line
    from scagents.agents.state import RunOptions

    labels = ["non-targeting"] * 30 + ["STAT1"] * 10 + ["IRF1"] * 10 + [f"STAT1{sep}IRF1"] * 7
    rng = np.random.default_rng(0)
    genes = ["STAT1", "IRF1", "GAPDH", "JAK2", "CD4"]
    adata = ad.AnnData(rng.poisson(3.0, (len(labels), len(genes))).astype(np.float32),
                       obs=pd.DataFrame({"perturbation": labels},
                                        index=[f"c{i}" for i in range(len(labels))]),
                       var=pd.DataFrame(index=genes))
    path = tmp_path / "combos.h5ad"
    adata.write_h5ad(path)
    opts = RunOptions(goal="predict STAT1 knockout", data=str(path), progress=False)
    summary = _user_data(opts, tmp_path)
    assert summary.goal_label == "STAT1"
    assert summary.set_aside == {f"STAT1{sep}IRF1": 7}
    assert summary.measured == ["IRF1", "STAT1"]
    import mudata as md

    written = md.read_h5mu(tmp_path / summary.path)["rna"]
    assert written.n_obs == 50 and f"STAT1{sep}IRF1" not in set(written.obs["perturbation"])
    line = set_aside_line(summary.set_aside, ["STAT1"], summary.goal_label)
    assert line.startswith("7 cells of combinations holding STAT1 were left aside")
    # a goal on the combination itself keeps every cell
    opts = RunOptions(goal="predict STAT1 and IRF1 knockout", data=str(path), progress=False)
    both = _user_data(opts, tmp_path)
    assert both.set_aside == {} and both.n_cells == len(labels)


@pytest.mark.parametrize("control", ["safe-targeting", "AAVS1", "NTC", "Non-Targeting_1", "intergenic"])
def test_the_run_names_the_control_label(tmp_path, control):
    """Safe-harbour, intergenic and non-targeting guides are all controls; the data line says
    which label was taken as the control."""
    import anndata as ad
    import pandas as pd

    from scagents.agents.data import _user_data
    from scagents.agents.state import RunOptions

    labels = [control] * 20 + ["STAT1"] * 10 + ["IRF1"] * 10
    adata = ad.AnnData(np.random.default_rng(0).poisson(3.0, (40, 3)).astype(np.float32),
                       obs=pd.DataFrame({"perturbation": labels},
                                        index=[f"c{i}" for i in range(40)]),
                       var=pd.DataFrame(index=["STAT1", "IRF1", "GAPDH"]))
    adata.write_h5ad(tmp_path / "x.h5ad")
    opts = RunOptions(goal="predict STAT1 knockout", data=str(tmp_path / "x.h5ad"), progress=False)
    summary = _user_data(opts, tmp_path)
    assert summary.control == f"control: 20 cells labelled {control!r}"


def test_modalities_named_gex_peaks_adt_are_stored_as_rna_atac_prot(tmp_path):
    """The agents read modalities rna / atac / prot from data.h5mu: a .h5mu naming them gex / peaks /
    adt (Cell Ranger's and CITE-seq's words) is stored under those names, with its perturbation
    columns, and the data line says so (the policy agent stopped with KeyError: 'rna')."""
    import anndata as ad
    import mudata as md
    import pandas as pd

    from scagents.agents.data import _user_data
    from scagents.agents.state import RunOptions

    rng = np.random.default_rng(0)
    cells = [f"c{i}" for i in range(40)]
    labels = ["non-targeting"] * 20 + ["STAT1"] * 10 + ["IRF1"] * 10
    gex = ad.AnnData(rng.poisson(3.0, (40, 3)).astype(np.float32),
                     obs=pd.DataFrame({"perturbation": labels}, index=cells),
                     var=pd.DataFrame(index=["STAT1", "IRF1", "GAPDH"]))
    peaks = ad.AnnData(rng.poisson(1.0, (40, 5)).astype(np.float32), obs=pd.DataFrame(index=cells),
                       var=pd.DataFrame(index=[f"chr1:{i}-{i + 9}" for i in range(5)]))
    adt = ad.AnnData(rng.poisson(9.0, (40, 2)).astype(np.float32), obs=pd.DataFrame(index=cells),
                     var=pd.DataFrame(index=["CD3", "CD4"]))
    md.MuData({"peaks": peaks, "gex": gex, "adt": adt}).write(tmp_path / "x.h5mu")
    opts = RunOptions(goal="predict STAT1 knockout", data=str(tmp_path / "x.h5mu"), progress=False)
    summary = _user_data(opts, tmp_path)
    assert sorted(summary.modalities) == ["atac", "prot", "rna"]
    assert "'gex' read as rna" in summary.description and "'adt' read as prot" in summary.description
    written = md.read_h5mu(tmp_path / summary.path)
    assert sorted(written.mod) == ["atac", "prot", "rna"]
    assert list(written["rna"].var_names) == ["STAT1", "IRF1", "GAPDH"]
    assert written.obs["perturbation"].astype(str).tolist() == written["rna"].obs[
        "perturbation"].astype(str).tolist()
    assert summary.goal_label == "STAT1"


def test_protein_counts_in_obsm_are_named_as_not_used(tmp_path):
    """A CITE-seq .h5ad keeps its ADT counts in .obsm: the run reads RNA only, and the data line now
    says so instead of passing over the proteins in silence."""
    import anndata as ad
    import pandas as pd

    from scagents.agents.data import _user_data
    from scagents.agents.state import RunOptions

    labels = ["non-targeting"] * 20 + ["STAT1"] * 10 + ["IRF1"] * 10
    adata = ad.AnnData(np.random.default_rng(0).poisson(3.0, (40, 3)).astype(np.float32),
                       obs=pd.DataFrame({"perturbation": labels}, index=[f"c{i}" for i in range(40)]),
                       var=pd.DataFrame(index=["STAT1", "IRF1", "GAPDH"]))
    adata.obsm["protein_expression"] = np.ones((40, 7), dtype=np.float32)
    adata.write_h5ad(tmp_path / "x.h5ad")
    opts = RunOptions(goal="predict STAT1 knockout", data=str(tmp_path / "x.h5ad"), progress=False)
    summary = _user_data(opts, tmp_path)
    assert "obsm['protein_expression']: 7 proteins, not used" in summary.description
    assert summary.modalities == ["rna"]


def test_unknown_gene_error_shows_the_most_measured_targets_first():
    import anndata as ad
    import pandas as pd

    labels = ["ctrl"] * 4 + ["ZZZ3"] * 1 + ["AAA1"] * 2 + ["MMM2"] * 5
    obs = pd.DataFrame({
        "perturbation": labels,
        "target_genes": ["" if lab == "ctrl" else lab for lab in labels],
        "perturbation_type": ["control" if lab == "ctrl" else "knockout" for lab in labels],
        "is_control": [lab == "ctrl" for lab in labels],
    }, index=[f"c{i}" for i in range(len(labels))])
    genes = ["AAA1", "MMM2", "ZZZ3"] + [f"G{i}" for i in range(40)]
    rna = ad.AnnData(np.ones((len(labels), len(genes)), dtype=np.float32), obs=obs,
                     var=pd.DataFrame(index=genes))
    with pytest.raises(GeneNotFoundError, match=r"e\.g\. MMM2, AAA1, ZZZ3\)"):
        resolve_goal("predict QQQQ9 knockout", rna)

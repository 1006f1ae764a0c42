"""Reading single-cell data: ``.h5ad``, ``.h5mu``, 10x ``.h5``, matrix-market folders and CSV tables.

Every reader opens its input read-only and turns each way a file can be unusable (missing, empty,
not HDF5, corrupt, unknown format, unknown modality) into a :class:`~scagents.errors.DataFileError` or
:class:`~scagents.errors.ModalityError` whose message says what is wrong and how to fix it.
"""

from __future__ import annotations

import csv
import gzip
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import anndata as ad
import h5py
import mudata as md
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from scagents._atomic import atomic_path
from scagents._warnings import dependency_warnings_filtered
from scagents.errors import DataError, DataFileError, DataFileNotFoundError, ModalityError
from scagents.errors import check_path as _check_path

__all__ = [
    "DataFileNotFoundError",
    "load_npy",
    "read",
    "read_beeline",
    "read_csv_expression",
    "read_hits",
    "read_network",
    "read_screen",
    "rna_modality",
    "rna_modality_name",
    "write",
]

PathLike = str | os.PathLike

#: Modality names tried, in order, when a MuData's RNA modality is looked for.
RNA_MODALITY_NAMES: tuple[str, ...] = ("rna", "RNA", "gex", "GEX", "Gene Expression", "gene_expression")

_HDF5_SUFFIXES = (".h5ad", ".h5mu", ".h5")
_SUPPORTED = "'.h5ad', '.h5mu', 10x '.h5', or a matrix-market folder (matrix.mtx + genes/features.tsv + barcodes.tsv)"


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in (".h5ad", ".h5mu", ".h5", ".mtx.gz", ".mtx"):
        if name.endswith(suf):
            return suf
    return path.suffix.lower()


_RNA_NAMES = ("rna", "gex", "gene expression", "expression", "rna_counts")
_ATAC_NAMES = ("atac", "peaks", "chromatin", "accessibility", "chromatin accessibility")
_PROT_NAMES = ("prot", "adt", "protein", "proteins", "antibody capture", "cite")


def modality_kind(name: str) -> str:
    """Map a modality name to ``"rna"``, ``"atac"`` or ``"prot"``.

    Parameters
    ----------
    name
        Modality key of a MuData (``"rna"``, ``"gex"``, ``"atac"``, ``"peaks"``, ``"prot"``, ``"adt"``...).

    Returns
    -------
    The modality kind.

    Raises
    ------
    ModalityError
        When the name is not one of the recognised spellings.
    """
    key = name.lower()
    for kind, names in (("rna", _RNA_NAMES), ("atac", _ATAC_NAMES), ("prot", _PROT_NAMES)):
        if key in names:
            return kind
    raise ModalityError(
        f"Unknown modality {name!r}. Name modalities 'rna' (or 'gex'), 'atac' (or 'peaks') or "
        f"'prot' (or 'adt') so that integrate() knows how to preprocess them."
    )


def mudata_like(mods: dict[str, ad.AnnData], like: md.MuData) -> md.MuData:
    """A MuData of ``mods`` carrying ``like``'s global ``.obs`` columns (not its ``modality:``
    copies; reindexed to the new cells) and its ``.uns``."""
    new = md.MuData(mods)
    prefixes = tuple(f"{m}:" for m in like.mod)
    for col in like.obs.columns:
        if not str(col).startswith(prefixes):
            new.obs[col] = like.obs[col].reindex(new.obs_names).values
    new.uns.update(dict(like.uns))
    return new


def rna_modality_name(names: Iterable[str]) -> str | None:
    """Which of a MuData's modality names is its RNA: ``rna`` (or ``RNA``, ``gex``, ...), else the
    first name that is not an ATAC or protein name (``atac``, ``peaks``, ``prot``, ``adt``, ...);
    ``None`` when every modality is ATAC or protein (or there is none)."""
    names = [str(n) for n in names]
    for name in RNA_MODALITY_NAMES:
        if name in names:
            return name
    for name in names:
        try:
            if modality_kind(name) == "rna":
                return name
        except ModalityError:  # an unknown name: taken as RNA when nothing better is there
            return name
    return None


def rna_modality(data: ad.AnnData | md.MuData) -> tuple[str | None, ad.AnnData]:
    """The RNA modality of a MuData (or the AnnData itself).

    Parameters
    ----------
    data
        An AnnData (returned as is) or a MuData.

    Returns
    -------
    ``(name, adata)``: the modality name (``None`` for an AnnData) and its AnnData. For a MuData this
    is the modality named ``rna`` (or ``RNA``, ``gex``, ...), else the first one that is not named
    as ATAC or protein (:func:`rna_modality_name`).

    Raises
    ------
    ModalityError
        The MuData has no modality, or only ATAC / protein ones.
    """
    if isinstance(data, ad.AnnData):
        return None, data
    if isinstance(data, md.MuData):
        if not data.mod:
            raise ModalityError("The MuData has no modalities; add at least an RNA modality.")
        name = rna_modality_name(data.mod)
        if name is None:
            raise ModalityError(
                f"The MuData has no RNA modality (it has {', '.join(repr(m) for m in data.mod)}); "
                "predictions are made from RNA: add the RNA counts as a modality named 'rna' (or "
                "'gex').")
        return name, data.mod[name]
    raise TypeError(f"Expected an AnnData or MuData, got {type(data).__name__}.")


def _select_modality(mdata: md.MuData, modality: str, origin: str) -> ad.AnnData:
    if modality not in mdata.mod:
        raise ModalityError(
            f"Modality {modality!r} is not in {origin}; it has {sorted(mdata.mod)}. "
            f"Pass one of these as modality=, or modality=None for the whole MuData."
        )
    return mdata.mod[modality]


# ----------------------------------------------------------------------------------------------
# read
# ----------------------------------------------------------------------------------------------


@dependency_warnings_filtered()  # mudata's notes on reading (e.g. var_names intersecting): not the user's
def read(
    source: PathLike | ad.AnnData | md.MuData,
    *,
    modality: str | None = None,
    backed: bool = False,
) -> ad.AnnData | md.MuData:
    """Read single-cell data from a file, a folder or an in-memory object.

    Parameters
    ----------
    source
        Path to an ``.h5ad`` (AnnData), ``.h5mu`` (MuData), 10x CellRanger ``.h5`` file or a
        matrix-market folder (``matrix.mtx[.gz]`` + ``features.tsv[.gz]`` or ``genes.tsv[.gz]`` +
        ``barcodes.tsv[.gz]``; a path to the ``matrix.mtx`` file itself also works), or an in-memory
        :class:`~anndata.AnnData` / :class:`~mudata.MuData`, returned as is (not copied).
    modality
        For MuData input: return only this modality as an AnnData. ``None`` returns the whole MuData.
        Passing it for single-modality input raises :class:`~scagents.errors.ModalityError`.
    backed
        Open ``.h5ad`` / ``.h5mu`` files in read-only backed mode (``X`` stays on disk).

    Returns
    -------
    An AnnData, or a MuData for ``.h5mu`` / MuData input without ``modality``.

    Raises
    ------
    DataFileNotFoundError
        The path does not exist.
    DataFileError
        Empty file, not an HDF5 file, corrupt content or unknown format.
    ModalityError
        ``modality`` is not one of the MuData's modalities, or was given for single-modality data.
    """
    if isinstance(source, md.MuData):
        return source if modality is None else _select_modality(source, modality, "this MuData")
    if isinstance(source, ad.AnnData):
        if modality is not None:
            raise ModalityError(
                f"modality={modality!r} was given but the input is a single-modality AnnData. "
                "Drop modality=, or pass a MuData / .h5mu file."
            )
        return source
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"read() takes a path, an AnnData or a MuData, got {type(source).__name__}."
        )

    path = Path(source).expanduser()
    _check_path(path)
    if path.is_dir() or _suffix(path) in (".mtx", ".mtx.gz"):
        adata = _read_mtx_dir(path if path.is_dir() else path.parent)
        return _single_modality(adata, modality, path)

    suffix = _suffix(path)
    if suffix not in _HDF5_SUFFIXES:
        raise DataFileError(
            f"Unknown file type {path.suffix or '(no extension)'!r} for {str(path)!r}. scagents reads "
            f"{_SUPPORTED}. For a gene-by-cell CSV use scagents.data.read_csv_expression(); for a "
            "Gene,Score screen table use scagents.data.read_screen()."
        )
    if not h5py.is_hdf5(path):
        raise DataFileError(
            f"{str(path)!r} is not an HDF5 file, so it cannot be a valid {suffix} file (it is corrupt, "
            "truncated, or has the wrong extension). Re-create or re-download it; if it is a CSV or "
            "matrix-market file, rename it accordingly."
        )
    try:
        if suffix == ".h5ad":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*without encoding metadata")
                adata = ad.read_h5ad(path, backed="r" if backed else None)
            return _single_modality(adata, modality, path)
        if suffix == ".h5mu":
            return _read_h5mu(path, modality=modality, backed=backed)
        adata = _read_10x_h5(path)
        return _single_modality(adata, modality, path)
    except (DataError, ModalityError):
        raise
    except Exception as exc:  # corrupt or foreign HDF5 layout
        raise DataFileError(
            f"{str(path)!r} is an HDF5 file but could not be read as {suffix} "
            f"({type(exc).__name__}: {exc}). The file is corrupt or was written by another tool; "
            "re-create it (e.g. adata.write_h5ad / mdata.write) or check that the extension matches "
            "its content."
        ) from exc


def _single_modality(adata: ad.AnnData, modality: str | None, path: Path) -> ad.AnnData:
    if modality is not None:
        raise ModalityError(
            f"modality={modality!r} was given but {str(path)!r} holds a single-modality AnnData. "
            "Drop modality=, or pass an .h5mu file."
        )
    return adata


def _read_h5mu(path: Path, *, modality: str | None, backed: bool) -> ad.AnnData | md.MuData:
    with h5py.File(path, "r") as f:
        if "mod" not in f:
            raise DataFileError(
                f"{str(path)!r} has no 'mod' group, so it is not a MuData file. If it holds one "
                "AnnData, rename it to .h5ad."
            )
        mods = list(f["mod"].keys())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The HDF5 file was not created by muon")
        warnings.filterwarnings("ignore", message=".*without encoding metadata")
        if modality is not None:
            if modality not in mods:
                raise ModalityError(
                    f"Modality {modality!r} is not in {str(path)!r}; it has {sorted(mods)}. Pass one "
                    "of these as modality=, or modality=None for the whole MuData."
                )
            return md.read_h5ad(path, modality, backed="r" if backed else False)
        return md.read_h5mu(path, backed="r" if backed else None)


def _decode(values: Iterable) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _read_10x_h5(path: Path) -> ad.AnnData:
    """A CellRanger ``.h5`` (v3 ``matrix`` group or v2 per-genome groups) via scanpy."""
    with h5py.File(path, "r") as f:
        keys = list(f.keys())
        if "matrix" not in f and not any(isinstance(f[k], h5py.Group) and "data" in f[k] for k in keys):
            raise DataFileError(
                f"{str(path)!r} is HDF5 but not a 10x CellRanger matrix (top-level groups: {keys}; "
                "expected 'matrix' with data/indices/indptr/shape/barcodes/features). If it is an "
                "AnnData saved as .h5, rename it to .h5ad."
            )
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        adata = sc.read_10x_h5(path)
    adata.var_names_make_unique()
    return adata


# ----------------------------------------------------------------------------------------------
# matrix market
# ----------------------------------------------------------------------------------------------


def _first(folder: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        p = folder / name
        if p.is_file():
            return p
    return None


def _read_tsv_lines(path: Path) -> list[list[str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        return [line.rstrip("\n\r").split("\t") for line in fh if line.strip()]


def _read_mtx_dir(folder: Path) -> ad.AnnData:
    """A matrix-market folder: 10x layouts through scanpy, other plain layouts directly."""
    matrix = _first(folder, ("matrix.mtx.gz", "matrix.mtx"))
    features = _first(folder, ("features.tsv.gz", "features.tsv", "genes.tsv.gz", "genes.tsv"))
    barcodes = _first(folder, ("barcodes.tsv.gz", "barcodes.tsv"))
    missing = [n for n, p in (("matrix.mtx", matrix), ("features.tsv or genes.tsv", features),
                              ("barcodes.tsv", barcodes)) if p is None]
    if missing:
        present = sorted(p.name for p in folder.iterdir())[:10]
        raise DataFileError(
            f"The folder {str(folder)!r} is not a matrix-market data folder: {', '.join(missing)} "
            f"missing (found: {present or 'nothing'}). It needs matrix.mtx[.gz], features.tsv[.gz] "
            "(or genes.tsv) and barcodes.tsv[.gz]."
        )
    for p in (matrix, features, barcodes):
        _check_path(p, "matrix-market file")

    ten_x_v3 = matrix.name == "matrix.mtx.gz" and features.name == "features.tsv.gz" and barcodes.name == "barcodes.tsv.gz"
    ten_x_v2 = matrix.name == "matrix.mtx" and features.name == "genes.tsv" and barcodes.name == "barcodes.tsv"
    feature_rows = _read_tsv_lines(features)
    if (ten_x_v3 and min(len(r) for r in feature_rows) >= 3) or (
        ten_x_v2 and min(len(r) for r in feature_rows) >= 2
    ):
        import scanpy as sc

        try:
            return sc.read_10x_mtx(folder)
        except Exception:  # noqa: S110 - deliberate: the plain reader below explains the problem
            pass

    try:
        mat = scipy.io.mmread(str(matrix))
    except Exception as exc:
        raise DataFileError(
            f"{str(matrix)!r} is not a valid matrix-market file ({type(exc).__name__}: {exc}). "
            "Re-create it, e.g. with scipy.io.mmwrite."
        ) from exc
    mat = sp.csr_matrix(mat)
    barcode_names = [r[0] for r in _read_tsv_lines(barcodes)]
    n_genes, n_cells = len(feature_rows), len(barcode_names)
    if mat.shape == (n_genes, n_cells):
        mat = mat.T.tocsr()  # 10x convention: genes x cells on disk
    elif mat.shape != (n_cells, n_genes):
        raise DataFileError(
            f"{str(matrix)!r} has shape {mat.shape}, which matches neither {n_genes} features x "
            f"{n_cells} barcodes nor the transpose. Check that {features.name} and {barcodes.name} "
            "belong to this matrix."
        )
    ids = [r[0] for r in feature_rows]
    symbols = [r[1] if len(r) > 1 else r[0] for r in feature_rows]
    var = pd.DataFrame({"gene_ids": ids}, index=pd.Index(symbols, dtype=str))
    if all(len(r) > 2 for r in feature_rows):
        var["feature_types"] = [r[2] for r in feature_rows]
    adata = ad.AnnData(X=mat.astype(np.float32), obs=pd.DataFrame(index=pd.Index(barcode_names, dtype=str)), var=var)
    adata.var_names_make_unique()
    return adata


# ----------------------------------------------------------------------------------------------
# CSV tables
# ----------------------------------------------------------------------------------------------


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.name.endswith(".gz") else open(path, newline="")


def read_csv_expression(
    path: PathLike, *, genes_in_rows: bool = True, sep: str | None = None
) -> ad.AnnData:
    """Read a dense expression table (BEELINE ``ExpressionData.csv``, SERGIO output, ...).

    Parameters
    ----------
    path
        CSV/TSV file (optionally ``.gz``); first row = column names, first column = row names.
    genes_in_rows
        ``True`` (BEELINE / SERGIO convention): rows are genes, columns are cells. ``False``: rows
        are cells.
    sep
        Field separator; by default ``\\t`` for ``.tsv``/``.txt`` files, otherwise ``,``.

    Returns
    -------
    AnnData of cells x genes (float32). When the cell names in the file are not unique (SERGIO
    writes the cell type of each cell as its column name), cells are named ``cell0``, ``cell1``, ...
    and the names from the file are kept in ``obs["label"]``.
    """
    path = Path(path).expanduser()
    _check_path(path, "expression table")
    if path.is_dir():
        raise DataFileError(f"{str(path)!r} is a folder; pass the CSV file inside it.")
    name = path.name.lower().removesuffix(".gz")
    if sep is None:
        sep = "\t" if name.endswith((".tsv", ".txt", ".tab")) else ","
    try:
        with _open_text(path) as fh:
            header = next(csv.reader(fh, delimiter=sep), None)
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as exc:
        raise DataFileError(f"{str(path)!r} is not a text table ({_short(exc)}); give a CSV/TSV "
                            "file (optionally gzipped).") from None
    if not header or len(header) < 2:
        raise DataFileError(
            f"{str(path)!r} has no usable header row (need row names in the first column and one "
            f"column per {'cell' if genes_in_rows else 'gene'}); check sep= (now {sep!r})."
        )
    try:
        table = pd.read_csv(path, sep=sep, header=None, skiprows=1, index_col=0)
    except Exception as exc:
        raise DataFileError(f"{str(path)!r} could not be parsed as a table: {exc}") from exc
    col_names = [c.strip() for c in header[1:]]
    if table.shape[1] != len(col_names):
        raise DataFileError(
            f"{str(path)!r}: the header names {len(col_names)} columns but the rows have "
            f"{table.shape[1]} values; fix the file or pass the right sep=."
        )
    try:
        values = table.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataFileError(
            f"{str(path)!r} contains non-numeric values ({exc}); every entry except the row and "
            "column names must be a number."
        ) from exc
    row_names = pd.Index(table.index.astype(str))
    if genes_in_rows:
        values = values.T
        cell_names, gene_names = col_names, row_names
    else:
        cell_names, gene_names = list(row_names), pd.Index(col_names)
    obs = pd.DataFrame(index=pd.Index(cell_names, dtype=str))
    if not obs.index.is_unique:
        labels = list(cell_names)
        obs = pd.DataFrame({"label": pd.Categorical(labels)}, index=[f"cell{i}" for i in range(len(labels))])
    adata = ad.AnnData(X=values.astype(np.float32), obs=obs, var=pd.DataFrame(index=pd.Index(gene_names, dtype=str)))
    return adata


def read_beeline(folder: PathLike) -> ad.AnnData:
    """Read a BEELINE data set folder into one AnnData.

    Parameters
    ----------
    folder
        Folder with ``ExpressionData.csv`` (genes x cells) and optionally ``PseudoTime.csv``
        (one column per trajectory, ``NA`` off-trajectory) and ``GroundTruthNetwork.csv``.

    Returns
    -------
    AnnData of cells x genes with ``obs["PseudoTime*"]`` (float, NaN off-trajectory),
    ``obs["pseudotime"]`` (the first non-missing trajectory value of each cell) and
    ``uns["ground_truth"]`` (edge table from :func:`read_network`, as a dict of columns).
    """
    folder = Path(folder).expanduser()
    _check_path(folder, "BEELINE folder")
    adata = read_csv_expression(folder / "ExpressionData.csv", genes_in_rows=True)
    pt_path = folder / "PseudoTime.csv"
    if pt_path.exists():
        _check_path(pt_path, "pseudotime table")
        pt = pd.read_csv(pt_path, index_col=0)
        pt.index = pt.index.astype(str)
        unknown = adata.obs_names.difference(pt.index)
        if len(unknown):
            raise DataFileError(
                f"{str(pt_path)!r} has no row for {len(unknown)} cell(s) of ExpressionData.csv "
                f"(e.g. {list(unknown[:3])}); the two files must describe the same cells."
            )
        pt = pt.loc[adata.obs_names].apply(pd.to_numeric, errors="coerce")
        for col in pt.columns:
            adata.obs[str(col)] = pt[col].to_numpy(dtype=float)
        adata.obs["pseudotime"] = pt.bfill(axis=1).iloc[:, 0].to_numpy(dtype=float)
    net_path = folder / "GroundTruthNetwork.csv"
    if net_path.exists():
        net = read_network(net_path)
        adata.uns["ground_truth"] = {c: net[c].to_numpy() for c in net.columns}
    return adata


def read_network(path: PathLike) -> pd.DataFrame:
    """Read a ground-truth network edge list (BEELINE ``GroundTruthNetwork.csv``, SERGIO ``gt_GRN.csv``).

    Parameters
    ----------
    path
        CSV with ``source,target[,sign]`` columns; a BEELINE header ``Gene1,Gene2,Type`` and a
        header-less two-column file are recognised.

    Returns
    -------
    DataFrame with string columns ``source``, ``target`` and ``sign`` (``+1``, ``-1``, or ``0`` when unknown).
    """
    path = Path(path).expanduser()
    _check_path(path, "network file")
    raw = pd.read_csv(path, header=None, dtype=str)
    if raw.shape[1] < 2:
        raise DataFileError(
            f"{str(path)!r} has {raw.shape[1]} column(s); an edge list needs source and target columns."
        )
    first = [str(x).strip().lower() for x in raw.iloc[0]]
    if first[0] in ("gene1", "source", "regulator", "tf", "from") or first[1] in ("gene2", "target", "to"):
        raw = raw.iloc[1:]
    out = pd.DataFrame({"source": raw.iloc[:, 0].str.strip().to_numpy(),
                        "target": raw.iloc[:, 1].str.strip().to_numpy()})
    if raw.shape[1] > 2:
        signs = raw.iloc[:, 2].astype(str).str.strip()
        out["sign"] = np.select([signs.isin(["+", "1", "+1", "activation"]).to_numpy(),
                                 signs.isin(["-", "-1", "repression", "inhibition"]).to_numpy()], [1, -1], 0)
    else:
        out["sign"] = 0
    return out.reset_index(drop=True)


def read_screen(path: PathLike, *, duplicates: Literal["mean", "first", "error"] = "mean") -> pd.DataFrame:
    """Read a pooled-screen read-out table (``Gene,Score``, as in BioDiscoveryAgent ``ground_truth_*.csv``).

    Parameters
    ----------
    path
        CSV with a gene column (``Gene``/``gene``/``gene_symbol``/``id``) and a score column
        (``Score``/``score``/``lfc``...). A header-less two-column table (or one whose header is
        ``0,1``) is read as gene, score.
    duplicates
        What to do with a gene listed more than once (some published tables have a few):
        average its scores (``"mean"``), keep the first row (``"first"``) or raise (``"error"``).

    Returns
    -------
    DataFrame with columns ``gene`` (str) and ``score`` (float), one row per gene, in file order;
    ``df.attrs["n_duplicates_merged"]`` counts the genes that were listed more than once.

    Raises
    ------
    DataFileError
        Missing/empty file, missing gene or score column, NaN or non-numeric scores, empty gene
        names, duplicate genes with ``duplicates="error"``.
    """
    path = Path(path).expanduser()
    _check_path(path, "screen table")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise DataFileError(f"{str(path)!r} has no rows; it needs a Gene,Score header and one row per gene.") from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataFileError(f"{str(path)!r} is not a readable CSV/TSV table ({_short(exc)}); it "
                            "needs a Gene,Score header and one row per gene.") from None
    lower = {str(c).strip().lower(): c for c in table.columns}
    gene_col = next((lower[k] for k in ("gene", "genes", "gene_symbol", "symbol", "id") if k in lower), None)
    score_col = next((lower[k] for k in ("score", "scores", "lfc", "log2fc", "value", "effect") if k in lower), None)
    if gene_col is None and score_col is None and list(lower) == ["0", "1"]:
        gene_col, score_col = table.columns[0], table.columns[1]
    if gene_col is None or score_col is None:
        need = [n for n, c in (("Gene", gene_col), ("Score", score_col)) if c is None]
        raise DataFileError(
            f"{str(path)!r} lacks the {' and '.join(need)} column(s); it has {list(table.columns)}. "
            "A screen table needs a header 'Gene,Score' (one gene symbol and one numeric score per row)."
        )
    genes = table[gene_col].astype(str).str.strip()
    raw_scores = table[score_col].astype(str).str.strip()
    scores = pd.to_numeric(raw_scores.replace({"": "nan"}), errors="coerce")
    bad = scores.isna() | ~np.isfinite(scores.to_numpy(dtype=float))
    if bad.any():
        examples = ", ".join(f"{g}={s!r}" for g, s in zip(genes[bad][:5], raw_scores[bad][:5], strict=True))
        raise DataFileError(
            f"{str(path)!r}: {int(bad.sum())} gene(s) have a missing, NaN, infinite or non-numeric "
            f"score (e.g. {examples}). Drop those rows or fill in their scores."
        )
    if (genes == "").any():
        raise DataFileError(f"{str(path)!r}: {int((genes == '').sum())} row(s) have an empty gene name; drop them.")
    if len(genes) == 0:
        raise DataFileError(f"{str(path)!r} has a header but no rows; add one row per gene.")
    out = pd.DataFrame({"gene": genes.to_numpy(), "score": scores.to_numpy(dtype=float)})
    dup = genes[genes.duplicated()].unique()
    if len(dup):
        if duplicates == "error":
            raise DataFileError(
                f"{str(path)!r}: {len(dup)} gene(s) appear more than once (e.g. {list(dup[:5])}); keep "
                "one score per gene, or pass duplicates='mean' / 'first'."
            )
        if duplicates not in ("mean", "first"):
            raise ValueError(f"duplicates must be 'mean', 'first' or 'error', got {duplicates!r}.")
        out = out.groupby("gene", sort=False, as_index=False)["score"].agg(duplicates)
    out.attrs["n_duplicates_merged"] = len(dup)
    return out


def load_npy(path: PathLike, what: str = "array") -> np.ndarray:
    """Read a ``.npy`` file without unpickling anything.

    Object arrays (``dtype=object``) are stored as pickles, and unpickling runs code chosen by whoever
    wrote the file; they are refused. Strings saved as a fixed-width string array (``'<U…'``, what
    ``numpy.save(path, np.array(genes, dtype=str))`` writes) load normally.

    Parameters
    ----------
    path
        The ``.npy`` file.
    what
        What the file holds, for the messages (``"hit list"``…).

    Raises
    ------
    DataFileError
        The file is not a ``.npy`` array, is truncated, or holds pickled Python objects.
    """
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)(fh)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise DataFileError(f"{str(path)!r} is not a readable .npy {what} "
                            f"({_short(exc)}); re-create it with numpy.save.") from None
    if header[2].hasobject:
        raise DataFileError(
            f"{str(path)!r} holds pickled Python objects (dtype=object), which scagents never loads "
            f"(unpickling can run code); re-save the {what} as strings: "
            "numpy.save(path, numpy.asarray(values, dtype=str)), or use a text file with one "
            "value per line.")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{str(path)!r} is not a readable .npy {what} "
                            f"({_short(exc)}); re-create it with numpy.save.") from None


def _short(exc: BaseException, limit: int = 120) -> str:
    """An exception's message on one line, at most ``limit`` characters."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def read_hits(path: PathLike) -> list[str]:
    """Read a screen hit list (``topmovers_*.npy``: a NumPy array of gene symbols, or a text file).

    Parameters
    ----------
    path
        ``.npy`` array of strings (read by :func:`load_npy`, which refuses pickled object arrays) or
        a text file with one gene per line.

    Returns
    -------
    The gene symbols, in file order.
    """
    path = Path(path).expanduser()
    _check_path(path, "hit list")
    if path.suffix.lower() == ".npy":
        genes = [str(g) for g in np.ravel(load_npy(path, "hit list"))]
    else:
        with open(path) as fh:
            genes = [line.strip() for line in fh if line.strip()]
    if not genes:
        raise DataFileError(f"{str(path)!r} holds no gene names; a hit list needs at least one gene.")
    return genes


def write(obj: ad.AnnData | md.MuData, path: str | Path) -> Path:
    """Write an AnnData (``.h5ad``) or MuData (``.h5mu``) atomically.

    The object is written to a temporary file beside ``path`` and then renamed
    (:func:`scagents._atomic.atomic_path`), so a process killed while writing never leaves half a
    file at ``path`` (an earlier file there stays intact until the rename).

    Returns
    -------
    The path written.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if hasattr(obj, "mod"):
            obj.write(str(tmp))
        else:
            obj.write_h5ad(tmp)
    return path

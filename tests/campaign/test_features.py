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

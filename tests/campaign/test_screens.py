"""Screen read-outs: hit lists load without pickles; a crafted ``topmovers_*.npy`` never runs."""

from __future__ import annotations

import numpy as np
import pytest

from scagents.campaign.screens import load_screen
from scagents.errors import DataFileError
from tests.conftest import shared_file


class Payload:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _screen(folder, hits) -> None:
    (folder / "ground_truth_T.csv").write_text("Gene,Score\nIFNG,2.0\nSTAT1,-1.5\nACTB,0.1\n")
    np.save(folder / "topmovers_T.npy", hits, allow_pickle=True)


def test_string_hit_list_loads(tmp_path):
    _screen(tmp_path, np.array(["ifng", "STAT1", "NOTSCORED"]))
    s = load_screen("T", tmp_path)
    assert s.hits == {"IFNG", "STAT1"} and len(s.scores) == 3


def test_pickled_hit_list_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    _screen(tmp_path, np.array([Payload(marker), "IFNG"], dtype=object))
    with pytest.raises(DataFileError, match="pickled Python objects") as info:
        load_screen("T", tmp_path)
    assert "numpy.save" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["IFNG", "IL2", "Sanchez21", "Scharenberg22",
                                  "Steinhart_crispra_GD2_D22"])
def test_shared_screens_still_load(name):
    folder = shared_file("screens")
    s = load_screen(name, folder.parent)
    assert len(s.hits) > 10 and len(s.scores) > 1000

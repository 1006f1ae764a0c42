"""Screen read-outs: hit lists load without pickles (a crafted ``topmovers_*.npy`` never runs); screens in
the shared format from any path; hits under an objective; the retrospective loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scagents.campaign.acquisition import PriorDesigner
from scagents.campaign.screens import (
    load_screen,
    load_screen_file,
    retrospective_picks,
    run_retrospective,
    screen_hits,
)
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


def _write(tmp_path, name="MINE", hits=("B", "D", "Z"), pickled=False):
    pd.DataFrame({"Gene": list("abcdef"), "Score": [0.0, 3.0, 0.1, -2.5, 0.2, -0.1]}).to_csv(
        tmp_path / f"ground_truth_{name}.csv", index=False)
    arr = np.array(list(hits), dtype=object if pickled else str)
    np.save(tmp_path / f"topmovers_{name}.npy", arr, allow_pickle=pickled)
    return tmp_path / f"ground_truth_{name}.csv"


def test_load_screen_file_and_hits_by_objective(tmp_path):
    s = load_screen_file(_write(tmp_path))
    assert s.name == "MINE" and list(s.scores.index) == list("ABCDEF")
    assert s.hits == {"B", "D"}  # Z is not a scored gene
    assert screen_hits(s, "either").tolist() == [False, True, False, True, False, False]
    assert screen_hits(s, "increase").tolist() == [False, True, False, False, False, False]
    assert screen_hits(s, "decrease").tolist() == [False, False, False, True, False, False]


def test_load_screen_file_refuses_pickle_and_missing_files(tmp_path):
    with pytest.raises(DataFileError, match="pickle"):
        load_screen_file(_write(tmp_path, "P", pickled=True))
    with pytest.raises(DataFileError, match="topmovers_Q.npy"):
        pd.DataFrame({"Gene": ["A"], "Score": [1.0]}).to_csv(tmp_path / "ground_truth_Q.csv", index=False)
        load_screen_file(tmp_path / "ground_truth_Q.csv")


def test_retrospective_curve_counts_the_picks():
    X = np.eye(6)
    scores = np.array([0.0, 3.0, 0.1, -2.5, 0.2, -0.1])
    hit = np.array([False, True, False, True, False, False])
    des = PriorDesigner(prior=np.array([6, 5, 4, 3, 2, 1.0]))
    picks = retrospective_picks(des, X, scores, n_rounds=3, batch=2)
    assert [p.tolist() for p in picks] == [[0, 1], [2, 3], [4, 5]]
    assert run_retrospective(des, X, scores, hit, n_rounds=3, batch=2) == [0.5, 1.0, 1.0]

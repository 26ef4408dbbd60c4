"""The built-in pruners: which singular values a budget keeps, on hand-made scores."""


import pytest
import torch

from harness.errors import HarnessError
from harness.plugins import registry


def test_global_fraction_prunes_the_lowest_across_matrices():
    scores = {"a": torch.tensor([[5.0, 1.0, 3.0]]), "b": torch.tensor([[0.0, 4.0], [2.0, 6.0]])}
    keep = registry().get("pruners", "global-fraction")(scores, 0.5, {})
    assert keep["a"].tolist() == [[True, False, True]]
    assert keep["b"].tolist() == [[False, True], [False, True]]


def test_per_matrix_and_threshold_pruners():
    scores = {"a": torch.tensor([[5.0, 1.0, 3.0, 2.0]]), "b": torch.tensor([[10.0, 40.0, 20.0, 30.0]])}
    keep = registry().get("pruners", "per-matrix")(scores, 0.5, {})
    assert keep["a"].tolist() == [[True, False, True, False]]
    assert keep["b"].tolist() == [[False, True, False, True]]
    keep = registry().get("pruners", "threshold")(scores, 0.0, {"threshold": 3.0})
    assert keep["a"].tolist() == [[True, False, True, False]] and bool(keep["b"].all())
    with pytest.raises(HarnessError, match="--threshold"):
        registry().get("pruners", "threshold")(scores, 0.0, {})

"""The paired tests of harness/stats.py on cases whose answer is known by hand."""


import numpy as np
import pytest

from harness import stats


def test_mcnemar_known_answers():
    base = np.array([1] * 10 + [0] * 10)
    assert stats.mcnemar_exact(base, base) == 1.0
    cand = np.array([0] * 10 + [1] * 10)  # 10 discordant each way: no evidence
    assert stats.mcnemar_exact(base, cand) == pytest.approx(1.0)
    cand = np.array([1] * 10 + [1] * 10)  # 10 fixed, none broken: p = 2 / 2**10
    assert stats.mcnemar_exact(base, cand) == pytest.approx(2 / 1024)
    assert stats.paired_p_value(base, cand) == pytest.approx(2 / 1024)
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    assert stats.paired_bootstrap(x, x + 1.0) < 0.001
    assert stats.paired_bootstrap(x, x + rng.normal(scale=0.01, size=200)) > 0.05

"""Paired significance tests of a pruned model against the unpruned one on the same examples."""

from __future__ import annotations

import math

import numpy as np


def mcnemar_exact(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """Two-sided exact McNemar p-value for paired 0/1 outcomes.

    Only the discordant pairs matter: b = baseline right & candidate wrong, c = the reverse.
    Under the null each discordant pair is a fair coin, so p = 2 * P(Binom(b+c, 1/2) <= min(b, c)).
    """
    baseline, candidate = np.asarray(baseline) > 0.5, np.asarray(candidate) > 0.5
    b = int(np.sum(baseline & ~candidate))
    c = int(np.sum(~baseline & candidate))
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_bootstrap(baseline: np.ndarray, candidate: np.ndarray, iters: int = 10_000,
                     seed: int = 0) -> float:
    """Two-sided paired bootstrap p-value for a difference of means (any real-valued metric)."""
    diff = np.asarray(candidate, float) - np.asarray(baseline, float)
    if len(diff) == 0 or np.allclose(diff, 0):
        return 1.0
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(iters, len(diff)))].mean(1)
    # how often the resampled difference lands on the other side of zero, both tails
    p = 2 * min(np.mean(means <= 0), np.mean(means >= 0))
    return float(min(1.0, max(p, 1.0 / iters)))


def paired_p_value(baseline: np.ndarray, candidate: np.ndarray) -> float:
    """McNemar for 0/1 metrics (accuracy), paired bootstrap otherwise."""
    if len(baseline) != len(candidate):
        return float("nan")
    values = np.concatenate([baseline, candidate])
    if np.isin(values, (0.0, 1.0)).all():
        return mcnemar_exact(baseline, candidate)
    return paired_bootstrap(baseline, candidate)


def permutation_p_value(a: np.ndarray, b: np.ndarray, iters: int = 20_000, seed: int = 0) -> float:
    """Two-sided permutation test of mean(a) - mean(b) for two small samples (seeds).

    Used across seeds: eigen's per-seed test accuracies against random-sv's, where one lucky
    random draw can match a method. Exact (every split of the pooled values) when there are at
    most `iters` splits, Monte Carlo otherwise. NaN with fewer than two values on either side,
    where a seed distribution does not exist.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    pooled = np.concatenate([a, b])
    observed = abs(a.mean() - b.mean())
    n, total = len(a), len(pooled)
    if math.comb(total, n) <= iters:
        from itertools import combinations

        idx = np.array(list(combinations(range(total), n)))  # (splits, n)
        in_a = np.zeros((len(idx), total), bool)
        np.put_along_axis(in_a, idx, True, axis=1)
    else:
        rng = np.random.default_rng(seed)
        in_a = np.argsort(rng.random((iters, total)), axis=1) < n
    mean_a = (in_a * pooled).sum(1) / n
    mean_b = (~in_a * pooled).sum(1) / (total - n)
    # a tiny tolerance so ties with the observed split count as "as extreme"
    return float(np.mean(np.abs(mean_a - mean_b) >= observed - 1e-12))


def smallest_permutation_p(n: int, m: int) -> float:
    """The smallest p `permutation_p_value` can return for `n` values against `m` (1.0 where
    either side has fewer than two): the observed split itself is always as extreme as
    itself, and with n == m so is its mirror. A method whose seeds cannot reach alpha against
    random-sv's is untested across seeds, not beaten: 2 seeds against 4 bottom out at 1/15."""
    if n < 2 or m < 2:
        return 1.0
    return (2 if n == m else 1) / math.comb(n + m, n)

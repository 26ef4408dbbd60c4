"""Paired significance tests of a pruned model against the unpruned one on the same examples."""

from __future__ import annotations

import functools
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


# --- The board's analysis (docs/statistics.md): paired effects over seeds and examples ---

RESAMPLES = 4000  # bootstrap draws; the p resolution is 1 / RESAMPLES
SIGN_FLIPS = 9999  # Monte Carlo sign flips where 2**n is more (exact below that)


def sign_flip_p(diff: np.ndarray, resamples: int = SIGN_FLIPS, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p of the mean of paired per-example differences.

    Under "the method is the baseline relabelled" each example's difference is as likely
    positive as negative. Exact (every sign pattern) when 2**n <= resamples, else Monte Carlo
    with the observed pattern counted once, so p is never 0. This is scipy's
    `permutation_test(..., permutation_type="samples")` for one sample (tests check they
    agree), written as one (draws, n) @ (n,) product: scipy's takes 0.4 s a call here, and
    the rule's simulation makes thousands of calls.
    """
    diff = np.asarray(diff, float)
    diff = diff[diff != 0]  # a zero flips to itself
    n = len(diff)
    if n == 0:
        return 1.0
    observed = abs(diff.mean()) - 1e-12 * max(1.0, abs(diff).max())  # ties count as extreme
    if 2**n <= resamples:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        return float(np.mean(np.abs(signs @ diff) / n >= observed))
    rng = np.random.default_rng(seed)
    signs = 1 - 2 * rng.integers(0, 2, size=(resamples, n), dtype=np.int8)
    extreme = np.sum(np.abs(signs @ diff) / n >= observed)
    return float((extreme + 1) / (resamples + 1))


@functools.lru_cache(maxsize=8)
def _counts(n: int, draws: int, seed: int) -> np.ndarray:
    """(draws, n) bootstrap weights: how often each of n items is drawn, over n, per draw.

    Cached: a board bootstraps hundreds of comparisons on the same n examples, and drawing the
    weights (not the sums) is what costs; sharing them is common random numbers, which also
    makes two comparisons on the same examples resample the same examples."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(draws, n)) + n * np.arange(draws)[:, None]
    weights = (np.bincount(picks.ravel(), minlength=draws * n).reshape(draws, n) / n).astype(np.float32)
    weights.flags.writeable = False
    return weights


def two_way_bootstrap(diff: np.ndarray, seeded: bool, resamples: int = RESAMPLES, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float, float, float]:
    """(low, high, standard error, p) of the mean of a (seeds, examples) matrix, resampling
    both: seeds (rows, when `seeded`) and examples (columns, the same draw for every row so
    the pairing holds). A comparison that fixed one test split and varied only seeds, or one
    seed and varied only examples, would understate its variance (Bouthillier et al.).

    With few seeds a plain bootstrap shrinks the between-seed variance by (S-1)/S; the rows
    are first spread about their mean by sqrt(S/(S-1)), so it is unbiased. p is the share of
    draws on the far side of zero, doubled: the percentile interval at 1 - p just touches 0.
    Every draw is one weighted sum, (draws, S) @ (S, N) then a row-wise dot with (draws, N):
    no loop over draws, seeds or examples.
    """
    diff = np.atleast_2d(np.asarray(diff, float))
    s, n = diff.shape
    if seeded and s > 1:
        centre = diff.mean(0, keepdims=True)
        diff = centre + np.sqrt(s / (s - 1)) * (diff - centre)
        rows = _counts(s, resamples, seed + 1)  # (draws, S)
    else:
        rows = np.full((resamples, s), 1 / s)
    cols = _counts(n, resamples, seed)  # (draws, N)
    draws = np.einsum("rn,rn->r", rows @ diff, cols)
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    p = 2 * min(np.mean(draws <= 0), np.mean(draws >= 0))
    return float(low), float(high), float(draws.std(ddof=1)), float(min(1.0, max(p, 1 / resamples)))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment: the family-wise error stays at alpha over every method
    compared on one (model, task), whatever their dependence. (scipy has only
    Benjamini-Hochberg, which controls the false discovery rate, not the chance of one false
    win; statsmodels' multipletests says the same as this.)"""
    p = np.asarray(p_values, float)
    adjusted = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return adjusted
    order = np.argsort(p[ok])
    m = int(ok.sum())
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[ok][order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    adjusted[ok] = out
    return adjusted


def detectable_effect(se: float, alpha: float = 0.05, power: float = 0.8, tests: int = 1) -> float:
    """The smallest true effect a two-sided test at Holm's first step (alpha / tests) finds
    with probability `power`, given the comparison's standard error: (z_(1-a/2) + z_power) * se."""
    from scipy.stats import norm

    return float((norm.ppf(1 - alpha / (2 * max(tests, 1))) + norm.ppf(power)) * se)

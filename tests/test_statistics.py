"""The verdict rule, checked by simulation rather than assumed (docs/statistics.md).

Boards with no true effect: every method is a relabelled baseline (a random-sv-like strategy
drawn again with other seeds), with seed noise and examples shaped like the folded int_mult
(400 documents, accuracy about 40%) and CB (306 documents, about 55%). The rule must call a
win on at most 5% of them, within Monte Carlo error, and a method with a planted effect equal
to the board's stated detectable effect must win about 80% of the time. Each scenario is
also hard enough that a loosened rule fails it: without Holm's correction, or with the
examples-only sign-flip test (blind to seed noise), the false-win rate is above 5%.

The boards go through `analysis.compare` and `analysis.judge`, the code `harness leaderboard`
runs; only the bootstrap's number of draws is smaller (it sets the p's resolution, not its
validity).
"""

from __future__ import annotations

import numpy as np
import pytest

from harness import analysis
from harness.analysis import Candidate, compare, judge

BOARDS = 1000
RESAMPLES = 500
METHODS = 3
SEEDS = 4
MC = 2 * np.sqrt(0.05 * 0.95 / BOARDS)  # two Monte Carlo standard errors at 5%

SHAPES = {  # examples, per-example success Beta(a, b), between-seed sd of accuracy
    "int_mult, 5 folds": (400, 1.2, 1.8, 0.06),
    "cb, 5 folds": (306, 1.6, 1.3, 0.05),
}


def simulate(rng, n: int, a: float, b: float, seed_sd: float, effect: float = 0.0):
    """One board: a seeded baseline and METHODS methods drawn like it (the first shifted by
    `effect`); each method's difference from the baseline paired by seed and example."""
    difficulty = rng.beta(a, b, n)

    def draw(shift: float) -> np.ndarray:  # (SEEDS, n) outcomes, each seed shifted as a whole
        p = np.clip(difficulty + rng.normal(0, seed_sd, (SEEDS, 1)) + shift, 0, 1)
        return (rng.random((SEEDS, n)) < p).astype(float)

    baseline = draw(0.0)
    candidates = []
    for j in range(METHODS):
        method = draw(effect if j == 0 else 0.0)
        c = compare("baseline", method - baseline, seeded=True, resamples=RESAMPLES)
        # the relabelled baseline is the best baseline both at equal budget and as tuned
        candidates.append(Candidate(f"m{j}", float(method.mean()), c, c))
    return judge(candidates), candidates


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_rule_holds_its_false_win_rate_and_its_stated_power(shape):
    n, a, b, seed_sd = SHAPES[shape]
    rng = np.random.default_rng(2026)
    wins = no_holm = examples_only = 0
    detectable = []
    for _ in range(BOARDS):
        verdict, candidates = simulate(rng, n, a, b, seed_sd)
        wins += verdict.status == "WIN"
        detectable.append(verdict.mde)
        positive = [c for c in candidates if c.equal.delta > 0]
        no_holm += any(c.p < analysis.ALPHA for c in positive)
        examples_only += any(min(1.0, METHODS * c.equal.p_sign) < analysis.ALPHA for c in positive)
    false_wins = wins / BOARDS
    assert false_wins <= 0.05 + MC, f"{shape}: false wins {false_wins:.3f}"
    # the scenario can tell a loosened rule: each of these would pass a false win too often
    assert no_holm / BOARDS > 0.05 + MC / 2, f"{shape}: without Holm {no_holm / BOARDS:.3f}"
    assert examples_only / BOARDS > 0.05 + MC, f"{shape}: examples only {examples_only / BOARDS:.3f}"

    stated = float(np.mean(detectable))
    planted = 400
    hits = sum("m0" in [c.name for c in simulate(rng, n, a, b, seed_sd, effect=stated)[0].winners]
               for _ in range(planted))
    assert 0.65 <= hits / planted <= 0.92, f"{shape}: power {hits / planted:.2f} at {stated:.3f}"

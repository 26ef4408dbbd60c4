"""The board's comparisons: best equal-budget baseline (paired), seeds vs random-sv, verdicts."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from harness import per_example, report
from harness.leaderboard import Row, append
from harness.stats import mcnemar_exact, permutation_p_value, smallest_permutation_p

N = 200


def cell(csv, strategy, fraction, seed, val_correct, test_correct, key):
    """Rows of one cell with per-example files: the first k examples right, the rest wrong."""
    out = []
    for split, k in (("validation", val_correct), ("test", test_correct)):
        metric = (np.arange(N) < k).astype(float) if isinstance(k, int) else np.asarray(k, float)
        nll = 2.0 - metric  # any loss that moves with the metric
        per_example.save(csv, key, split, metric, nll)
        out.append(Row(model="m", task="t", split=split, strategy=strategy, fraction=fraction,
                       metric="acc", value=metric.mean(), stderr=0.01, n=N, seed=seed, seconds=1.0,
                       harness_version="0", timestamp="now", config_hash=key, delta=0.0,
                       p_value=0.5, nll=nll.mean(), nll_delta=0.0))
    return out


def only_test(csv, strategy, fraction, seed, test_correct, key):
    """The test row of a cell run with --select-on none (no validation row)."""
    return [r for r in cell(csv, strategy, fraction, seed, 0, test_correct, key) if r.split == "test"]


def build(tmp_path, eigen_test: int, random_tests: list[int]) -> pd.DataFrame:
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    for seed, rt in enumerate(random_tests):
        rows += cell(csv, "eigen", 0.2, seed, 90, eigen_test + seed, f"e{seed}")
        rows += cell(csv, "eigen", 0.4, seed, 10, 199, f"e4{seed}")  # wins on test only: never chosen
        rows += cell(csv, "random-sv", 0.2, seed, 60, rt, f"r{seed}")
    rows += cell(csv, "smallest-sv", 0.2, 0, 40, 70, "s")
    append(csv, rows)
    return report.table(report.load([csv]))


def test_best_equal_budget_baseline_is_paired_on_the_same_examples(tmp_path):
    t = build(tmp_path, eigen_test=120, random_tests=[60, 62, 64, 66])
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.fraction == "0.2" and eigen.role == "method"
    # random-sv's mean at 0.2 (63) beats smallest-sv's (70)? no: smallest-sv is best at 70
    assert eigen.best_baseline == "smallest-sv"
    # eigen seed s: first 120+s right; smallest-sv: first 70 right -> 50+s discordant, all one way
    expected = np.median([mcnemar_exact((np.arange(N) < 70), (np.arange(N) < 120 + s))
                          for s in range(4)])
    assert eigen.p_vs_best_median == pytest.approx(expected)
    assert eigen.delta_vs_best_mean == pytest.approx((121.5 - 70) / N)
    # eigen's four seeds (120..123) against random-sv's (60..66): as far apart as can be
    assert eigen.p_seeds_vs_random == pytest.approx(2 / 70)
    assert eigen.nll_mean == pytest.approx(2 - 121.5 / N)
    words = report.verdicts(t)
    assert words == [words[0]] and "m / t: beats every baseline: eigen at 0.2" in words[0]


def test_a_lucky_random_draw_stops_the_verdict(tmp_path):
    # eigen beats the best baseline on average and, seed by seed, on the same examples (three
    # of four seeds); but one random-sv draw beats every eigen seed, so across seeds eigen is
    # not distinguishable from random directions
    t = build(tmp_path, eigen_test=85, random_tests=[60, 62, 64, 130])
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.best_baseline == "random-sv"  # mean 79 beats smallest-sv's 70
    assert eigen.delta_vs_best_mean > 0 and eigen.p_vs_best_median < 0.05
    assert eigen.p_seeds_vs_random > 0.05
    assert "no method beats every baseline" in report.verdicts(t)[0]


def test_rows_without_example_files_get_no_paired_p(tmp_path):
    csv = tmp_path / "results.csv"
    rows = cell(csv, "eigen", 0.2, 0, 90, 120, "e") + cell(csv, "random-sv", 0.2, 0, 60, 60, "r")
    append(csv, rows)
    per_example.path(csv, "r", "test").unlink()
    t = report.table(report.load([csv]))
    assert np.isnan(t[t.strategy == "eigen"].iloc[0].p_vs_best_median)


def test_permutation_p_value_is_exact_for_small_samples():
    a, b = np.array([0.30, 0.35, 0.33]), np.array([0.20, 0.36, 0.25, 0.28])
    pooled = np.concatenate([a, b])
    observed = abs(a.mean() - b.mean())
    splits = list(combinations(range(7), 3))
    brute = np.mean([abs(pooled[list(s)].mean() - np.delete(pooled, list(s)).mean()) >= observed - 1e-12
                     for s in splits])
    assert permutation_p_value(a, b) == pytest.approx(brute)
    assert np.isnan(permutation_p_value(a[:1], b))


def test_new_methods_are_paired_with_eigen_seed_by_seed_at_their_own_fractions(tmp_path):
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    for seed in range(2):
        rows += cell(csv, "eigen", 0.2, seed, 90, 100 + seed, f"e{seed}")
        rows += cell(csv, "random-sv", 0.2, seed, 60, 60, f"r{seed}")
        # the new method: chosen at 0.1 on validation, better than eigen on test
        rows += cell(csv, "eigen-new", 0.1, seed, 95, 160 + seed, f"n{seed}")
        rows += cell(csv, "eigen-new", 0.2, seed, 20, 199, f"n2{seed}")  # never chosen
    append(csv, rows)
    t = report.table(report.load([csv]))
    new = t[t.strategy == "eigen-new"].iloc[0]
    assert new.fraction == "0.1"
    expected = np.median([mcnemar_exact(np.arange(N) < 100 + s, np.arange(N) < 160 + s) for s in range(2)])
    assert new.p_vs_eigen_median == pytest.approx(expected) and expected < 0.05
    assert new.delta_vs_eigen_mean == pytest.approx(60 / N)
    assert np.isnan(t[t.strategy == "eigen"].iloc[0].p_vs_eigen_median)  # not against itself
    words = report.verdicts(t)[0]
    assert "Against eigen" in words and "eigen-new is better (+30.00 points" in words
    assert "| Δ vs eigen | p vs eigen |" in report.markdown(t)


def test_a_method_run_at_one_fraction_is_judged_there_and_the_verdict_says_so(tmp_path):
    csv = tmp_path / "results.csv"
    rows = only_test(csv, "none", 0.0, 0, 50, "none")
    rows += only_test(csv, "eigen", 0.2, 0, 120, "e")  # --select-on none
    rows += only_test(csv, "random-sv", 0.2, 0, 60, "r")
    append(csv, rows)
    words = report.verdicts(report.table(report.load([csv])))[0]
    assert "beats every baseline (at a fixed fraction, not chosen on validation): eigen at 0.2" in words


def test_methods_run_at_one_fixed_fraction_are_judged_beside_chosen_ones_and_paired_with_eigen(tmp_path):
    """eigen chosen on validation (one fraction run), a new method at that fraction with
    --select-on none: it is paired with eigen's row at the same fraction and enters the
    verdict, marked fixed; a method with two fixed fractions and no choice does not (its best
    would be picked on test)."""
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    rows += cell(csv, "eigen", 0.2, 0, 90, 100, "e") + cell(csv, "eigen", 0.3, 0, 80, 90, "e3")
    rows += cell(csv, "random-sv", 0.2, 0, 60, 60, "r")
    rows += only_test(csv, "eigen-new", 0.2, 0, 170, "n")
    rows += only_test(csv, "eigen-twice", 0.2, 0, 190, "t2")
    rows += only_test(csv, "eigen-twice", 0.3, 0, 195, "t3")
    append(csv, rows)
    t = report.table(report.load([csv]))
    new = t[t.strategy == "eigen-new"].iloc[0]
    assert new.chosen_on == "none" and new.delta_vs_eigen_mean == pytest.approx(70 / N)
    assert new.p_vs_eigen_median == pytest.approx(mcnemar_exact(np.arange(N) < 100, np.arange(N) < 170))
    words = report.verdicts(t)[0]
    assert "eigen-new at 0.2 (fixed) (+55.00 points over random-sv" in words
    assert "eigen-twice" not in words
    assert "eigen-new is better (+35.00 points" in words  # vs eigen's chosen row (0.2, 100 right)


def test_one_seed_against_several_random_draws_is_not_a_win_yet(tmp_path):
    """Seed for seed above the best baseline, but a single seed cannot be set against random-sv's
    seed distribution: the verdict names it as one to replicate, not as a win."""
    csv = tmp_path / "results.csv"
    rows = only_test(csv, "none", 0.0, 0, 50, "none")
    rows += only_test(csv, "random-sv", 0.2, 0, 60, "r0")
    rows += only_test(csv, "random-sv", 0.2, 1, 70, "r1")
    rows += only_test(csv, "eigen-once", 0.2, 0, 150, "o")
    append(csv, rows)
    t = report.table(report.load([csv]))
    once = t[t.strategy == "eigen-once"].iloc[0]
    assert once.seeds == 1 and once.random_seeds == 2 and once.p_vs_best_median < 0.05
    words = report.verdicts(t)[0]
    assert "no method beats every baseline" in words
    # random-sv's mean over its two seeds is 65 right: +42.5 points
    assert "not judged across seeds (replicate them): eigen-once at 0.2 (+42.50 points" in words
    assert "1 seed vs 2 of random-sv: smallest attainable p 1)" in words


def test_seeds_too_few_for_the_across_seeds_test_are_named_not_failed(tmp_path):
    """Two seeds above every one of random-sv's four, seed for seed: the permutation test of 2
    values against 4 cannot go below 1/15, so the method is one to replicate, while three
    seeds against four (floor 1/35) are judged, and win."""
    csv = tmp_path / "results.csv"
    rows = only_test(csv, "none", 0.0, 0, 50, "none")
    for seed, right in enumerate([60, 62, 64, 66]):
        rows += only_test(csv, "random-sv", 0.2, seed, right, f"r{seed}")
    for seed, right in enumerate([150, 152, 154]):
        rows += only_test(csv, "eigen-three", 0.2, seed, right, f"t{seed}")
        if seed < 2:
            rows += only_test(csv, "eigen-two", 0.2, seed, right + 10, f"w{seed}")
    append(csv, rows)
    t = report.table(report.load([csv]))
    two = t[t.strategy == "eigen-two"].iloc[0]
    assert two.seeds == 2 and two.random_seeds == 4
    assert two.p_seeds_vs_random == pytest.approx(1 / 15)  # the floor, and above alpha
    words = report.verdicts(t)[0]
    assert "beats every baseline" in words and "eigen-three at 0.2" in words
    assert "(replicate them): eigen-two at 0.2" in words
    assert "2 seeds vs 4 of random-sv: smallest attainable p 0.067)" in words


def test_smallest_permutation_p_is_what_a_perfect_separation_gets():
    for n, m in [(2, 2), (2, 4), (3, 4), (4, 4), (2, 8)]:
        a, b = np.arange(n) + 100.0, np.arange(m) * 0.5
        assert permutation_p_value(a, b) == pytest.approx(smallest_permutation_p(n, m))
    assert smallest_permutation_p(1, 8) == 1.0


def tuned_grid(csv, smallest_at_01: int) -> list:
    """4 seeds: eigen wins validation at 0.2 and beats every baseline there; smallest-sv,
    weak at 0.2, is chosen at 0.1 on validation, where it gets `smallest_at_01` right."""
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    for seed in range(4):
        rows += cell(csv, "eigen", 0.1, seed, 10, 30, f"e1{seed}")
        rows += cell(csv, "eigen", 0.2, seed, 90, 120 + seed, f"e{seed}")
        rows += cell(csv, "random-sv", 0.1, seed, 10, 40 + seed, f"r1{seed}")
        rows += cell(csv, "random-sv", 0.2, seed, 10, 60 + seed, f"r{seed}")
    rows += cell(csv, "smallest-sv", 0.1, 0, 80, smallest_at_01, "s1")
    rows += cell(csv, "smallest-sv", 0.2, 0, 20, 70, "s2")
    return rows


def test_a_win_at_equal_budget_only_is_named_so(tmp_path):
    """Above every baseline at its own fraction, but smallest-sv at the fraction it is chosen
    at on validation does as well: a user who tuned the baseline gains nothing, so no win."""
    csv = tmp_path / "results.csv"
    append(csv, tuned_grid(csv, smallest_at_01=121))
    t = report.table(report.load([csv]))
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.fraction == "0.2" and eigen.best_baseline == "smallest-sv"
    assert eigen.p_vs_best_median < 0.05 and eigen.p_seeds_vs_random < 0.05
    assert eigen.tuned_baseline == "smallest-sv"  # 121 right at 0.1, beating none's 50
    assert eigen.delta_vs_tuned_mean == pytest.approx(0.5 / N)
    words = report.verdicts(t)[0]
    assert "no method beats every baseline" in words
    assert "not above the best baseline as a user would run it (at its own validation-chosen" in words
    assert "eigen at 0.2 (+0.25 points vs smallest-sv as tuned, paired p = 1)" in words
    assert "| best baseline (as tuned) | Δ vs it | p vs it |" in report.markdown(t)
    # the same grid with smallest-sv weak at its chosen fraction too: a win
    csv2 = tmp_path / "again.csv"
    append(csv2, tuned_grid(csv2, smallest_at_01=75))
    t2 = report.table(report.load([csv2]))
    assert t2[t2.strategy == "eigen"].iloc[0].tuned_baseline == "smallest-sv"
    assert "beats every baseline: eigen at 0.2" in report.verdicts(t2)[0]


def test_seeds_that_chose_several_fractions_face_random_sv_at_each(tmp_path):
    """Three seeds choose 0.2 and one 0.1: the seeds are told apart from random-sv at 0.2 but
    not at 0.1, where random-sv's draws reach as high; the larger p is the one reported."""
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    for seed in range(4):
        rows += cell(csv, "random-sv", 0.1, seed, 10, [100, 130, 160, 190][seed], f"r1{seed}")
        rows += cell(csv, "random-sv", 0.2, seed, 10, 60 + seed, f"r{seed}")
        rows += cell(csv, "eigen", 0.1, seed, 80 if seed == 3 else 10, 140, f"e1{seed}")
        rows += cell(csv, "eigen", 0.2, seed, 50, 140 + seed, f"e{seed}")
    append(csv, rows)
    df = report.load([csv])
    t = report.table(df)
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.fraction == "0.1, 0.2"
    values = np.array([140, 141, 142, 140]) / N  # seed 3 at 0.1
    at_01 = permutation_p_value(values, np.array([100, 130, 160, 190]) / N)
    at_02 = permutation_p_value(values, np.arange(60, 64) / N)
    assert at_02 < 0.05 < at_01
    assert eigen.p_seeds_vs_random == pytest.approx(at_01)
    assert "no method beats every baseline" in report.verdicts(t)[0]


def test_a_method_faces_its_own_random_control_across_seeds_not_only_random_sv(tmp_path):
    """The kinds search against random-sv (K only) is far above it on every seed, but its own
    control (the same search over random singular values) draws as high on one seed: seed for
    seed the method is above its best baseline, across seeds it is not told apart from the
    control, so no win; and the control is named in the verdict."""
    csv = tmp_path / "results.csv"
    rows = only_test(csv, "none", 0.0, 0, 50, "none")
    for seed in range(4):
        rows += only_test(csv, "random-sv", 0.2, seed, 60 + seed, f"r{seed}")
        rows += only_test(csv, "random-sv-budget-kinds", 0.2, seed, [80, 82, 84, 160][seed], f"c{seed}")
        rows += only_test(csv, "eigen-kinds", 0.2, seed, 150 + seed, f"k{seed}")
    append(csv, rows)
    df = report.load([csv])
    t = report.table(df)
    kinds = t[t.strategy == "eigen-kinds"].iloc[0]
    values = np.arange(150, 154) / N
    assert permutation_p_value(values, np.arange(60, 64) / N) < 0.05  # random-sv alone: a win
    against_control = permutation_p_value(values, np.array([80, 82, 84, 160]) / N)
    assert against_control > 0.05
    assert kinds.p_seeds_vs_random == pytest.approx(against_control)
    assert kinds.random_controls == "random-sv, random-sv-budget-kinds" and kinds.random_seeds == 4
    assert kinds.p_vs_best_median < 0.05  # seed for seed above random-sv-budget-kinds (mean 101.5)
    words = report.verdicts(t)[0]
    assert "no method beats every baseline" in words
    assert f"seeds vs random-sv, random-sv-budget-kinds p = {against_control:.3g}" in words


def test_a_control_with_too_few_seeds_makes_the_method_one_to_replicate(tmp_path):
    """Four seeds of the method against two of its control: the permutation test cannot go
    below 1/15, so the verdict asks for replication instead of judging a win."""
    csv = tmp_path / "results.csv"
    rows = only_test(csv, "none", 0.0, 0, 50, "none")
    for seed in range(4):
        rows += only_test(csv, "eigen-kinds", 0.2, seed, 150 + seed, f"k{seed}")
        if seed < 2:
            rows += only_test(csv, "random-sv-budget-kinds", 0.2, seed, 80 + seed, f"c{seed}")
    append(csv, rows)
    t = report.table(report.load([csv]))
    kinds = t[t.strategy == "eigen-kinds"].iloc[0]
    assert kinds.random_seeds == 2 and kinds.random_controls == "random-sv-budget-kinds"
    words = report.verdicts(t)[0]
    assert "no method beats every baseline" in words
    assert "4 seeds vs 2 of random-sv-budget-kinds: smallest attainable p 0.067)" in words

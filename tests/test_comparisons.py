"""The board's comparisons and verdicts (harness/analysis.py) on results CSVs: paired effects
with intervals over seeds and examples, Holm across methods, seeds and designs kept honest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import per_example, report, stats
from harness.leaderboard import Row, append

N = 200


def cell(csv, strategy, fraction, seed, val_correct, test_correct, key, fold=-1, folds=0, limit=None):
    """Rows of one cell with per-example files: the first k examples right, the rest wrong."""
    out = []
    for split, k in (("validation", val_correct), ("test", test_correct)):
        metric = (np.arange(N) < k).astype(float) if isinstance(k, int) else np.asarray(k, float)
        nll = 2.0 - metric  # any loss that moves with the metric
        per_example.save(csv, key, split, metric, nll)
        out.append(Row(model="m", task="t", split=split, strategy=strategy, fraction=fraction,
                       metric="acc", value=metric.mean(), stderr=0.01, n=len(metric), seed=seed,
                       seconds=1.0, harness_version="0", timestamp="now", config_hash=key, delta=0.0,
                       p_value=0.5, nll=nll.mean(), nll_delta=0.0, fold=fold, folds=folds, limit=limit))
    return out


def only_test(csv, strategy, fraction, seed, test_correct, key):
    """The test row of a cell run with --select-on none (no validation row)."""
    return [r for r in cell(csv, strategy, fraction, seed, 0, test_correct, key) if r.split == "test"]


def shifted(k: int, offset: int) -> np.ndarray:
    """k examples right, starting at `offset` (so two strategies can disagree both ways)."""
    return np.roll(np.arange(N) < k, offset).astype(float)


def board(tmp_path, rows, name="results.csv"):
    csv = tmp_path / name
    append(csv, rows)
    return report.table(report.load([csv]))


def grid(csv, eigen_tests, random_tests, smallest_test=70):
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    for seed, (et, rt) in enumerate(zip(eigen_tests, random_tests, strict=True)):
        rows += cell(csv, "eigen", 0.2, seed, 90, et, f"e{seed}")
        rows += cell(csv, "eigen", 0.4, seed, 10, 199, f"e4{seed}")  # wins on test only: never chosen
        rows += cell(csv, "random-sv", 0.2, seed, 60, rt, f"r{seed}")
    rows += cell(csv, "smallest-sv", 0.2, 0, 40, smallest_test, "s")
    return rows


def test_effects_are_paired_on_the_same_examples_with_intervals_over_seeds_and_examples(tmp_path):
    csv = tmp_path / "results.csv"
    t = board(tmp_path, grid(csv, [120, 121, 122, 123], [60, 62, 64, 66]))
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.fraction == "0.2" and eigen.role == "method" and eigen.seeds == 4
    assert eigen.best_baseline == "smallest-sv"  # mean 70 beats random-sv's 63
    assert eigen.delta_vs_best_mean == pytest.approx((121.5 - 70) / N)
    assert eigen.delta_vs_best_low < eigen.delta_vs_best_mean < eigen.delta_vs_best_high
    # the rule's p: the larger of the sign-flip test on seed-averaged differences and the
    # two-way bootstrap, each recomputed here from the files
    diffs = np.stack([(np.arange(N) < 120 + s).astype(float) - (np.arange(N) < 70) for s in range(4)])
    expected = max(stats.sign_flip_p(diffs.mean(0)), stats.two_way_bootstrap(diffs, True)[3])
    assert eigen.p_vs_best == pytest.approx(expected)
    assert eigen.value_low < eigen.value_mean < eigen.value_high
    assert eigen.nll_delta_vs_best == pytest.approx(-(121.5 - 70) / N)  # nll = 2 - metric
    verdict = report.verdict_table(t).iloc[0]
    assert verdict.status == "WIN" and verdict.method == "eigen" and eigen.verdict == "WIN"
    assert verdict.equal_baseline == "smallest-sv" and verdict.tuned_baseline == "smallest-sv"
    assert report.verdicts(t)[0].startswith("m / t [task split]: WIN: winner eigen at 0.2")


def test_a_lucky_random_draw_is_seen_by_the_bootstrap_over_seeds(tmp_path):
    """Three of four eigen seeds beat every random draw, one random draw beats them all: the
    examples alone say 'better' (sign-flip p tiny), the seeds say 'cannot tell'."""
    csv = tmp_path / "results.csv"
    t = board(tmp_path, grid(csv, [85, 86, 87, 88], [20, 22, 24, 190], smallest_test=10))
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.best_baseline == "random-sv" and eigen.delta_vs_best_mean > 0
    assert eigen.delta_vs_best_low < 0 < eigen.delta_vs_best_high
    assert report.verdict_table(t).iloc[0].status != "WIN"


def test_rows_without_example_files_get_no_comparison(tmp_path):
    csv = tmp_path / "results.csv"
    rows = cell(csv, "eigen", 0.2, 0, 90, 120, "e") + cell(csv, "random-sv", 0.2, 0, 60, 60, "r")
    append(csv, rows)
    per_example.path(csv, "r", "test").unlink()
    t = report.table(report.load([csv]))
    assert np.isnan(t[t.strategy == "eigen"].iloc[0].p_vs_best)


def test_holm_keeps_one_lucky_method_among_many_from_winning(tmp_path):
    """A method at p about 0.016 wins alone; among four methods Holm multiplies it by four."""
    csv = tmp_path / "results.csv"
    base = shifted(100, 0)
    rows = cell(csv, "none", 0.0, 0, 50, base, "none")
    rows += cell(csv, "magnitude", 0.2, 0, 50, base, "mag")
    for seed in range(3):  # 5, 6 and 7 examples more, none fewer: 7 that can flip, p = 2 / 2**7
        lifted = base.copy()
        lifted[100:105 + seed] = 1
        rows += cell(csv, "eigen", 0.2, seed, 60, lifted, f"e{seed}")
    alone = board(tmp_path, rows)
    p_alone = alone[alone.strategy == "eigen"].iloc[0].p_holm
    for extra in ("eigen-a", "eigen-b", "eigen-c"):
        for seed in range(3):
            rows += cell(csv, extra, 0.2, seed, 60, base, f"{extra}{seed}")
    crowded = board(tmp_path, rows)
    eigen = crowded[crowded.strategy == "eigen"].iloc[0]
    assert eigen.p_holm == pytest.approx(min(1.0, 4 * p_alone))
    assert p_alone < 0.05 and report.verdict_table(alone).iloc[0].status == "WIN"
    assert eigen.p_holm >= 0.05 and report.verdict_table(crowded).iloc[0].status != "WIN"


def test_a_seeded_method_with_too_few_seeds_is_underpowered_and_says_what_it_needs(tmp_path):
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    rows += cell(csv, "magnitude", 0.2, 0, 50, 50, "mag")
    rows += cell(csv, "eigen", 0.2, 0, 90, 150, "e0")  # one seed, far above: still not a win
    verdict = report.verdict_table(board(tmp_path, rows)).iloc[0]
    assert verdict.status == "UNDERPOWERED" and "at least 3 seeds (eigen has 1 seed)" in verdict.needed


def test_a_small_positive_effect_below_the_detectable_one_is_underpowered(tmp_path):
    csv = tmp_path / "results.csv"
    base = shifted(100, 0)
    rows = cell(csv, "none", 0.0, 0, 50, base, "none")
    rows += cell(csv, "magnitude", 0.2, 0, 50, base, "mag")
    for seed in range(4):  # +1 point, each seed trading a different handful of examples
        mine = base.copy()
        mine[[100 + seed, 101 + seed, 102 + seed]] = 1
        mine[[10 * seed, 10 * seed + 1]] = 0
        rows += cell(csv, "eigen", 0.2, seed, 60, mine, f"e{seed}")
    verdict = report.verdict_table(board(tmp_path, rows)).iloc[0]
    assert verdict.status == "UNDERPOWERED" and 0 < verdict.equal_delta < verdict.mde
    assert "test examples" in verdict.needed or "seeds" in verdict.needed


def test_a_worse_method_is_no_win(tmp_path):
    csv = tmp_path / "results.csv"
    t = board(tmp_path, grid(csv, [60, 61, 62, 63], [60, 62, 64, 66], smallest_test=120))
    assert report.verdict_table(t).iloc[0].status == "NO WIN"


def test_new_methods_are_paired_with_eigen_at_their_own_fractions(tmp_path):
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    for seed in range(3):
        rows += cell(csv, "eigen", 0.2, seed, 90, 100 + seed, f"e{seed}")
        rows += cell(csv, "random-sv", 0.2, seed, 60, 60, f"r{seed}")
        # the new method: chosen at 0.1 on validation, better than eigen on test
        rows += cell(csv, "eigen-new", 0.1, seed, 95, 160 + seed, f"n{seed}")
        rows += cell(csv, "eigen-new", 0.2, seed, 20, 199, f"n2{seed}")  # never chosen
    t = board(tmp_path, rows)
    new = t[t.strategy == "eigen-new"].iloc[0]
    assert new.fraction == "0.1" and new.delta_vs_eigen_mean == pytest.approx(60 / N)
    assert new.p_vs_eigen < 0.05 and new.delta_vs_eigen_low > 0
    assert np.isnan(t[t.strategy == "eigen"].iloc[0].p_vs_eigen)  # not against itself
    # equal budget is at the method's own fraction: no baseline ran at 0.1
    assert new.best_baseline == "" and report.verdict_table(t).iloc[0].method != "eigen-new" or \
        report.verdict_table(t).iloc[0].status != "WIN"


def test_folds_lay_every_example_end_to_end_and_choose_within_each_fold(tmp_path):
    """With --folds the fraction is chosen per fold on that fold's validation rows, and the
    equal-budget baseline is read at each fold's own chosen fraction."""
    csv = tmp_path / "results.csv"
    rows = []
    for fold in range(2):
        rows += cell(csv, "none", 0.0, 0, 50, 50, f"none{fold}", fold, 2)
        for f in (0.1, 0.2):
            rows += cell(csv, "magnitude", f, 0, 50, 40 if f == 0.1 else 80, f"m{f}{fold}", fold, 2)
        for seed in range(3):
            # fold 0 chooses 0.1 on validation, fold 1 chooses 0.2
            good = 0.1 if fold == 0 else 0.2
            for f in (0.1, 0.2):
                rows += cell(csv, "eigen", f, seed, 90 if f == good else 10, 120 + seed,
                             f"e{f}{seed}{fold}", fold, 2)
    t = board(tmp_path, rows)
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert eigen.fraction == "0.1, 0.2" and eigen.chosen_on == "validation"
    assert eigen.folds == 2 and eigen.n == 2 * N and eigen.design == "2 folds"
    # magnitude at 0.1 in fold 0 (40 right) and at 0.2 in fold 1 (80): 60 of 200 on average
    assert eigen.best_baseline_value == pytest.approx(60 / N)
    assert eigen.delta_vs_best_mean == pytest.approx((121 - 60) / N)


def test_a_limited_try_beside_a_full_run_changes_no_verdict(tmp_path):
    """`--limit 10` rows appended to the same CSV are their own design, never mixed in."""
    csv = tmp_path / "results.csv"
    rows = grid(csv, [120, 121, 122, 123], [60, 62, 64, 66])
    full = board(tmp_path, rows)
    before = report.verdict_table(full)
    quick = tmp_path / "quick.csv"
    short = []
    for strategy, fraction, seeds in (("none", 0.0, [0]), ("eigen", 0.2, [0, 1]), ("smallest-sv", 0.2, [0])):
        for seed in seeds:  # a quick try where eigen looks bad
            for r in cell(quick, strategy, fraction, seed, 5, 1 if strategy == "eigen" else 9,
                          f"q{strategy}{seed}", limit=10):
                r.n = 10
                short.append(r)
    append(csv, short)
    # (their examples live beside quick.csv: point the rows' per-example files at csv's folder)
    for r in short:
        for split in ("validation", "test"):
            data = per_example.load(quick, r.config_hash, split)
            per_example.save(csv, r.config_hash, split, data["metric"][:10], data["nll"][:10])
    both = report.table(report.load([csv]))
    after = report.verdict_table(both)
    assert set(after.design) == {"task split", "task split, limit 10"}
    kept = after[after.design == "task split"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.reset_index(drop=True))
    full_eigen = both[(both.strategy == "eigen") & (both.design == "task split")].iloc[0]
    assert full_eigen.n == N and full_eigen.seeds == 4


def test_sign_flip_p_is_scipys_permutation_test():
    from scipy.stats import permutation_test

    rng = np.random.default_rng(3)
    for n in (6, 11):  # exact: every sign pattern
        d = rng.integers(-1, 2, n).astype(float)
        ours = stats.sign_flip_p(d)
        theirs = permutation_test((d,), np.mean, permutation_type="samples", vectorized=True).pvalue
        assert ours == pytest.approx(theirs)
    d = rng.normal(0.1, 1, 300)  # Monte Carlo: both near the same p
    theirs = permutation_test((d,), np.mean, permutation_type="samples", vectorized=True,
                              n_resamples=20000, random_state=1).pvalue
    assert abs(stats.sign_flip_p(d, resamples=20000) - theirs) < 0.02


def test_holm_matches_the_step_down_by_hand():
    p = [0.01, 0.04, 0.03, 0.005, np.nan]
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then made monotone
    assert stats.holm(p)[:4].tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(stats.holm(p)[4])


def test_two_way_bootstrap_sees_seed_noise_that_examples_alone_do_not():
    rng = np.random.default_rng(0)
    example = rng.integers(0, 2, 300).astype(float)
    seeds = np.stack([example + shift for shift in (-0.2, 0.0, 0.1, 0.3)])  # seed effects only
    _, _, se_both, _ = stats.two_way_bootstrap(seeds, seeded=True)
    _, _, se_examples, _ = stats.two_way_bootstrap(seeds, seeded=False)
    assert se_both > 2 * se_examples


def test_the_unpruned_model_has_no_seed_noise_to_ask_seeds_for(tmp_path):
    """`none` runs once whatever --seed says: a method with enough seeds that beats it and the
    equal-budget baseline wins, not 'too few seeds' for the unpruned model's one row."""
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    rows += cell(csv, "magnitude", 0.2, 0, 50, 40, "mag")  # below the unpruned model on test
    for seed in range(3):
        rows += cell(csv, "eigen", 0.2, seed, 90, 150 + seed, f"e{seed}")
    t = board(tmp_path, rows)
    verdict = report.verdict_table(t).iloc[0]
    assert verdict.tuned_baseline == "none" and verdict.status == "WIN", verdict.line


def test_too_few_seeds_on_either_comparison_is_named(tmp_path):
    """The as-tuned reference is a seeded baseline run once: the verdict names that comparison."""
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    rows += cell(csv, "magnitude", 0.2, 0, 50, 60, "mag")
    rows += cell(csv, "random-sv", 0.1, 0, 99, 70, "r01")  # tuned on validation: one seed
    rows += cell(csv, "random-sv", 0.2, 0, 10, 10, "r02")
    for seed in range(3):
        rows += cell(csv, "eigen", 0.2, seed, 90, 150 + seed, f"e{seed}")
        rows += cell(csv, "eigen", 0.1, seed, 10, 10, f"e1{seed}")
    verdict = report.verdict_table(board(tmp_path, rows)).iloc[0]
    assert verdict.status == "UNDERPOWERED" and "too few seeds vs random-sv" in verdict.decided_by
    assert "at least 3 seeds (random-sv has 1 seed)" in verdict.needed


def test_sides_that_never_differ_claim_no_detectable_effect(tmp_path):
    """One seed of eigen answering exactly as the unpruned model and the equal-budget baseline:
    the comparison has no variance, so it can size no test; the verdict says NO WIN and names
    no "detectable effect of 0.00 points" (the README's first example once did)."""
    csv = tmp_path / "results.csv"
    rows = cell(csv, "none", 0.0, 0, 50, 50, "none")
    rows += cell(csv, "magnitude", 0.2, 0, 50, 50, "mag")
    rows += cell(csv, "eigen", 0.2, 0, 50, 50, "e0")
    verdict = report.verdict_table(board(tmp_path, rows)).iloc[0]
    assert verdict.status == "NO WIN" and np.isnan(verdict.mde), verdict.line
    assert "detectable effect" not in verdict.line


def test_a_folded_seed_missing_a_fold_is_named_but_not_in_the_mean(tmp_path):
    """A sweep in progress: seed 3 has fold 0 only. The row's mean, spread and seed count are
    those of the complete seeds (what the comparisons stand on), and the partial seed is named."""
    csv = tmp_path / "results.csv"
    rows = []
    right = {(0, 0): 100, (0, 1): 120, (1, 0): 110, (1, 1): 90, (2, 0): 130, (2, 1): 150, (3, 0): 199}
    for fold in range(2):
        rows += cell(csv, "none", 0.0, 0, 50, 50, f"none{fold}", fold, 2)
    for (seed, fold), k in right.items():
        rows += [r for r in cell(csv, "eigen", 0.2, seed, 0, k, f"e{seed}{fold}", fold, 2)
                 if r.split == "test"]
    for seed in (0, 1):  # a sweep that has reached fold 0 only: no seed is complete yet
        rows += [r for r in cell(csv, "random-sv", 0.2, seed, 0, 60, f"r{seed}", 0, 2) if r.split == "test"]
    t = board(tmp_path, rows)
    early = t[t.strategy == "random-sv"].iloc[0]
    assert early.seeds == 0 and early.seeds_partial == 2
    assert "0 seeds × 2 folds (+2 partial)" in report.markdown(t)
    eigen = t[t.strategy == "eigen"].iloc[0]
    per_seed = np.array([220, 200, 280]) / (2 * N)
    assert eigen.seeds == 3 and eigen.seeds_partial == 1
    assert eigen.value_mean == pytest.approx(per_seed.mean())
    assert eigen.value_std == pytest.approx(per_seed.std(ddof=1))  # between seeds, not folds
    assert "3 seeds × 2 folds (+1 partial)" in report.markdown(t)

"""What a sweep no longer pays for: the baseline evaluated again, test on unchosen cells,
SVD time inside the scoring time; and an automatic batch size that changes no result."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from harness import baseline_cache, evaluate
from harness.cli import cli
from harness.runner import weights_digest

SMALL = ["--task", "int_mult", "--limit", "4", "--calibration-size", "4",
         "--calibration-batch-size", "4", "--device", "cpu"]


def bench(*args):
    return CliRunner().invoke(cli, ["bench", *args], catch_exceptions=False)


@pytest.fixture
def evaluations(monkeypatch):
    """Every lm-eval evaluation the harness runs, as (split, weights digest) pairs."""
    seen = []
    real = evaluate.run

    def counting(lm, task, split, *args, **kwargs):
        seen.append((split, weights_digest(lm.model)))
        return real(lm, task, split, *args, **kwargs)

    monkeypatch.setattr(evaluate, "run", counting)
    return seen


def test_second_sweep_reads_the_baseline_from_disk(tiny_dir, tmp_path, evaluations):
    first = bench("--model", str(tiny_dir), "--output", str(tmp_path / "a.csv"),
                  "--strategy", "none,eigen", "--fraction", "0.2", "--select-on", "validation", *SMALL)
    assert first.exit_code == 0, first.output
    unpruned = evaluations[0][1]
    assert sum(d == unpruned for _, d in evaluations) == 2  # validation and test, once each
    assert len(list(baseline_cache.directory().glob("*.pkl"))) == 2
    evaluations.clear()
    # a new results file: every row is written again, but the baseline is not evaluated
    second = bench("--model", str(tiny_dir), "--output", str(tmp_path / "b.csv"),
                   "--strategy", "none,eigen", "--fraction", "0.2", "--select-on", "validation", *SMALL)
    assert second.exit_code == 0, second.output
    assert evaluations and all(d != unpruned for _, d in evaluations)  # pruned variants only
    assert len(evaluations) == 2
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    cols = ["config_hash", "split", "value", "delta", "p_value", "nll", "nll_delta", "model_hash"]
    pd.testing.assert_frame_equal(a[cols].sort_values(cols[:2]).reset_index(drop=True),
                                  b[cols].sort_values(cols[:2]).reset_index(drop=True))
    # every row names the weights it measured: the unpruned model's digest, pruned or not
    assert set(b.model_hash) == {unpruned[:12]}
    assert (b[b.strategy == "none"].svd_seconds == 0).all()  # the eigen row's: see the clock test
    # another limit is another baseline
    evaluations.clear()
    third = bench("--model", str(tiny_dir), "--output", str(tmp_path / "c.csv"), "--strategy", "none",
                  *SMALL[:2], "--limit", "3", *SMALL[4:])
    assert third.exit_code == 0, third.output
    assert [s for s, _ in evaluations] == ["test"]  # (no fraction to choose: test only)


def test_baseline_key_follows_weights_task_split_and_limit(tiny_dir):
    from harness import tasks as task_lib

    _, tasks = task_lib.load(["int_mult", "int_sum"], None, None)
    w = hashlib.sha256(b"w").hexdigest()
    base = baseline_cache.key(w, tasks["int_mult"], "test", 4, {"dtype": "auto"})
    assert base == baseline_cache.key(w, tasks["int_mult"], "test", 4, {"dtype": "auto"})
    others = [baseline_cache.key(w[::-1], tasks["int_mult"], "test", 4, {"dtype": "auto"}),
              baseline_cache.key(w, tasks["int_sum"], "test", 4, {"dtype": "auto"}),
              baseline_cache.key(w, tasks["int_mult"], "validation", 4, {"dtype": "auto"}),
              baseline_cache.key(w, tasks["int_mult"], "test", None, {"dtype": "auto"}),
              baseline_cache.key(w, tasks["int_mult"], "test", 4, {"dtype": "float32"})]
    assert len({base, *others}) == 6
    assert baseline_cache.load(base) is None
    baseline_cache.save(base, {"value": 0.5})
    assert baseline_cache.load(base) == {"value": 0.5}
    (baseline_cache.directory() / f"{base}.pkl").write_bytes(b"torn")
    assert baseline_cache.load(base) is None  # a damaged file is a miss, not a crash
    assert not list(baseline_cache.directory().glob("*.tmp"))


def test_weights_digest_sees_one_changed_bit():
    from harness.testing import tiny_model

    model = tiny_model("llama", dtype=torch.float32)
    before = weights_digest(model)
    with torch.no_grad():
        p = next(model.parameters())
        p.view(-1).view(torch.int32)[0] ^= 1
    assert weights_digest(model) != before


def test_test_on_chosen_gives_the_leaderboard_of_test_on_all(tiny_dir, tmp_path, evaluations):
    """`chosen` reports the very rows `all` reports, from fewer evaluations. (A tiny random
    model's accuracy does not move with the fraction, so the pick itself is tested against
    report.choose on made-up values below.)"""
    from harness import report

    grid = ["--model", str(tiny_dir), "--task", "int_mult", "--limit", "6",
            "--strategy", "none,eigen,random-sv", "--fraction", "0.2,0.5,0.8", "--seed", "0,1",
            "--calibration-size", "4", "--calibration-batch-size", "4", "--device", "cpu"]
    every = bench(*grid, "--output", str(tmp_path / "all.csv"))
    assert every.exit_code == 0, every.output
    n_all = len(evaluations)
    evaluations.clear()
    chosen = bench(*grid, "--output", str(tmp_path / "chosen.csv"), "--test-on", "chosen")
    assert chosen.exit_code == 0, chosen.output
    # pruned cells: 2 strategies x 2 seeds x 3 fractions; `all` tests each, `chosen` one per
    # unit of the method (eigen) and every fraction of the baseline (random-sv), which the
    # board sets against eigen at eigen's chosen budget
    assert n_all - 2 == 12 * 2  # baseline: 2 (the cache serves it to the second run)
    assert [s for s, _ in evaluations].count("validation") == 12
    assert [s for s, _ in evaluations].count("test") == 2 + 6
    a, c = (report.load([tmp_path / f"{n}.csv"]) for n in ("all", "chosen"))
    assert len(c[c.split == "validation"]) == 13 and len(c[c.split == "test"]) == 1 + 2 + 6
    pa, pc = report.choose(a), report.choose(c)
    cols = ["strategy", "seed", "fraction", "value", "delta", "p_value", "nll", "config_hash",
            "validation_value"]
    pd.testing.assert_frame_equal(pa[cols].reset_index(drop=True), pc[cols].reset_index(drop=True))
    ta, tc = report.table(a), report.table(c)
    same = ["strategy", "fraction", "chosen_on", "value_mean", "value_std", "delta_mean",
            "p_value_median", "nll_mean", "nll_delta_mean", "seeds", "n", "n_pruned",
            "best_baseline", "delta_vs_best_mean", "p_vs_best", "value_low", "value_high"]
    pd.testing.assert_frame_equal(ta[same].reset_index(drop=True), tc[same].reset_index(drop=True))
    # a re-run has nothing to do; a unit whose test row is lost is redone, test row included
    again = bench(*grid, "--output", str(tmp_path / "chosen.csv"), "--test-on", "chosen")
    assert "nothing to do" in again.output
    rows = pd.read_csv(tmp_path / "chosen.csv")
    lost = rows[(rows.split == "test") & (rows.strategy == "eigen") & (rows.seed == 1)]
    rows.drop(lost.index).to_csv(tmp_path / "chosen.csv", index=False)
    evaluations.clear()
    redo = bench(*grid, "--output", str(tmp_path / "chosen.csv"), "--test-on", "chosen")
    assert redo.exit_code == 0, redo.output
    assert [s for s, _ in evaluations] == ["validation"] * 3 + ["test"]
    back = pd.read_csv(tmp_path / "chosen.csv")
    assert len(back) == len(rows)
    row = back[(back.split == "test") & (back.strategy == "eigen") & (back.seed == 1)]
    assert row.value.tolist() == lost.value.tolist() and row.config_hash.tolist() == lost.config_hash.tolist()


def test_test_on_chosen_needs_validation(tiny_dir, tmp_path):
    result = bench("--model", str(tiny_dir), "--output", str(tmp_path / "r.csv"), "--strategy", "eigen",
                   "--select-on", "none", "--test-on", "chosen", *SMALL)
    assert result.exit_code == 2
    assert "--test-on chosen needs --select-on validation" in result.output


def test_pick_is_the_leaderboards_choice():
    """bench.pick (what a --test-on chosen worker tests) against report.choose (what the
    leaderboard reports) on random validation values with many ties and a NaN."""
    import numpy as np

    from harness import report
    from harness.bench import pick

    rng = np.random.default_rng(0)
    fractions = [0.05, 0.1, 0.2, 0.3, 0.5]
    for trial in range(200):
        values = rng.integers(0, 4, len(fractions)) / 4
        if trial % 7 == 0:
            values[rng.integers(len(fractions))] = np.nan
        order = rng.permutation(len(fractions))  # a unit's cells in any order
        rows = [{"model": "m", "task": "t", "strategy": "s", "seed": 0, "fraction": fractions[i],
                 "split": sp, "value": values[i], "config_hash": f"h{i}"}
                for i in order for sp in ("validation", "test")]
        chosen = report.choose(pd.DataFrame(rows))
        got = pick([(values[i], fractions[i]) for i in order])
        assert fractions[order[got]] == chosen.fraction.iloc[0]


def test_svd_time_is_its_own_column_not_scoring(tiny_dir, monkeypatch):
    """On a clock where each SVD takes 100 s and nothing else takes time, the first cell's
    SVDs land in svd_seconds and none in scoring_seconds; the next cell reuses them."""
    import types

    from harness import spectral, strategy
    from harness.bench import BenchConfig
    from harness.runner import CellRunner
    from harness.work import Cell, CellDone, WorkUnit

    clock = [0.0]
    fake = types.SimpleNamespace(perf_counter=lambda: clock[0])
    real = spectral.decompose

    def slow(matrix):
        clock[0] += 100.0
        return real(matrix)

    cfg = BenchConfig(model=str(tiny_dir), tasks=["int_mult"], strategies=["eigen"], limit=2,
                      calibration_size=4, calibration_batch_size=4, device="cpu", select_on="none")
    runner = CellRunner(cfg)
    monkeypatch.setattr(spectral, "time", fake)
    monkeypatch.setattr(strategy, "time", fake)
    monkeypatch.setattr(spectral, "decompose", slow)
    cells = tuple(Cell("int_mult", "eigen", 0, f, f"k{f}") for f in (0.2, 0.4))
    first, second = runner.run(WorkUnit(0, "int_mult", cells))
    assert isinstance(first, CellDone) and isinstance(second, CellDone)
    n_svd = len(runner.spectrum._factors)
    assert n_svd == 2  # K of two layers
    assert first.edit.svd_seconds == 100.0 * n_svd and first.edit.scoring_seconds == 0.0
    assert second.edit.svd_seconds == 0.0 and second.edit.scoring_seconds == 0.0


def test_automatic_batch_size_changes_no_result(tiny_dir, tmp_path):
    """The default (--batch-size auto) against an explicit odd size: same accuracies, same
    per-example outcomes, the same losses up to float rounding of padded batches."""
    from harness import per_example
    from harness.testing import char_tokenizer, tiny_model

    grid = ["--model", str(tiny_dir), "--strategy", "none,eigen", "--fraction", "0.3", *SMALL[:2],
            "--limit", "12", *SMALL[4:]]
    auto = bench(*grid, "--output", str(tmp_path / "auto.csv"))
    fixed = bench(*grid, "--output", str(tmp_path / "fixed.csv"), "--batch-size", "5")
    assert auto.exit_code == 0 and fixed.exit_code == 0, auto.output + fixed.output
    a = pd.read_csv(tmp_path / "auto.csv").sort_values(["config_hash", "split"]).reset_index(drop=True)
    f = pd.read_csv(tmp_path / "fixed.csv").sort_values(["config_hash", "split"]).reset_index(drop=True)
    assert a.config_hash.tolist() == f.config_hash.tolist() and (a.n == 12).all()
    assert a.value.tolist() == f.value.tolist()
    assert a.nll.to_numpy() == pytest.approx(f.nll.to_numpy(), rel=1e-5)
    for r in a.itertuples():
        ea = per_example.load(tmp_path / "auto.csv", r.config_hash, r.split)
        ef = per_example.load(tmp_path / "fixed.csv", r.config_hash, r.split)
        assert (ea["metric"] == ef["metric"]).all()
    lm = evaluate.wrap(tiny_model("llama", dtype=torch.float32), char_tokenizer())
    assert lm.batch_size == evaluate.CPU_BATCH_SIZE  # on CPU "auto" is the measured fixed size
    assert evaluate.resolve_batch_size("auto", torch.device("cuda")) == "auto"
    assert evaluate.resolve_batch_size(7, torch.device("cuda")) == 7


@pytest.mark.parametrize("size", ["0", "many", "-3"])
def test_bad_batch_size_is_one_line(tiny_dir, tmp_path, size):
    result = bench("--model", str(tiny_dir), "--output", str(tmp_path / "r.csv"), "--batch-size", size,
                   *SMALL)
    assert result.exit_code == 2
    assert f"--batch-size '{size}' is not a whole number >= 1 or auto" in result.output

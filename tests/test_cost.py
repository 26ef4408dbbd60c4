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
                  "--strategy", "none,eigen", "--fraction", "0.2", *SMALL)
    assert first.exit_code == 0, first.output
    unpruned = evaluations[0][1]
    assert sum(d == unpruned for _, d in evaluations) == 2  # validation and test, once each
    assert len(list(baseline_cache.directory().glob("*.pkl"))) == 2
    evaluations.clear()
    # a new results file: every row is written again, but the baseline is not evaluated
    second = bench("--model", str(tiny_dir), "--output", str(tmp_path / "b.csv"),
                   "--strategy", "none,eigen", "--fraction", "0.2", *SMALL)
    assert second.exit_code == 0, second.output
    assert evaluations and all(d != unpruned for _, d in evaluations)  # pruned variants only
    assert len(evaluations) == 2
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    cols = ["config_hash", "split", "value", "delta", "p_value", "nll", "nll_delta", "model_hash"]
    pd.testing.assert_frame_equal(a[cols].sort_values(cols[:2]).reset_index(drop=True),
                                  b[cols].sort_values(cols[:2]).reset_index(drop=True))
    # every row names the weights it measured: the unpruned model's digest, pruned or not
    assert set(b.model_hash) == {unpruned[:12]}
    # another limit is another baseline
    evaluations.clear()
    third = bench("--model", str(tiny_dir), "--output", str(tmp_path / "c.csv"), "--strategy", "none",
                  *SMALL[:2], "--limit", "3", *SMALL[4:])
    assert third.exit_code == 0, third.output
    assert [s for s, _ in evaluations] == ["validation", "test"]


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

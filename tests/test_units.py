"""Pruners, calibration batches, statistics, leaderboard writes, layer parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import char_tokenizer
from test_majority import load_task, write_task

from harness import atomic, calibration, leaderboard, stats
from harness import tasks as task_lib
from harness.errors import HarnessError
from harness.matrices import parse_layers
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


def test_arithmetic_splits_are_deterministic_and_disjoint():
    _, loaded = task_lib.load(["int_mult", "int_sum"])
    mult = loaded["int_mult"]
    sizes = [len(task_lib.for_split(mult, s).eval_docs) for s in ("validation", "test")]
    assert (len(mult.training_docs()), *sizes) == (256, 64, 80)
    assert len(loaded["int_sum"].test_docs()) == 2000
    key = lambda d: (d["a"], d["b"])  # noqa: E731
    parts = [set(map(key, mult.training_docs())), set(map(key, mult.validation_docs())),
             set(map(key, mult.test_docs()))]
    assert sum(map(len, parts)) == 400 and len(set.union(*parts)) == 400
    doc = mult.test_docs()[0]
    assert calibration.example(mult, doc) == (f"{doc['a']} x {doc['b']} =", f" {doc['a'] * doc['b']}")


def test_calibration_labels_only_target_tokens_and_pads_right():
    _, loaded = task_lib.load(["int_mult"])
    tok = char_tokenizer()
    batches = calibration.batches(loaded["int_mult"], tok, size=10, batch_size=4, seed=3)
    assert [b.n_examples for b in batches] == [4, 4, 2]
    for b in batches:
        for row in range(b.n_examples):
            n = int(b.attention_mask[row].sum())
            text = tok.decode(b.input_ids[row, :n])
            target = tok.decode(b.labels[row][b.labels[row] != calibration.IGNORE])
            assert text.endswith(target) and target.startswith(" ")
            prompt = text[: -len(target)]
            left, _, right, _ = prompt.split(" ")
            assert prompt.endswith(" =") and int(left) * int(right) == int(target)
            assert (b.labels[row, n:] == calibration.IGNORE).all()
    again = calibration.batches(loaded["int_mult"], tok, size=10, batch_size=4, seed=3)
    assert torch.equal(again[0].input_ids, batches[0].input_ids)


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


def _row(**kw):
    base = dict(model="m", task="t", split="test", strategy="s", fraction=0.1, metric="acc", value=0.5,
                stderr=0.1, n=10, seed=0, seconds=1.0, harness_version="0", timestamp="now")
    return leaderboard.Row(**{**base, **kw})


def test_leaderboard_append_is_atomic_and_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    leaderboard.append(path, [_row(config_hash="a")])
    leaderboard.append(path, [_row(config_hash="b", split="validation")])
    assert leaderboard.done_keys(path) == {("a", "test"), ("b", "validation")}

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        leaderboard.append(path, [_row(config_hash="c")])
    df = pd.read_csv(path)
    assert list(df.config_hash) == ["a", "b"] and list(df.columns) == leaderboard.COLUMNS
    # no temp file left behind (the lock file stays: removing it could let a waiting writer
    # lock a file no one else sees)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.csv.lock"]


def test_parse_layers():
    assert parse_layers("0,3,5-7", 10) == {0, 3, 5, 6, 7}
    assert parse_layers("-4:", 10) == {6, 7, 8, 9}
    assert parse_layers(None, 10) is None
    with pytest.raises(HarnessError, match="layers 0-9"):
        parse_layers("12", 10)
    with pytest.raises(HarnessError, match="bad --layers"):
        parse_layers("a", 10)


def test_split_view_leaves_the_task_alone():
    _, loaded = task_lib.load(["int_mult"])
    task = loaded["int_mult"]
    view = task_lib.for_split(task, "validation")
    assert len(view.eval_docs) == 64 and len(task.eval_docs) == 80
    assert task_lib.for_split(task, "test") is task
    with pytest.raises(HarnessError, match="has no bogus split|unknown split"):
        task_lib.for_split(task, "bogus")


def test_tasks_command_lists_shipped_tasks_and_a_users_dir(tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli

    (tmp_path / "mine.yaml").write_text(
        "include: " + str(task_lib.shipped_dir() / "arithmetic" / "int_mult.yaml") + "\ntask: my_mult\n")
    result = CliRunner().invoke(cli, ["tasks", "--tasks-dir", str(tmp_path)])
    names = result.output.split()
    assert {"int_sum", "int_mult", "cb_eigen", "copa_lmeval", "my_mult"} <= set(names)


def test_a_second_ctrl_c_exits_at_once(monkeypatch):
    """The first Ctrl-C stops the run between cells; a second one does not wait for it."""
    from harness import cli

    exits = []
    monkeypatch.setattr(cli.os, "_exit", exits.append)
    monkeypatch.setattr(cli._interrupt_twice_to_force, "pressed", False, raising=False)
    with pytest.raises(KeyboardInterrupt):
        cli._interrupt_twice_to_force(2, None)
    assert exits == []
    cli._interrupt_twice_to_force(2, None)
    assert exits == [130]


def test_variant_names_give_back_their_settings():
    from harness.strategy import recipe_name, variant_name, variant_settings

    settings = {"objective": "margin", "verify_multiple": 1.5, "budget_grid": (0.1, 0.2)}
    name = variant_name("eigen-verified", settings)
    assert name == "eigen-verified[objective=margin;verify_multiple=1.5;budget_grid=0.1,0.2]"
    assert recipe_name(name) == "eigen-verified"
    assert variant_settings(name) == {"objective": "margin", "verify_multiple": "1.5",
                                      "budget_grid": "0.1,0.2"}
    assert variant_settings("eigen") == {}


@pytest.mark.parametrize("kind", ["multiple_choice", "multiple_input", "loglikelihood"])
def test_calibration_scores_the_target_lm_eval_scores(tmp_path, kind):
    """The calibration target is the gold request's continuation, delimiter and all (a
    loglikelihood task's target goes without the delimiter, which lm-eval puts only before
    multiple-choice answers); a multiple-input task's prompt is the gold choice's context."""
    _, task = load_task(tmp_path, kind)
    for doc in task.test_docs():
        ctx = task.fewshot_context(doc, 0)
        requests = task.construct_requests(doc, ctx)
        requests = requests if isinstance(requests, list) else [requests]
        gold = requests[task_lib.gold_index(task, doc)] if kind != "loglikelihood" else requests[0]
        assert calibration.example(task, doc) == gold.arguments


def test_a_multiple_input_task_is_pruned_and_scored_end_to_end(tmp_path, tiny_dir):
    """Winogrande's shape (one context per choice, a shared continuation) through bench:
    calibrated on the gold context, evaluated by lm-eval, the gold choice's NLL recorded."""
    from click.testing import CliRunner

    from harness.cli import cli

    name = write_task(tmp_path / "tasks", "multiple_input")
    out = tmp_path / "r.csv"
    args = ["bench", "--model", str(tiny_dir), "--tasks-dir", str(tmp_path / "tasks"), "--task", name,
            "--strategy", "none,eigen", "--fraction", "0.2", "--select-on", "none", "--output", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out).set_index("strategy")
    assert rows.loc["eigen", "n_pruned"] > 0 and rows.loc["eigen", "n"] == 10
    assert np.isfinite(rows.nll).all() and rows.loc["eigen", "nll"] != rows.loc["none", "nll"]

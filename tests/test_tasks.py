"""The shipped tasks and `--tasks-dir`: splits, split views, listing, a multiple-input task end to end."""


import numpy as np
import pandas as pd
import pytest
from test_majority import write_task

from harness import calibration
from harness import tasks as task_lib
from harness.errors import HarnessError


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

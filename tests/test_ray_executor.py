"""`--executor ray` on a local Ray (2 CPUs, loopback) and a tiny random Llama: the same rows
as the local executor, a worker killed mid-unit retried without a duplicate row, a failing
cell reported while the others are written. One Ray sweep serves all three checks (Ray's
start-up and a model load per worker are most of the cost)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import char_tokenizer, tiny_model
from fault_plugins import Faults

from harness.cli import cli
from harness.testing import registry_with

ray = pytest.importorskip("ray")

GRID = ["--task", "int_mult", "--fraction", "0.1,0.2", "--limit", "4",
        "--calibration-size", "8", "--calibration-batch-size", "4", "--device", "cpu",
        "--select-on", "none"]
VALUES = ["value", "stderr", "n", "delta", "p_value", "n_pruned"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """(local CSV, ray CSV, ray CLI result, flag dir) for the same grid, Ray's with faults added."""
    tmp = tmp_path_factory.mktemp("ray")
    model_dir = tmp / "tiny-llama"
    tiny_model("llama", dtype=torch.float32).save_pretrained(model_dir)
    char_tokenizer().save_pretrained(model_dir)
    faults = Faults(tmp)
    faults.__name__ = "faults"
    stack = contextlib.ExitStack()
    stack.enter_context(registry_with(faults))
    base = ["bench", "--model", str(model_dir), *GRID]
    local = CliRunner().invoke(cli, [*base, "--strategy", "none,eigen,random-sv",
                                     "--output", str(tmp / "local.csv")])
    assert local.exit_code == 0, local.output
    tests_dir = str(Path(__file__).parent)  # workers import fault_plugins from here
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {
        "PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)}})
    try:
        result = CliRunner().invoke(cli, [
            *base, "--strategy", "none,eigen,random-sv,die-once,explode-0.2", "--executor", "ray",
            "--max-workers", "2", "--output", str(tmp / "ray.csv")])
    finally:
        ray.shutdown()
        stack.close()
    return pd.read_csv(tmp / "local.csv"), pd.read_csv(tmp / "ray.csv"), result, tmp


def test_ray_rows_equal_the_local_executors(sweeps):
    local, by_ray, _, _ = sweeps
    assert len(local) == 1 + 2 * 2  # none; eigen and random-sv x 2 fractions
    shared = by_ray[by_ray.strategy.isin(["none", "eigen", "random-sv"])]
    joined = local.merge(shared, on=["config_hash", "split"], suffixes=("_local", "_ray"))
    assert len(joined) == len(local) == len(shared)
    for col in VALUES:
        assert joined[f"{col}_local"].tolist() == pytest.approx(joined[f"{col}_ray"].tolist(), nan_ok=True)
    assert joined.n_pruned_local.gt(0).sum() == 4


def test_killed_worker_is_retried_and_no_row_is_written_twice(sweeps):
    _, by_ray, result, tmp = sweeps
    assert (tmp / "died-once").exists()  # the worker really died once
    assert "worker lost while running int_mult die-once" in result.output
    assert sorted(by_ray[by_ray.strategy == "die-once"].fraction) == [0.1, 0.2]
    assert not by_ray.duplicated(["config_hash", "split"]).any()


def test_a_failing_cell_is_reported_and_the_others_are_written(sweeps):
    _, by_ray, result, _ = sweeps
    assert result.exit_code == 1
    assert by_ray[by_ray.strategy == "explode-0.2"].fraction.tolist() == [0.1]
    assert len(by_ray) == 5 + 2 + 1  # the local grid, die-once twice, explode once
    summary = result.output[result.output.index("error: 1 failure(s) in the sweep"):]
    assert ("int_mult explode-0.2 f=0.2 seed=0: strategy 'explode-0.2' of plugin 'faults' "
            "(hook register_strategies) failed: ValueError: boom at 0.2") in summary

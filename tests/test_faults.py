"""Failures inside a cell: one line naming the cell, no row for it, the sweep goes on, the
weights are the loaded ones afterwards, and the command exits non-zero with a summary."""

from __future__ import annotations

import dataclasses
import sys

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from fault_plugins import Faults

from harness import hookimpl, selection, spectral
from harness.bench import BenchConfig
from harness.cli import cli
from harness.errors import HarnessError
from harness.runner import CellRunner, describe_failure
from harness.runner import weights_digest as state_hash
from harness.strategy import PruneRequest
from harness.testing import random_batches, registry_with, tiny_model
from harness.work import Cell, CellDone, JobFailed, WorkUnit


@pytest.fixture
def faults(tmp_path):
    faulty = Faults(tmp_path)
    faulty.__name__ = "faults"  # the plugin name errors show
    with registry_with(faulty) as registry:
        yield registry


def test_failed_cells_leave_the_weights_as_loaded_and_the_next_cell_runs(faults, tiny_dir, tmp_path):
    cfg = BenchConfig(model=str(tiny_dir), tasks=["int_mult"], strategies=["poison", "half-edit", "eigen"],
                      limit=3, calibration_size=6, calibration_batch_size=3, device="cpu",
                      select_on="none", output=tmp_path / "r.csv")
    runner = CellRunner(cfg)
    before = state_hash(runner.model)
    unit = WorkUnit(0, "int_mult", tuple(Cell("int_mult", s, 0, 0.3, s) for s in cfg.strategies))
    poison, half, eigen = runner.run(unit)
    assert isinstance(poison, JobFailed) and "calibration loss is nan on batch 1 of 2" in poison.message
    assert state_hash(runner.model) == before and runner.loads == 2  # NaN weights: reloaded
    assert isinstance(half, JobFailed) and half.message == (
        "strategy 'half-edit' of plugin 'faults' (hook register_strategies) failed: RuntimeError: half-way")
    assert runner.loads == 2  # the strategy's half edit was undone in place, no reload
    assert isinstance(eigen, CellDone) and eigen.edit.n_pruned > 0
    assert state_hash(runner.model) == before


def test_sweep_goes_on_after_a_failed_cell_and_exits_non_zero_with_a_summary(faults, tiny_dir, tmp_path):
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(cli, [
        "bench", "--model", str(tiny_dir), "--task", "int_mult", "--strategy", "none,poison,explode-0.2",
        "--fraction", "0.1,0.2,0.3", "--limit", "3", "--calibration-size", "6", "--device", "cpu",
        "--select-on", "none", "--output", str(out)])
    assert result.exit_code == 1, result.output
    df = pd.read_csv(out)
    # none, and explode-0.2 at 0.1 and 0.3; poison failed at every fraction, explode at 0.2
    rows = sorted(zip(df.strategy, df.fraction, strict=True))
    assert rows == [("explode-0.2", 0.1), ("explode-0.2", 0.3), ("none", 0.0)]
    summary = result.output[result.output.index("error: 4 failure(s) in the sweep"):]
    assert ("int_mult explode-0.2 f=0.2 seed=0: strategy 'explode-0.2' of plugin 'faults' "
            "(hook register_strategies) failed: ValueError: boom at 0.2") in summary
    assert summary.count("calibration loss is nan on batch 1") == 3
    assert "Traceback" not in result.output


def test_out_of_memory_names_the_options_to_lower():
    cfg = BenchConfig(batch_size=8)
    message = describe_failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), cfg)
    assert "--batch-size (now 8)" in message and "--calibration-batch-size" in message
    assert "--max-workers" in message
    assert describe_failure(RuntimeError("MPS backend out of memory"), cfg) == message


def test_executor_ray_without_ray_says_how_to_install(tiny_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when it is not installed
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_dir), "--task", "int_mult",
                                      "--executor", "ray", "--limit", "2"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "error: --executor ray needs Ray: pip install 'eigenharness[ray]'")


def test_unknown_executor_lists_the_choices(tiny_dir):
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_dir), "--executor", "slurm"])
    assert result.exit_code == 2 and "unknown executor 'slurm'; choose from: local, ray" in result.output
    listing = CliRunner().invoke(cli, ["plugins"])
    assert "register_executors" in listing.output and "executors: local, ray" in listing.output


class Misbehaving:
    """A scorer that fails on its second call (a rescoring search's second round) and a pruner
    that returns one mask too few."""

    __name__ = "misbehaving"

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def register_scorers(self, register):
        def flaky(ctx):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("second call")
            return {m.id: ctx.factors[m.id].S.clone() for m in ctx.matrices}

        register("flaky", flaky)

    @hookimpl
    def register_pruners(self, register):
        register("one-short", lambda scores, fraction, options: {
            i: torch.ones_like(s, dtype=torch.bool) for i, s in list(scores.items())[1:]})


@pytest.mark.parametrize(("strategy", "change", "message"), [
    ("eigen-iterative", {"scorer": "flaky"},
     "scorer 'flaky' of plugin 'misbehaving' (hook register_scorers) failed: RuntimeError: second call"),
    ("eigen-verified", {"pruner": "one-short"},
     "pruner 'one-short' of plugin 'misbehaving' (hook register_pruners) must return {matrix id: "),
    ("eigen-budget", {"pruner": "one-short"},
     "pruner 'one-short' of plugin 'misbehaving' (hook register_pruners) must return {matrix id: "),
])
def test_searching_strategies_call_plugins_through_the_guarded_path(strategy, change, message):
    """A search that rescores or prunes several times names a faulty scorer or pruner exactly as
    the plain spectral path does, and leaves the weights as they were."""
    model = tiny_model("llama")
    before = state_hash(model)
    with registry_with(Misbehaving()) as registry:
        recipe = dataclasses.replace(registry.get("strategies", strategy), **change)
        request = PruneRequest(model=model, matrices=selection.select(selection.candidates(model), "k"),
                               fraction=0.3, seed=0, strategy=recipe, batches=random_batches(),
                               spectrum=spectral.SpectrumCache(), options={"rounds": 2},
                               evaluate=lambda split, limit: 0.5)
        with pytest.raises(HarnessError) as error:
            recipe.apply(request)
    assert str(error.value).startswith(message)
    assert state_hash(model) == before

"""`--executor ray` on a local Ray (2 CPUs, loopback) and a tiny random Llama: the same rows
as the local executor, a worker killed mid-unit retried without a duplicate row, a failing
cell reported while the others are written. One Ray sweep serves those three checks (Ray's
start-up and a model load per worker are most of the cost); one Ray instance serves every
sweep of the module. Then workers killed while they start (in the actor's constructor, in
the model load, a replacement's load), a sweep where no worker can start, Ray's own death
report kept off stdout, and addresses where no Ray cluster answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import char_tokenizer, tiny_model
from fault_plugins import Faults

from harness.cli import cli
from harness.testing import registry_with

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'eigenharness[ray]')")

GRID = ["--task", "int_mult", "--fraction", "0.1,0.2", "--limit", "4",
        "--calibration-size", "8", "--calibration-batch-size", "4", "--device", "cpu",
        "--select-on", "none"]
VALUES = ["value", "stderr", "n", "delta", "p_value", "n_pruned"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model_dir = tmp_path_factory.mktemp("model") / "tiny-llama"
    tiny_model("llama", dtype=torch.float32).save_pretrained(model_dir)
    char_tokenizer().save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def cluster():
    """One local Ray of 2 CPUs for the module; its workers import fault_plugins from here."""
    tests_dir = str(Path(__file__).parent)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {
        "PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)}})
    yield
    ray.shutdown()


def ray_bench(model_dir: Path, faults: Faults, *args: str):
    """`harness bench --executor ray` on the module's Ray, with `faults` registered."""
    faults.__name__ = "faults"
    with registry_with(faults):
        return CliRunner().invoke(cli, ["bench", "--model", str(model_dir), *GRID, "--executor", "ray",
                                        *args])


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, model_dir, cluster):
    """(local CSV, ray CSV, ray CLI result, flag dir) for the same grid, Ray's with faults added."""
    tmp = tmp_path_factory.mktemp("ray")
    base = ["bench", "--model", str(model_dir), *GRID]
    local = CliRunner().invoke(cli, [*base, "--strategy", "none,eigen,random-sv",
                                     "--output", str(tmp / "local.csv")])
    assert local.exit_code == 0, local.output
    result = ray_bench(model_dir, Faults(tmp), "--strategy", "none,eigen,random-sv,die-once,explode-0.2",
                       "--max-workers", "2", "--output", str(tmp / "ray.csv"))
    assert (tmp / "ray.csv").is_file(), result.output  # no row at all: say why
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


def test_a_worker_killed_in_its_constructor_is_replaced(tmp_path, model_dir, cluster):
    faults = Faults(tmp_path, kill={"constructor": 1})
    result = ray_bench(model_dir, faults, "--strategy", "none,eigen-verified", "--max-workers", "2",
                       "--output", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.output
    assert faults.killed("constructor") == 1
    assert "worker lost while starting: ActorDiedError" in result.output
    assert "starting another in its place (retry 1 of 2)" in result.output
    # what a worker's strategy says before it starts travels to the driver as a line
    assert "eigen-verified f=0.1 seed=0: measuring " in result.output
    rows = pd.read_csv(tmp_path / "r.csv")
    assert sorted(rows.fraction) == [0.0, 0.1, 0.2] and not rows.duplicated(["config_hash", "split"]).any()


def test_a_replacement_killed_in_its_model_load_is_replaced_too(tmp_path, model_dir, cluster):
    """One worker: die-once kills it mid-unit, its replacement dies loading the model, the
    next one finishes the unit (the issue's abort with retries left)."""
    faults = Faults(tmp_path, kill={"load": 1}, kill_after="died-once")
    result = ray_bench(model_dir, faults, "--strategy", "none,die-once", "--max-workers", "1",
                       "--output", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "died-once").exists() and faults.killed("load") == 1
    assert "worker lost while running int_mult die-once" in result.output
    assert "worker lost while starting: ActorDiedError" in result.output
    rows = pd.read_csv(tmp_path / "r.csv")
    assert sorted(rows[rows.strategy == "die-once"].fraction) == [0.1, 0.2]
    assert not rows.duplicated(["config_hash", "split"]).any()


def test_when_no_worker_can_start_the_sweep_stops_in_one_line_with_exit_1(tmp_path, model_dir, cluster):
    faults = Faults(tmp_path, kill={"load": 10})
    result = ray_bench(model_dir, faults, "--strategy", "none,eigen", "--max-workers", "1",
                       "--max-retries", "1", "--output", str(tmp_path / "r.csv"))
    assert result.exit_code == 1, result.output
    assert faults.killed("load") == 2  # the first worker and its one retry
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: no Ray worker could start (ActorDiedError")
    assert "Traceback" not in result.output and not (tmp_path / "r.csv").exists()


def test_rays_worker_death_report_never_reaches_stdout(capsys, cluster):
    """The raylet's report of a death goes through Ray's print_to_stdstream; once the executor
    has started, deaths are dropped there (it reports them itself) and other lines go to stderr."""
    from eigenharness_plugins import _ray_cluster as ray_cluster
    from ray._private import worker as ray_worker

    ray_cluster.route_messages()
    death = ("A worker died or was killed while executing a task by an unexpected system error. "
             "(1) the process was killed by the OOM killer")
    ray_worker.print_to_stdstream({"lines": [death], "pid": "raylet", "is_err": False}, False)
    ray_worker.print_to_stdstream({"lines": ["resources cannot be scheduled"], "pid": "raylet",
                                   "is_err": False}, False)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == ["warning: ray: resources cannot be scheduled"]


def _harness_fails(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "harness.cli", "bench", "--executor", "ray", *args],
                         capture_output=True, text=True, env=env, timeout=120)
    return run, time.perf_counter() - start


@pytest.mark.parametrize("listening", [False, True], ids=["nothing-listens", "not-a-ray-port"])
def test_an_address_where_no_ray_answers_fails_fast_in_one_line(listening, model_dir):
    """The issue's `--address 127.0.0.1:1` took 831 s and printed 60 Ray warnings; a port where
    something answers that is not Ray's GCS must not hang either."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    if listening:
        server.listen(8)
        threading.Thread(target=lambda: [server.accept() for _ in range(8)], daemon=True).start()
    else:
        server.close()  # the port is free: connection refused
    try:
        run, seconds = _harness_fails(["--model", str(model_dir), "--task", "int_mult", "--limit", "2",
                                       "--address", f"127.0.0.1:{port}"])
    finally:
        server.close()
    assert run.returncode == 2, run.stderr
    assert seconds < 30
    lines = [line for line in run.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and f"127.0.0.1:{port}" in lines[0]
    assert run.stdout == ""

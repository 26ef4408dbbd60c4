"""The plugin author's path, end to end: examples/harness-plugin-example is built and installed
by pip like any third-party package, then `harness plugins` lists it, `harness bench` runs its
strategy, and its own tests pass.

pip installs it with `--target` into a temporary folder that the subprocesses get on their
PYTHONPATH: the very wheel metadata (entry points) a `pip install` into a venv produces,
without touching the shared test environment, so nothing needs uninstalling even if a test
dies half-way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "harness-plugin-example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, cwd=build, timeout=120,
    )
    eps = list(target.glob("harness_plugin_example-*.dist-info/entry_points.txt"))
    assert eps and "act_energy = harness_plugin_example" in eps[0].read_text()
    return target


def harness(site: Path, *args: str, plugins: str = "act_energy", cwd: Path | None = None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "EIGENHARNESS_PLUGINS": plugins}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def test_installed_plugin_is_listed_and_its_strategy_runs_in_bench(installed, tiny_dir, tmp_path):
    listing = harness(installed, "plugins")
    assert listing.returncode == 0, listing.stderr
    assert "act_energy 0.1.0  hooks: register_decompositions, register_scorers, register_strategies" \
        in listing.stdout
    assert "scorers: activation-energy" in listing.stdout and "act-energy" in listing.stdout

    out = tmp_path / "results.csv"
    run = harness(installed, "bench", "--model", str(tiny_dir), "--task", "int_mult",
                  "--strategy", "none,act-energy", "--fraction", "0.25", "--limit", "3",
                  "--calibration-size", "4", "--calibration-batch-size", "4", "--select-on", "none",
                  "--device", "cpu", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = pd.read_csv(out)
    row = rows[rows.strategy == "act-energy"].iloc[0]
    assert row.scorer == "activation-energy" and row.pruner == "global-fraction" and row.compensate
    assert row.n_pruned == int(0.25 * 2 * 2 * 8)  # k of 2 layers x 2 kv heads x rank 8
    assert row.calibration_size == 4 and row.n == 3


def test_plugin_stays_out_unless_allowed(installed, tiny_dir):
    run = harness(installed, "bench", "--model", str(tiny_dir), "--strategy", "act-energy",
                  plugins="")
    assert run.returncode == 2
    from harness.plugins import registry

    builtins = ", ".join(registry().names("strategies"))  # the built-ins only: EIGENHARNESS_PLUGINS=""
    assert run.stderr.strip().splitlines() == [
        f"error: unknown strategy 'act-energy'; choose from: {builtins}"]


def _example_tests() -> dict:
    """The example's own test functions, collected here too so `pytest` at the root runs them
    in this process (a second interpreter would cost more than the tests)."""
    import importlib.util

    sys.path.insert(0, str(EXAMPLE))
    path = EXAMPLE / "tests" / "test_activation_energy.py"
    spec = importlib.util.spec_from_file_location("example_plugin_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f"test_example_{k[5:]}": v for k, v in vars(module).items() if k.startswith("test_")}


globals().update(_example_tests())

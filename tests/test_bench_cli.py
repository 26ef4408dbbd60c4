"""`harness bench` end to end on a tiny Llama directory: rows, resume, errors, --save."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from harness import per_example
from harness.cli import cli

GRID = ["--task", "int_mult", "--strategy", "none,eigen,random-sv,smallest-sv,magnitude",
        "--fraction", "0.1,0.3", "--limit", "6", "--calibration-size", "8",
        "--calibration-batch-size", "4", "--device", "cpu"]


def bench(*args):
    result = CliRunner().invoke(cli, ["bench", *args], catch_exceptions=False)
    return result


def test_grid_writes_one_row_per_cell_and_split_then_resumes(tiny_dir, tmp_path):
    out = tmp_path / "results.csv"
    result = bench("--model", str(tiny_dir), "--output", str(out), *GRID)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    # none: 1 cell; four pruning strategies x 2 fractions: 8 cells; each on validation and test
    assert len(df) == (1 + 8) * 2
    assert set(df.split) == {"validation", "test"} and set(df.n) == {6}
    assert not df.duplicated(["config_hash", "split"]).any()
    eigen = df[df.strategy == "eigen"]
    assert set(eigen.n_pruned) == {int(0.1 * 2 * 2 * 8), int(0.3 * 2 * 2 * 8)}  # 2 layers x 2 kv heads x 8
    assert (df[df.strategy == "none"].delta == 0).all()
    masks = list((tmp_path / "results_masks").glob("*.json"))
    assert len(masks) == 6  # the three spectral strategies x 2 fractions
    # loss beside accuracy: every row has its target NLL, the baseline's delta is 0, and each
    # row's per-example file reproduces the row's means
    assert df.nll.notna().all() and (df.nll > 0).all()
    assert (df[df.strategy == "none"].nll_delta == 0).all()
    assert set(df.architecture) == {"llama (registered)"}
    # each row records its plugin's role, for a board built where that plugin is missing
    assert dict(zip(df.strategy, df.role, strict=True)) == {
        "none": "baseline", "eigen": "method", "random-sv": "baseline", "smallest-sv": "baseline",
        "magnitude": "baseline"}
    for r in df.itertuples():
        ex = per_example.load(out, r.config_hash, r.split)
        assert len(ex["metric"]) == r.n
        assert ex["metric"].mean() == pytest.approx(r.value)
        assert ex["nll"].mean() == pytest.approx(r.nll, rel=1e-5)
    again = bench("--model", str(tiny_dir), "--output", str(out), *GRID)
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert len(pd.read_csv(out)) == len(df)
    forced = bench("--model", str(tiny_dir), "--output", str(out), *GRID[:2], "--fraction", "0.1",
                   "--limit", "6", "--force", "--strategy", "eigen", "--calibration-size", "8",
                   "--calibration-batch-size", "4")
    # one fraction: nothing to choose, so test only (--select-on auto)
    assert forced.exit_code == 0 and "1 row(s) appended" in forced.output
    after = pd.read_csv(out)  # re-run rows replace the old ones of the same cell
    assert len(after) == len(df) and not after.duplicated(["config_hash", "split"]).any()


def test_killed_sweep_resumes_without_duplicates_or_gaps(tiny_dir, tmp_path):
    out = tmp_path / "results.csv"
    cmd = [sys.executable, "-m", "harness.cli", "bench", "--model", str(tiny_dir),
           "--output", str(out), *GRID, "--seed", "0,1,2,3"]  # long enough to be caught mid-way
    # SIGINT back to its default in the child: a shell ignores it for background jobs, and
    # pytest started as one (`.ci/run &`) would hand that on, so the Ctrl-C below never arrived
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline:  # kill it once a few cells have landed
        if out.exists() and len(pd.read_csv(out)) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    partial = pd.read_csv(out)  # parses after a kill
    # none once; eigen and random-sv per seed and fraction; magnitude and smallest-sv
    # (seed-free) once per fraction
    cells = 1 + 2 * 4 * 2 + 2 * 1 * 2
    assert 0 < len(partial) < cells * 2
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    full = pd.read_csv(out)
    assert len(full) == cells * 2
    assert set(full[full.strategy == 'magnitude'].seed) == {0}
    assert not full.duplicated(["config_hash", "split"]).any()


@pytest.mark.parametrize("args, message", [
    (["--strategy", "eigne"], "unknown strategy 'eigne'; choose from: asvd, eigen, eigen-budget"),
    (["--fraction", "1.5", "--strategy", "eigen"], "fraction 1.5 is outside [0, 1)"),
    (["--task", "nope_task"], "unknown task 'nope_task'; choose from: cb_eigen, cb_lmeval, copa_eigen"),
    (["--model", "./missing-dir"], "model path './missing-dir' does not exist"),
    (["--model", "/tmp/nothing-here.gguf"], "model path '/tmp/nothing-here.gguf' does not exist"),
    (["--strategy", "eigen", "--scorer", "psychic"], "unknown scorer 'psychic'; choose from: attribution"),
    (["--strategy", "eigen", "--matrices", "kk"], "unknown selector 'kk'; choose from: all, attn, k"),
    (["--device", "tpu"], "unknown device 'tpu'; choose from: auto, cpu, cuda, mps"),
    (["--seed", "abc"], "--seed 'abc' is not an integer"),
    (["--layers", "7", "--strategy", "eigen"], "--layers names layer 7; the model has layers 0-1"),
    (["--dtype", "int4"], "unknown dtype 'int4'; choose from: auto, float32"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_dir, args, message):
    base = ["--model", str(tiny_dir), "--task", "int_mult", "--limit", "2"]
    result = CliRunner().invoke(cli, ["bench", *base, *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.output
    assert "Traceback" not in result.output


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    result = CliRunner().invoke(cli, ["bench", "--model", str(bad), "--task", "int_mult"],
                                env={"EIGENHARNESS_HOME": str(tmp_path / "home")})
    assert result.exit_code == 2 and "cannot read GGUF file" in result.output


def test_save_writes_a_plain_transformers_model_with_the_same_logits(tiny_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    saved = tmp_path / "pruned"
    out = tmp_path / "r.csv"
    umask = os.umask(0o022)
    try:
        result = bench("--model", str(tiny_dir), "--output", str(out), "--task", "int_mult",
                       "--strategy", "eigen", "--fraction", "0.3", "--limit", "4", "--matrices", "k,o",
                       "--calibration-size", "8", "--save", str(saved), "--select-on", "none")
    finally:
        os.umask(umask)
    assert result.exit_code == 0, result.output
    # every file as any new file under umask 022: another user can load the model
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in saved.iterdir()} == {
        p.name: oct(0o644) for p in saved.iterdir()}
    assert (saved / "model.safetensors").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(saved).eval()
    assert reloaded.config.attention_bias  # compensation created k biases; the config says so
    masks = (saved / "eigenharness_masks.json").read_text()
    assert "layer.0.k" in masks and "layer.1.o" in masks
    # what `lm_eval --model hf --model_args pretrained=DIR` does, with no harness code involved
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=str(saved), device="cpu", batch_size=4)
    assert torch.equal(hf.model.model.layers[0].self_attn.k_proj.bias,
                       reloaded.model.layers[0].self_attn.k_proj.bias)
    # the same cell through the API, compared with the in-memory pruned model itself
    from harness import calibration, models, selection, spectral
    from harness import tasks as task_lib
    from harness.export import save_pruned
    from harness.plugins import registry
    from harness.strategy import PruneRequest, spectral_apply

    model, tok = models.load(str(tiny_dir), device="cpu")
    _, loaded = task_lib.load(["int_mult"])
    ids = torch.tensor([tok("12 x 3 = 36")["input_ids"]])
    with torch.no_grad():
        base = model(ids).logits
    matrices = selection.select(selection.candidates(model), "k,o")
    req = PruneRequest(model=model, matrices=matrices, fraction=0.3, seed=0,
                       strategy=registry().get("strategies", "eigen"),
                       batches=calibration.batches(loaded["int_mult"], tok, 8, 16, 0),
                       spectrum=spectral.SpectrumCache())
    edit = spectral_apply(req)
    with torch.no_grad():
        pruned = model(ids).logits
    umask = os.umask(0o027)  # the umask is honoured, not overridden
    try:
        save_pruned(model, tok, matrices, edit, tmp_path / "pruned2")
    finally:
        os.umask(umask)
    assert (tmp_path / "pruned2" / "model.safetensors").stat().st_mode & 0o777 == 0o640
    edit.restore()
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "pruned2").eval()
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, pruned, atol=1e-5)
        assert torch.allclose(reloaded(ids).logits, pruned, atol=1e-5)  # the CLI's --save too
        assert torch.equal(model(ids).logits, base)  # restored
    assert not torch.allclose(pruned, base, atol=1e-4)  # it really is pruned


def test_save_refuses_a_grid(tiny_dir, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_dir), "--task", "int_mult",
                                      "--strategy", "eigen", "--fraction", "0.1,0.2",
                                      "--save", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--save needs exactly one pruned cell" in result.output


def test_seed_free_cells_are_shared_by_sweeps_with_other_seeds(tiny_dir, tmp_path):
    out = tmp_path / "results.csv"
    common = ["--model", str(tiny_dir), "--output", str(out), "--task", "int_mult", "--limit", "4",
              "--strategy", "none,magnitude", "--fraction", "0.1", "--device", "cpu"]
    assert bench(*common, "--seed", "3,4").exit_code == 0
    df = pd.read_csv(out)
    assert len(df) == 2 and set(df.seed) == {0}  # one cell each (test only), recorded as seed 0
    again = bench(*common, "--seed", "0")
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_option_sets_a_strategys_knob_and_labels_its_rows(tiny_dir, tmp_path):
    out = tmp_path / "results.csv"
    result = bench("--model", str(tiny_dir), "--output", str(out), "--task", "int_mult",
                   "--strategy", "eigen-verified,eigen", "--fraction", "0.1", "--limit", "4",
                   "--select-on", "none", "--calibration-size", "8", "--calibration-batch-size", "4",
                   "--option", "verify_multiple=2", "--option", "verify_examples=3",
                   "--option", "verify_rows=128", "--device", "cpu")
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    # verify_rows=128 is the default: it changes nothing and is not in the label; eigen has no
    # such options and keeps its name
    assert sorted(df.strategy) == ["eigen", "eigen-verified[verify_examples=3;verify_multiple=2]"]
    import json

    details = json.loads(df[df.strategy != "eigen"].details.iloc[0])
    n_total = int(df.n_total.iloc[0])
    assert details["shortlist"] == int(0.2 * n_total) and details["verify_examples"] == 3


@pytest.mark.parametrize("args, message", [
    (["--strategy", "eigen-verified", "--option", "verify_multiply=2"],
     "no strategy given (eigen-verified) has option 'verify_multiply'; choose from: "
     "verify_examples, verify_multiple, verify_rows"),
    (["--strategy", "eigen", "--option", "rounds=2"],
     "no strategy given (eigen) has option 'rounds'; they take no options"),
    (["--strategy", "eigen-iterative", "--option", "rounds=two"],
     "option rounds of eigen-iterative must be a whole number, got 'two'"),
    (["--strategy", "eigen-iterative", "--option", "rounds=0"],
     "option rounds of eigen-iterative must be > 0, got '0'"),
    (["--strategy", "eigen-budget", "--option", "budget_grid=0.1,x"],
     "option budget_grid of eigen-budget must be a comma list of numbers, got '0.1,x'"),
    (["--strategy", "eigen-iterative", "--option", "rounds"],
     "--option 'rounds' is not NAME=VALUE (e.g. --option rounds=2)"),
])
def test_bad_options_are_one_line_before_the_model_loads(tmp_path, args, message):
    missing = tmp_path / "no-model-here"  # never loaded: the options fail first
    result = CliRunner().invoke(cli, ["bench", "--model", str(missing), "--output",
                                      str(tmp_path / "r.csv"), *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {message}"]


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

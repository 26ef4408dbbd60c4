"""Bad inputs fail before the model loads (one line, exit 2, nothing written); results CSVs
that are damaged are reported without losing a row; plugin faults name the plugin and hook."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from harness import hookimpl, leaderboard, preflight, testing
from harness.bench import BenchConfig
from harness.cli import cli
from harness.errors import HarnessError
from harness.leaderboard import Row
from harness.strategy import PruneRequest, Strategy, spectral_apply
from harness.work import ExecutorOptions


def one_line_error(args: list[str], output=None) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    if output is not None:
        assert not output.exists()  # no row written, no file created
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["--strategy", "eigen", "--pruner", "threshold"],
     "the pruner 'threshold' (strategy 'eigen') needs --threshold VALUE"),
    (["--strategy", "eigen", "--calibration-size", "17", "--calibration-batch-size", "16"],
     "the scorer 'attribution' (strategy 'eigen') compares examples within a calibration batch and "
     "needs 2 per batch; --calibration-size 17 with --calibration-batch-size 16 makes a batch of 1"),
    (["--strategy", "eigen", "--calibration-batch-size", "1"], "makes a batch of 1"),
    (["--strategy", "eigen", "--pruner", "prune-all"], "unknown pruner 'prune-all'; choose from: global-"),
    (["--task", "int_mlt"], "unknown task 'int_mlt' (did you mean int_mult?); choose from: cb_eigen"),
    (["--strategy", "eigen", "--also-eval", "int_mlt"], "unknown task 'int_mlt' (did you mean int_mult?)"),
    (["--tasks-dir", "/nonexistent/tasks"], "--tasks-dir '/nonexistent/tasks' does not exist"),
    (["--model", "smollm2-13m"], "unknown model 'smollm2-13m' (did you mean smollm2-135m?)"),
    (["--model", "a/b/c"], "model path 'a/b/c' does not exist"),
    (["--layers", "1-x"], "bad --layers '1-x'"),
    (["--select-on", "test"], "Invalid value for '--select-on': 'test' is not one of"),
    (["--strategy", "eigen", "--also-eval", "nope_task"], "unknown task 'nope_task'; choose from: cb_eigen"),
    (["--fractoin", "0.1"], "No such option '--fractoin'. Did you mean '--fraction'?"),
])
def test_bad_option_fails_before_the_model_loads(tiny_dir, tmp_path, monkeypatch, args, message):
    from harness import models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    out = tmp_path / "r.csv"
    line = one_line_error(["bench", "--model", str(tiny_dir), "--task", "int_mult",
                           "--output", str(out), *args], out)
    assert message in line


def test_save_to_a_file_is_refused(tiny_dir, tmp_path):
    target = tmp_path / "model.bin"
    target.write_text("precious")
    line = one_line_error(["bench", "--model", str(tiny_dir), "--strategy", "eigen",
                           "--save", str(target), "--output", str(tmp_path / "r.csv")],
                          tmp_path / "r.csv")
    assert "is a file" in line and str(target) in line
    assert target.read_text() == "precious"
    with pytest.raises(HarnessError, match="--save '.*model.bin' is a file; give a directory"):
        preflight._check_save(target)


@pytest.mark.parametrize("settings, message", [
    ({"batch_size": "lots"}, "--batch-size 'lots' is not a whole number >= 1 or auto"),
    ({"batch_size": 0}, "--batch-size '0' is not a whole number >= 1 or auto"),
    ({"calibration_batch_size": 0}, "--calibration-size and --calibration-batch-size must be >= 1"),
    ({"limit": 0}, "--limit must be >= 1"),
    ({"folds": 1}, "--folds 1 must be at least 2"),
    ({"select_on": "test"}, "unknown --select-on 'test'; choose from: auto, validation, none"),
    ({"test_on": "best"}, "unknown --test-on 'best'; choose from: all, chosen"),
    ({"test_on": "chosen", "strategies": ["eigen"], "fractions": [0.2]},  # auto: nothing to choose
     "--test-on chosen needs --select-on validation"),
    ({"executor_options": ExecutorOptions(max_retries=-1)}, "--max-retries must be >= 0"),
    ({"executor": "slurm"}, "unknown executor 'slurm'; choose from: local, ray"),
    ({"executor": "ray", "save": Path("out"), "strategies": ["eigen"]},
     "--save writes one cell's model on this machine; use --executor local"),
])
def test_preflight_alone_refuses_each_bad_setting(tmp_path, settings, message):
    """A caller of the library (not the command, whose click checks types and choices) gets the
    command's own line from preflight, before anything is loaded or written."""
    cfg = BenchConfig(tasks=["int_mult"], output=tmp_path / "r.csv", **settings)
    with pytest.raises(HarnessError) as caught:
        preflight.check(cfg)
    assert message in str(caught.value)
    assert not (tmp_path / "r.csv").exists()


def test_needs_are_only_enforced_where_they_apply(tiny_dir, tmp_path):
    cfg = BenchConfig(model=str(tiny_dir), tasks=["int_mult"], output=tmp_path / "r.csv",
                      strategies=["random-sv", "smallest-sv", "magnitude"],
                      calibration_size=17, calibration_batch_size=16)
    assert [s.name for s in preflight.check(cfg)] == ["random-sv", "smallest-sv", "magnitude"]
    cfg.strategies, cfg.pruner, cfg.threshold = ["eigen"], "threshold", 0.5
    cfg.calibration_size = 32
    assert preflight.check(cfg)[0].pruner == "threshold"
    assert [preflight.smallest_batch(n, 16) for n in (1, 2, 16, 17, 18, 32, 33)] == [1, 2, 16, 1, 2, 16, 1]
    assert not (tmp_path / "r.csv").exists()


def test_tasks_dir_yaml_that_lm_eval_would_skip_is_named(tiny_dir, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "good.yaml").write_text(textwrap.dedent("""\
        task: my_good_task
        dataset_path: json
        process_docs: !function helpers.process
        output_type: generate_until
        doc_to_text: "{{q}}"
        doc_to_target: "{{a}}"
    """))
    (tasks / "helpers.py").write_text("def process(docs):\n    return docs\n")
    preflight.check_tasks_dir(str(tasks))  # a !function tag that imports is fine

    (tasks / "broken.yaml").write_text("task: broken\ndoc_to_text: {{q}}: oops\n  bad indent: [\n")
    line = one_line_error(["bench", "--model", str(tiny_dir), "--task", "my_good_task",
                           "--tasks-dir", str(tasks), "--output", str(tmp_path / "r.csv")])
    assert f"lm-eval cannot parse {tasks / 'broken.yaml'}" in line
    (tasks / "broken.yaml").write_text("task: broken\nprocess_docs: !function nowhere.process\n")
    with pytest.raises(HarnessError,
                       match=r"cannot parse .*broken.yaml: ImportError: Cannot import module 'nowhere'"):
        preflight.check_tasks_dir(str(tasks))
    (tasks / "broken.yaml").unlink()
    preflight.check_task_names(["my_good_task"], str(tasks))  # found in the user's directory


# -- results CSVs ----------------------------------------------------------------------------
def make_rows(n: int, split: str = "test") -> list[Row]:
    return [Row(model="m", task="t", split=split, strategy="none" if i == 0 else "eigen",
                fraction=0.1 * i, metric="acc", value=0.5, stderr=0.1, n=10, seed=0, seconds=1.0,
                harness_version="0", timestamp="now", config_hash=f"h{i}") for i in range(n)]


def torn_csv(path, n: int = 3) -> str:
    leaderboard.append(path, make_rows(n))
    whole = path.read_text()
    cut = whole[: len(whole) - 25]  # a crash or a copy cut short, mid last row
    path.write_text(cut)
    return cut[cut.rfind("\n") + 1 :]


def test_truncated_results_csv_keeps_every_complete_row(tmp_path):
    path = tmp_path / "results.csv"
    torn = torn_csv(path)
    scanned = leaderboard.scan(path)
    assert [r["config_hash"] for r in scanned.rows] == ["h0", "h1"] and scanned.torn == torn
    leaderboard.append(path, make_rows(4)[3:])
    assert [r["config_hash"] for r in leaderboard.read_rows(path)] == ["h0", "h1", "h3"]
    assert (tmp_path / "results.csv.torn").read_text() == torn + "\n"  # set aside, not lost


def test_bench_sets_the_torn_line_aside_and_says_so(tiny_dir, tmp_path, capsys):
    path = tmp_path / "results.csv"
    torn = torn_csv(path)
    cfg = BenchConfig(model=str(tiny_dir), tasks=["int_mult"], output=path)
    preflight.check(cfg)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "ended in a truncated line" in err[0]
    assert "kept the 2 complete row(s)" in err[0]
    assert len(leaderboard.read_rows(path)) == 2 and path.read_text().endswith("\n")
    assert torn in (tmp_path / "results.csv.torn").read_text()


def test_leaderboard_reads_a_truncated_csv_and_says_so(tmp_path):
    path = tmp_path / "results.csv"
    torn_csv(path, n=4)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["leaderboard", str(path), "--out-dir", str(tmp_path / "lb")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "last line is truncated" in warnings[0]
    assert "the 3 complete row(s) are used" in warnings[0]
    assert path.read_bytes() == before  # reading never rewrites
    table = (tmp_path / "lb" / "leaderboard.csv").read_text()
    assert "eigen" in table and "none" in table


@pytest.mark.parametrize("content, message", [
    ("name,age\nada,36\n", "is not a results file: its header lacks model, task, split"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not a results file (not text)"),
])
def test_a_file_that_is_not_results_is_refused_untouched(tiny_dir, tmp_path, content, message):
    path = tmp_path / "results.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    line = one_line_error(["bench", "--model", str(tiny_dir), "--output", str(path)])
    assert message in line and str(path) in line
    line = one_line_error(["leaderboard", str(path), "--out-dir", str(tmp_path / "lb")])
    assert message in line
    assert path.read_bytes() == (content.encode() if isinstance(content, str) else content)


def test_a_damaged_middle_row_is_refused_untouched(tmp_path):
    path = tmp_path / "results.csv"
    leaderboard.append(path, make_rows(3))
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = ",".join(next(csv.reader([lines[2]]))[:5]) + "\n"
    path.write_text("".join(lines))
    before = path.read_bytes()
    with pytest.raises(HarnessError, match="is damaged: line 3 has 5 fields"):
        leaderboard.append(path, make_rows(4)[3:])
    assert path.read_bytes() == before


def _append_many(path: str, tag: str, n: int) -> None:
    for i in range(n):
        row = make_rows(1)[0]
        row.config_hash = f"{tag}{i}"
        leaderboard.append(path, [row])


def test_two_sweeps_appending_to_one_csv_lose_no_row(tmp_path):
    """Each append reads the file and replaces it; without the lock, two processes doing so
    at once keep only one side's latest rows."""
    import multiprocessing

    path = str(tmp_path / "results.csv")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, tag, 40)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    hashes = sorted(r["config_hash"] for r in leaderboard.read_rows(path))
    assert hashes == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(40)])


# -- plugin faults name the plugin and the hook ----------------------------------------------
class Raises:
    @hookimpl
    def register_pruners(self, register):
        raise KeyError("oops")


class Twice:
    @hookimpl
    def register_scorers(self, register):
        register("sigma", lambda ctx: {})


class BadShapes:
    @hookimpl
    def register_scorers(self, register):
        register("crash", lambda ctx: 1 / 0)
        register("wide", lambda ctx: {m.id: torch.zeros(ctx.factors[m.id].S.shape[0], 99)
                                      for m in ctx.matrices})
        register("ints", lambda ctx: {m.id: torch.zeros_like(ctx.factors[m.id].S, dtype=torch.long)
                                      for m in ctx.matrices})

    @hookimpl
    def register_pruners(self, register):
        register("float-mask", lambda scores, fraction, options: {k: v * 0 for k, v in scores.items()})
        register("missing", lambda scores, fraction, options: {})

    @hookimpl
    def register_strategies(self, register):
        for scorer, pruner in [("crash", "global-fraction"), ("wide", "global-fraction"),
                               ("ints", "global-fraction"), ("sigma", "float-mask"), ("sigma", "missing")]:
            register(Strategy(f"{scorer}+{pruner}", "broken", scorer=scorer, pruner=pruner,
                              compensate=False))
        register(Strategy("apply-raises", "broken", apply=lambda request: [][0]))
        register(Strategy("apply-returns-none", "broken", apply=lambda request: None))


def test_a_hook_that_raises_or_registers_twice_is_named():
    with pytest.raises(HarnessError, match=r"plugin 'Raises' failed in its hook register_pruners: "
                                           r"KeyError: 'oops'"):
        with testing.registry_with(Raises()):
            pass
    with pytest.raises(HarnessError, match=r"scorers 'sigma' is registered twice: by plugin 'scorers' "
                                           r"and by plugin 'Twice' \(hook register_scorers\)"):
        with testing.registry_with(Twice()):
            pass


@pytest.mark.parametrize("strategy, message", [
    ("crash+global-fraction", "scorer 'crash' of plugin 'BadShapes' (hook register_scorers) failed: "
                              "ZeroDivisionError"),
    ("wide+global-fraction", "scorer 'wide' of plugin 'BadShapes' (hook register_scorers) returned "
                             "torch.float32 (2, 99) for layer.0.k; expected a float tensor (heads, "
                             "rank): float (2, 8)"),
    ("ints+global-fraction", "returned torch.int64 (2, 8) for layer.0.k"),
    ("sigma+float-mask", "pruner 'float-mask' of plugin 'BadShapes' (hook register_pruners) returned "
                         "torch.float64 (2, 8) for layer.0.k; expected a bool keep-mask"),
    ("sigma+missing", "pruner 'missing' of plugin 'BadShapes' (hook register_pruners) must return"),
])
def test_a_component_returning_the_wrong_thing_is_named(strategy, message):
    model = testing.tiny_model("llama")
    from harness import selection, spectral

    with testing.registry_with(BadShapes()) as reg:
        matrices = selection.select(selection.candidates(model), "k")
        before = [m.weight().clone() for m in matrices]
        request = PruneRequest(model=model, matrices=matrices, fraction=0.2, seed=0,
                               strategy=reg.get("strategies", strategy),
                               batches=testing.random_batches(), spectrum=spectral.SpectrumCache())
        with pytest.raises(HarnessError) as info:
            spectral_apply(request)
    assert message in str(info.value)
    assert all(torch.equal(m.weight(), w) for m, w in zip(matrices, before, strict=True))


@pytest.mark.parametrize("strategy, message", [
    ("apply-raises", "strategy 'apply-raises' of plugin 'BadShapes' (hook register_strategies) failed: "
                     "IndexError: list index out of range"),
    ("apply-returns-none", "strategy 'apply-returns-none' of plugin 'BadShapes' (hook "
                           "register_strategies) returned NoneType from apply; expected a "
                           "harness.edits.Edit"),
])
def test_a_strategy_s_own_apply_is_named(strategy, message):
    from harness import spectral

    with testing.registry_with(BadShapes()) as reg:
        request = PruneRequest(model=testing.tiny_model("llama"), matrices=[], fraction=0.2, seed=0,
                               strategy=reg.get("strategies", strategy), batches=[],
                               spectrum=spectral.SpectrumCache())
        with pytest.raises(HarnessError) as info:
            request.strategy.apply(request)
    assert str(info.value) == message


# -- what the terminal shows -----------------------------------------------------------------
def test_an_error_never_lands_on_the_progress_bar_line():
    from tqdm.auto import tqdm

    @click.command(name="fail-mid-bar")
    def fail_mid_bar():
        bar = tqdm(total=3, desc="cells")
        bar.update(1)
        raise HarnessError("the third cell failed")

    cli.add_command(fail_mid_bar)
    try:
        result = CliRunner().invoke(cli, ["fail-mid-bar"])
    finally:
        cli.commands.pop("fail-mid-bar")
    assert result.exit_code == 2
    assert "cells" in result.output  # the bar was drawn
    assert "\nerror: the third cell failed" in result.output.replace("\r", "\n")
    last = result.output.split("\n")[-2]
    assert last == "error: the third cell failed"


def test_lm_eval_git_probe_is_silent_outside_a_repository(tmp_path, monkeypatch, capfd):
    from lm_eval import evaluator

    from harness.evaluate import quiet_git_probe

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluator, "get_git_commit_hash", evaluator.get_git_commit_hash)
    quiet_git_probe()
    assert evaluator.get_git_commit_hash() is None
    assert "fatal" not in capfd.readouterr().err


def test_lm_eval_environment_report_is_taken_once_per_process(monkeypatch):
    from lm_eval import evaluator

    from harness.evaluate import env_probe_once

    calls = []

    def probe(storage):
        calls.append(1)
        storage["pretty_env_info"] = f"report {len(calls)}"

    monkeypatch.setattr(evaluator, "add_env_info", probe)
    env_probe_once()
    env_probe_once()  # installing twice wraps once
    first, second = {}, {}
    evaluator.add_env_info(first)
    evaluator.add_env_info(second)
    assert calls == [1] and first == second == {"pretty_env_info": "report 1"}

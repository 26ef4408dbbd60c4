"""The `harness` command: bench, leaderboard, tasks, plugins."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness import __version__
from harness.board_format import fmt_p
from harness.errors import HarnessError
from harness.recipes import option_text
from harness.run_settings import SETTING, click_options, from_cli, split_list

if TYPE_CHECKING:  # the grid imports torch: not at start-up (see below)
    from harness.grid import BenchConfig

# The subcommands import the rest of the harness inside their functions: torch, transformers
# and lm-eval take seconds to import, and `harness --help`, `harness tasks` or a mistyped
# option must answer without them. Those are the only function-level imports of the CLI.


def _quiet() -> None:
    """Library chatter (lm-eval warnings, transformers progress bars) hides the results."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("lm_eval", "lm-eval", "transformers", "datasets", "accelerate", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" not in sys.modules:  # importing it costs a second a failing command needs not pay
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        return
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


class HarnessGroup(click.Group):
    """Turns a HarnessError into one line on stderr and its exit code, 2 for bad input (a traceback
    with --debug)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _end_progress_bars()
            click.echo("\ninterrupted: finished cells are saved; run the same command again to resume",
                       err=True)
            ctx.exit(130)
        except HarnessError as exc:
            if ctx.params.get("debug") or os.environ.get("EIGENHARNESS_DEBUG"):
                raise
            _end_progress_bars()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # click's own checks: one line too, not usage + hint + error
            if exc.ctx is None or ctx.params.get("debug") or os.environ.get("EIGENHARNESS_DEBUG"):
                raise
            click.echo(f"error: {exc.format_message()} (see `{exc.ctx.command_path} --help`)", err=True)
            ctx.exit(exc.exit_code)


def _end_progress_bars() -> None:
    """Close any progress bar first, so the error gets a line of its own instead of the bar's."""
    tqdm = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eigenharness")
@click.option("--debug", is_flag=True, help="Show full tracebacks and library logs.")
def cli(debug: bool) -> None:
    """Benchmark singular-value pruning (eigenpruning) of language models on lm-eval tasks.

    \b
    Example:
      harness bench --model smollm2-135m --task int_mult --strategy none,eigen --fraction 0.05,0.2
      harness leaderboard leaderboard/results.csv
    """
    if debug:
        os.environ["EIGENHARNESS_DEBUG"] = "1"
    else:
        _quiet()


@cli.command()
@click.option("--model", default="smollm2-135m", show_default=True,
              help="smollm2-135m (embedded), a model directory, a .gguf file or a hub id.")
@click.option("--task", "tasks", multiple=True, default=("int_sum", "int_mult"), show_default=True,
              help="Task name(s), repeatable or comma-separated; shipped or any lm-eval task.")
@click.option("--strategy", "strategies", multiple=True, default=("none",), show_default=True,
              help="Strategy name(s), repeatable or comma-separated (see `harness plugins`).")
@click.option("--fraction", "fractions", multiple=True,
              help="Pruning budget(s) in [0, 1); default: each strategy's own (eigen: 0.2).")
@click.option("--seed", "seeds", multiple=True, default=("0",), show_default=True,
              help="Seed(s): calibration sample and random scores.")
@click_options  # --limit ... --executor: the run settings (harness/run_settings.py)
@click.option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray).")
@click.option("--gpus-per-worker", type=float, 
              help="GPUs per Ray worker (default: 1 if the cluster has any).")
@click.option("--cpus-per-worker", type=float, default=1.0, show_default=True, help="CPUs per Ray worker.")
@click.option("--max-workers", type=int, help="At most this many workers (default: as many as fit).")
@click.option("--max-retries", type=int, default=2, show_default=True,
              help="Re-runs of a unit's unfinished cells after its worker died.")
def bench(**kw) -> None:
    """Prune, evaluate and append leaderboard rows for every cell of the grid.

    \b
    Example:
      harness bench --task int_mult --strategy none,eigen,random-sv --fraction 0.05,0.2 --seed 0,1
    """
    from harness import bench as bench_lib
    from harness import preflight

    cfg = bench_config(kw)
    preflight.check(cfg)  # every option, before the model loads
    try:
        rows, keys = bench_lib.run(cfg)
    except bench_lib.CellsFailed as failed:  # the rest of the grid ran: show it, then what failed
        if cfg.output.is_file():
            click.echo(format_rows(cfg.output, failed.keys))
        click.echo(f"\n{len(failed.rows)} row(s) appended to {cfg.output}")
        click.echo(f"error: {failed}", err=True)
        click.get_current_context().exit(1)
    click.echo(format_rows(cfg.output, keys))
    if not rows:
        click.echo(f"\nnothing to do: every cell is already in {cfg.output} (use --force to re-run)")
    else:
        click.echo(f"\n{len(rows)} row(s) appended to {cfg.output}")
    _echo_verdicts(cfg.output, keys)


def bench_config(kw: dict) -> BenchConfig:
    """The sweep `harness bench` was given, from click's values (the board's reproduce command is
    checked through it too)."""
    from harness.grid import BenchConfig
    from harness.work import ExecutorOptions

    return BenchConfig(
        model=kw["model"], tasks=split_list(kw["tasks"]), strategies=split_list(kw["strategies"]),
        fractions=split_list(kw["fractions"], float, "--fraction") or None,
        seeds=split_list(kw["seeds"], int, "--seed") or [0], **from_cli(kw),
        executor_options=ExecutorOptions(
            address=kw["address"], gpus_per_worker=kw["gpus_per_worker"],
            cpus_per_worker=kw["cpus_per_worker"], max_workers=kw["max_workers"],
            max_retries=kw["max_retries"]))


def format_rows(csv_path: Path, keys: set[str]) -> str:
    """The grid's rows, finished earlier or just now, as a plain table. What was removed carries
    its unit: magnitude counts weights, the spectral strategies singular values, and one bare
    number column would set 663,540 beside 1,152 as if they were the same kind of thing."""
    import pandas as pd

    df = pd.read_csv(csv_path)
    df = df[df.config_hash.isin(keys)]
    units = df["unit"].fillna("") if "unit" in df else pd.Series("", index=df.index)
    short = units.map({"singular values": "sv", "weights": "weights"}).fillna(units)
    df = df.assign(removed=[f"{int(n):,} {u}".strip() if n else "0"
                            for n, u in zip(df.n_pruned.fillna(0), short, strict=True)],
                   p_value=df.p_value.map(fmt_p))
    cols = ["task", "split", "strategy", "fraction", "seed", "metric", "value", "stderr", "delta",
            "p_value", "n", "removed", "scoring_seconds", "eval_seconds"]
    return df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")


def verdict_lines(csv_path: Path, keys: set[str]) -> list[str]:
    """The leaderboard's verdict for the cells this grid holds: the conclusion, not only rows."""
    from harness import report

    df = report.load([csv_path])
    df = df[df.config_hash.isin(keys)]
    if df.empty:
        return []
    try:
        return report.verdicts(report.table(df))
    except HarnessError as exc:  # no test rows (say): say why there is no verdict
        return [f"no verdict: {exc}"]


def _echo_verdicts(csv_path: Path, keys: set[str]) -> None:
    lines = verdict_lines(csv_path, keys)
    if lines:
        click.echo("\nVerdict for this grid (`harness leaderboard` gives the whole board and the rule):")
        click.echo("\n".join(f"- {line}" for line in lines))


@cli.command(name="leaderboard")
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the table and plots (default: beside the first CSV).")
@click.option("--model", "models_", multiple=True, help="Only these models (repeatable, comma lists).")
@click.option("--task", "tasks_", multiple=True, help="Only these tasks.")
@click.option("--strategy", "strategies", multiple=True, help="Only these strategies.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the board as one self-contained HTML page (sortable, filterable).")
def leaderboard_cmd(results, out_dir, models_, tasks_, strategies, html_path) -> None:
    """Turn results CSVs into the comparative leaderboard (CSV, Markdown) and plots.

    \b
    The fraction of each strategy is chosen on the validation split; the table reports the
    test split at that fraction, mean ± std over seeds.
    Example:
      harness leaderboard leaderboard/results.csv --task int_mult
    """
    from harness import report

    paths = list(results) or [Path("leaderboard") / "results.csv"]
    written = report.write(paths, out_dir or paths[0].parent, split_list(models_) or None,
                           split_list(tasks_) or None, split_list(strategies) or None, html_path)
    click.echo((written[1]).read_text())
    click.echo("wrote " + ", ".join(str(p) for p in written))


@cli.command()
@click.option("--tasks-dir", help="Also list the tasks in this directory of lm-eval YAMLs.")
@click.option("--all", "show_all", is_flag=True, help="Also list every lm-eval task (slower).")
def tasks(tasks_dir: str | None, show_all: bool) -> None:
    """List the tasks `harness bench --task` accepts."""
    from harness import tasks as task_lib

    for name in task_lib.shipped(tasks_dir, include_defaults=show_all):
        click.echo(name)


@cli.command()
def plugins() -> None:
    """List loaded plugins, their versions, hooks and the components they register."""
    from harness.plugins import KINDS, registry

    reg = registry()
    by_plugin: dict[str, dict[str, list[str]]] = {}
    for kind in KINDS:
        for comp in reg.components[kind].values():
            by_plugin.setdefault(comp.plugin, {}).setdefault(kind, []).append(comp.name)
    click.echo("hook points: " + ", ".join(
        f"register_{k}" for k in KINDS) + "  (see harness/hookspecs.py)")
    for name, plugin in reg.pm.list_name_plugin():
        hooks = [h.name for h in reg.pm.get_hookcallers(plugin) or []]
        click.echo(f"\n{name} {reg.versions.get(name, '?')}  hooks: {', '.join(sorted(hooks))}")
        for kind, names in by_plugin.get(name, {}).items():
            click.echo(f"  {kind}: {', '.join(sorted(names))}")
    click.echo(f"\narchitectures: {', '.join(reg.names('architectures'))}; "
               "other decoder-only models: structural discovery (harness/discovery.py)")
    click.echo("\nstrategies:")
    for comp in sorted(reg.components["strategies"].values(), key=lambda c: c.name):
        click.echo(f"  {comp.name:<17} {comp.value.description}")
        if comp.value.options:  # what --option can set, with the defaults
            knobs = ", ".join(f"{k}={option_text(v)}" for k, v in comp.value.options.items())
            click.echo(f"  {'':<17} options: {knobs}")
    click.echo("\nexecutors (harness bench --executor):")
    for comp in sorted(reg.components["executors"].values(), key=lambda c: c.name):
        click.echo(f"  {comp.name:<17} {getattr(comp.value, 'description', '')}")


@cli.command()
@click.option("--model", default="smollm2-135m", show_default=True, help="As for bench.")
@click.option("--task", default="int_mult", show_default=True, help="One task (its train split is used).")
@click.option("--scorer", "scorers", multiple=True, default=("attribution,gradient,mean-ablation",),
              show_default=True, help="Scorer(s) to compare, repeatable or comma-separated.")
@click.option("--matrices", default="all", show_default=True, help="Selectors, as for bench.")
@click.option("--layers", help="Restrict to layers, as for bench.")
@click.option("--sample", type=int, default=32, show_default=True, help="Directions per matrix kind.")
@click.option("--calibration-size", type=int, default=SETTING["calibration_size"].default, show_default=True)
@click.option("--calibration-batch-size", type=int, default=SETTING["calibration_batch_size"].default,
              show_default=True)
@click.option("--measure-examples", type=int, default=32, show_default=True,
              help="Calibration examples the removals are measured on.")
@click.option("--compensate/--no-compensate", default=True, show_default=True,
              help="Measure mean ablation (as eigen prunes) or zeroing.")
@click.option("--objective", default="ce", show_default=True,
              help="ce, margin, first-token, or a plugin's (see `harness plugins`).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-rows", type=int, default=128, show_default=True, help="Sequences per forward pass.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("leaderboard") / "fidelity", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--tasks-dir")
@click.option("--data-dir", envvar="EIGENHARNESS_DATA_DIR")
def fidelity(**kw) -> None:
    """Scorer predictions next to measured loss changes of single directions, per matrix kind.

    \b
    Example:
      harness fidelity --task int_mult --scorer attribution,gradient --sample 32
    """
    from harness import fidelity as fidelity_lib

    kw["scorers"] = split_list(kw["scorers"])
    summary, paths = fidelity_lib.run(fidelity_lib.FidelityConfig(**kw))
    click.echo(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo("wrote " + ", ".join(str(p) for p in paths))


def _interrupt_twice_to_force(signum, frame) -> None:
    """First Ctrl-C: KeyboardInterrupt, so the run stops between cells and says so. A second
    one exits at once: a long native call (an SVD, a big matmul) can hold off the first, and
    every file the harness writes is replaced atomically, so nothing can be left torn."""
    if getattr(_interrupt_twice_to_force, "pressed", False):
        sys.stderr.write("\ninterrupted again: exiting now; finished cells are saved\n")
        os._exit(130)
        return
    _interrupt_twice_to_force.pressed = True
    raise KeyboardInterrupt


def main() -> None:
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when embedded
        signal.signal(signal.SIGINT, _interrupt_twice_to_force)
    cli(prog_name="harness")


if __name__ == "__main__":
    sys.exit(main())

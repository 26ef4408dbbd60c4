"""The driver behind `harness bench`: tasks x strategies x seeds x fractions.

The grid is cut into jobs (harness/work.py): one unpruned baseline per task, evaluated once
per sweep, and units of cells that an executor plugin runs on its workers
(harness/runner.py: each worker loads the model once, computes SVDs once and scores once per
(task, seed), and restores the weights between cells). This process is the one writer: rows
are appended as soon as a cell's result comes back, a cell that comes back twice (a retried
unit) is written once, and a re-run skips cells whose (config hash, split) is in the CSV.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness import __version__, leaderboard, per_example
from harness import tasks as task_lib
from harness.calibration import split_docs
from harness.edits import Edit
from harness.errors import HarnessError
from harness.export import write_json
from harness.leaderboard import Row
from harness.plugins import registry
from harness.stats import paired_p_value
from harness.strategy import Strategy, option_value, variant_name
from harness.work import (
    BaselineDone,
    BaselineJob,
    Cell,
    CellDone,
    ExecutorOptions,
    JobFailed,
    WorkerLost,
    WorkUnit,
    cut_units,
)

DEFAULT_OUTPUT = Path("leaderboard") / "results.csv"


@dataclass
class BenchConfig:
    model: str = "smollm2-135m"
    tasks: list[str] = field(default_factory=lambda: ["int_sum", "int_mult"])
    strategies: list[str] = field(default_factory=lambda: ["none"])
    fractions: list[float] | None = None  # None: each strategy's default
    seeds: list[int] = field(default_factory=lambda: [0])
    limit: int | None = None
    output: Path = DEFAULT_OUTPUT
    select_on: str = "auto"  # validation, none, or auto: validation only where there is a choice
    folds: int | None = None  # K: cross-fitted evaluation, every labelled document tested once
    test_on: str = "all"  # or "chosen": test only the fraction validation picks per (strategy, seed)
    calibration_size: int = 64
    calibration_batch_size: int = 16
    batch_size: int | str = "auto"  # lm-eval's; "auto": see evaluate.resolve_batch_size
    matrices: str | None = None  # overrides each strategy's selector
    layers: str | None = None
    scorer: str | None = None
    objective: str | None = None  # overrides what each spectral strategy's scores estimate
    decomposition: str | None = None  # overrides each spectral strategy's basis (plain, whitened...)
    also_eval: list[str] = field(default_factory=list)  # tasks each pruned cell is measured on too
    pruner: str | None = None
    compensate: bool | None = None
    threshold: float | None = None
    options: dict[str, str] = field(default_factory=dict)  # --option name=value: strategies' knobs
    device: str = "auto"
    dtype: str = "auto"
    tasks_dir: str | None = None
    data_dir: str | None = None
    force: bool = False
    save: Path | None = None
    executor: str = "local"  # an executor plugin: local (this process) or ray
    executor_options: ExecutorOptions = field(default_factory=ExecutorOptions)


def resolve_strategies(cfg: BenchConfig) -> list[Strategy]:
    """The named strategies with the CLI's overrides applied; validates every name up front.

    A strategy an override changed is renamed `name[field=value;...]` (`eigen[scorer=gradient]`),
    so its rows, their config hashes and the leaderboard keep it apart from the recipe as
    registered."""
    reg = registry()
    out = []
    named = [reg.get("strategies", name) for name in cfg.strategies]
    for key in cfg.options:
        if not any(key in s.options for s in named):
            knobs = sorted({k for s in named for k in s.options})
            raise HarnessError(
                f"no strategy given ({', '.join(cfg.strategies)}) has option '{key}'; "
                + (f"choose from: {', '.join(knobs)}" if knobs else "they take no options"))
    for name, s in zip(cfg.strategies, named, strict=True):
        overrides = {k: v for k, v in (("matrices", cfg.matrices), ("scorer", cfg.scorer),
                                       ("objective", cfg.objective), ("pruner", cfg.pruner),
                                       ("decomposition", cfg.decomposition),
                                       ("compensate", cfg.compensate))
                     if v is not None and s.uses_fraction}
        if not s.spectral:  # they mean nothing to a custom one
            overrides = {k: v for k, v in overrides.items() if k == "matrices"}
        changed = {k: v for k, v in overrides.items() if getattr(s, k) != v}
        values = {k: option_value(s, k, raw) for k, raw in cfg.options.items() if k in s.options}
        knobs = {k: v for k, v in sorted(values.items()) if s.options[k] != v}  # sorted: one label
        # (and one config hash) whatever order the --option flags came in
        if changed or knobs:
            seeded = (s.seeded or "scorer" in changed or "objective" in changed or changed.get("compensate")
                      or "decomposition" in changed)
            # (a calibration sample or a scorer the seed may move)
            s = dataclasses.replace(s, name=variant_name(name, {**changed, **knobs}), seeded=bool(seeded),
                                    options={**s.options, **knobs}, **changed)
        if s.scorer is not None:
            reg.get("scorers", s.scorer)
        if s.uses_fraction and s.spectral:
            reg.get("objectives", s.objective)
            reg.get("decompositions", s.decomposition)
        if s.spectral:
            reg.get("pruners", s.pruner)
        for spec in (s.matrices or "").split(","):
            if spec.strip():
                reg.get("selectors", spec.strip())
        out.append(s)
    for f in cfg.fractions or []:
        if not 0 <= f < 1:
            raise HarnessError(f"fraction {f} is outside [0, 1); give e.g. --fraction 0.05,0.2")
    if cfg.select_on not in ("auto", "validation", "none"):
        raise HarnessError(f"unknown --select-on '{cfg.select_on}'; choose from: auto, validation, none")
    if cfg.test_on not in ("all", "chosen"):
        raise HarnessError(f"unknown --test-on '{cfg.test_on}'; choose from: all, chosen")
    if cfg.test_on == "chosen" and cfg.select_on == "none":
        raise HarnessError("--test-on chosen needs --select-on validation (the choice is made there)")
    return out


def versions() -> dict[str, str]:
    import lm_eval
    import transformers

    return {"harness_version": __version__, "lm_eval_version": lm_eval.__version__,
            "transformers_version": transformers.__version__, "torch_version": torch.__version__}


def select_on(cfg: BenchConfig, strategies: list[Strategy]) -> str:
    """`--select-on auto`: evaluate validation only where it has something to choose, a
    strategy run at two fractions or more. With one fraction each, a validation row is read by
    nothing (the board reports such a row at its fixed fraction), and on int_sum it is 44% of
    a cell's evaluation."""
    if cfg.select_on != "auto":
        return cfg.select_on
    choice = any(s.uses_fraction and len(set(cfg.fractions or [s.fraction])) > 1 for s in strategies)
    return "validation" if choice else "none"


def eval_splits(task, select_on: str) -> list[str]:
    final = task_lib.eval_split(task)
    if select_on == "validation" and final == "test" and task.has_validation_docs():
        return ["validation", "test"]
    return [final]


def tests_chosen_only(cfg: BenchConfig, splits: list[str], strategy: Strategy) -> bool:
    """With --test-on chosen and a task that has validation and test: each (strategy, seed)
    unit evaluates validation for every fraction and test for the one validation picks.
    Baselines are tested at every fraction all the same: the board sets each method against
    the best baseline at the method's own chosen budget, which a baseline tested only at its
    own choice would leave without a partner."""
    return cfg.test_on == "chosen" and splits == ["validation", "test"] and not strategy.baseline


def pick(results: list[tuple[float, float]]) -> int:
    """Index of the (validation value, fraction) that harness/report.py `choose` would pick:
    the best value, ties to the smaller fraction (prune less); NaN values last."""
    def rank(i: int) -> tuple:
        value, fraction = results[i]
        return (math.isnan(value), 0.0 if math.isnan(value) else -value, fraction)

    return min(range(len(results)), key=rank)


def cells(cfg: BenchConfig, strategies: list[Strategy]):
    """(strategy, seed, fraction) in run order; the baseline is one cell whatever the grid,
    and a strategy the seed cannot change runs once, as seed 0, whatever --seed says: sweeps
    that add seeds later (--seed 4,5,6,7 after --seed 0,1,2,3) then share its cells instead of
    repeating them under another seed."""
    for s in strategies:
        if not s.uses_fraction:
            yield s, 0, 0.0
            continue
        for seed in cfg.seeds if s.seeded else [0]:
            for fraction in cfg.fractions or [s.fraction]:
                yield s, seed, fraction


def cell_config(cfg: BenchConfig, task: str, s: Strategy, seed: int, fraction: float) -> dict:
    """What defines a cell, hashed into its key; `task` is a slot (a task or one of its folds).
    A fold adds its keys, so the paper's split keeps the hashes it always had."""
    name, fold, folds = task_lib.parse_slot(task)
    config = {"model": cfg.model, "task": name, "strategy": s.name, "matrices": s.matrices,
              "layers": cfg.layers, "scorer": s.scorer, "pruner": s.pruner,
              "compensate": s.compensate, "threshold": cfg.threshold, "fraction": fraction,
              "seed": seed, "limit": cfg.limit, "calibration_size": cfg.calibration_size,
              "calibration_batch_size": cfg.calibration_batch_size, "dtype": cfg.dtype}
    if fold is not None:
        config.update(folds=folds, fold=fold)
    # keys added only away from their defaults, so every earlier row keeps its config hash
    if s.decomposition != "plain":
        config["decomposition"] = s.decomposition
    if cfg.also_eval and s.uses_fraction:
        config["also_eval"] = sorted(cfg.also_eval)
    return config


def slots(cfg: BenchConfig, task_name: str) -> list[str]:
    """The task itself, or each of its `--folds` folds."""
    if cfg.folds is None:
        return [task_name]
    return [task_lib.slot(task_name, f, cfg.folds) for f in range(cfg.folds)]


def task_view(task, slot_name: str):
    """The Task object a slot evaluates: the task itself, or its fold's view."""
    _, fold, folds = task_lib.parse_slot(slot_name)
    return task if fold is None else task_lib.folded(task, folds, fold)


def grid_keys(cfg: BenchConfig, task_names, strategies: list[Strategy]) -> set[str]:
    """Config hashes of every cell of the grid (to show finished cells next to new ones)."""
    return {leaderboard.config_hash(cell_config(cfg, t, *c))
            for name in task_names for t in slots(cfg, name) for c in cells(cfg, strategies)}


def examples_evaluated(task, cfg: BenchConfig) -> float:
    """What one cell of `task` costs, roughly: the examples it evaluates over its splits."""
    total = 0.0
    for split in eval_splits(task, cfg.select_on):
        try:
            n = len(split_docs(task, split))
        except Exception:  # a split the count cannot see: count it as one example
            n = 1
        total += min(n, cfg.limit or n)
    return max(total, 1.0)


def make_row(cfg: BenchConfig, config: dict, key: str, result, base, edit, s: Strategy,
             calibration_size: int, seconds: float, stamp: dict) -> Row:
    """One leaderboard row: a split's result, set against the unpruned model's on that split."""
    pruning = s.uses_fraction
    return Row(
        model=cfg.model, task=config["task"], split=result.split, strategy=s.name,
        fraction=config["fraction"], metric=result.metric, value=result.value,
        stderr=result.stderr, n=result.n, seed=config["seed"], seconds=round(seconds, 3),
        timestamp=leaderboard.now(), delta=result.value - base.value,
        p_value=paired_p_value(base.per_example, result.per_example),
        n_pruned=edit.n_pruned, n_total=edit.n_total, unit=edit.unit if pruning else "",
        matrices=s.matrices if pruning else "", scorer=s.scorer or "",
        pruner=s.pruner if s.spectral else "",
        compensate=s.compensate and s.spectral,
        calibration_size=calibration_size,
        scoring_seconds=round(edit.scoring_seconds, 3), eval_seconds=round(result.seconds, 3),
        config_hash=key, details=json.dumps(edit.details) if edit.details else "", **stamp,
        folds=config.get("folds", 0), fold=config.get("fold", -1),
        limit=cfg.limit, dtype=cfg.dtype,
        nll=result.nll, nll_delta=result.nll - base.nll, **edit.spectrum,
        svd_seconds=round(edit.svd_seconds, 3),
        objective=s.objective if pruning and s.spectral else "",
        calibration_batch_size=config["calibration_batch_size"],
        role="baseline" if s.baseline else "method",
        decomposition=s.decomposition if pruning and s.spectral else "",
        general_nll=edit.general_nll, general_nll_delta=edit.general_nll - edit.general_nll_base,
        transfer=json.dumps(edit.transfer, sort_keys=True) if edit.transfer else "",
    )


class CellsFailed(HarnessError):
    """Some cells (or a task's baseline) failed; every other cell's rows are written.

    The message is the summary; `rows` and `keys` are what `run` would have returned.
    """

    def __init__(self, failures: list[tuple[str, str]], rows: list[Row], keys: set[str]) -> None:
        lines = [f"  {label}: {message}" for label, message in failures]
        super().__init__(f"{len(failures)} failure(s) in the sweep (no row for those cells; every "
                         "other row is written):\n" + "\n".join(lines))
        self.failures, self.rows, self.keys = failures, rows, keys


@dataclass
class _Driver:
    """The one writer: turns the executor's events into rows, in whatever order they come."""

    cfg: BenchConfig
    strategies: dict[str, Strategy]
    progress: Any
    done: set[tuple[str, str]]
    stamp: dict
    baselines: dict[str, dict] = field(default_factory=dict)
    baseline_cells: dict[str, list] = field(default_factory=dict)  # task -> cells needing no pruning
    waiting: dict[str, list[CellDone]] = field(default_factory=dict)  # cells whose baseline is not in
    dead_tasks: set[str] = field(default_factory=set)
    failures: list[tuple[str, str]] = field(default_factory=list)
    written: list[Row] = field(default_factory=list)

    @property
    def masks_dir(self) -> Path:
        return self.cfg.output.parent / (self.cfg.output.stem + "_masks")

    def say(self, line: str) -> None:
        self.progress.write(line, file=sys.stderr)  # above the bar, never on its line

    def handle(self, event) -> None:
        if isinstance(event, BaselineDone):
            self.baselines[event.task] = event.results
            for s, seed, fraction, key in self.baseline_cells.pop(event.task, []):
                config = cell_config(self.cfg, event.task, s, seed, fraction)
                unpruned = Edit(n_total=0, general_nll=event.general_nll, general_nll_base=event.general_nll)
                done = CellDone(Cell(event.task, s.name, seed, fraction, key), config, event.results,
                                unpruned, 0, 0.0, event.stamp or self.stamp)
                self.write(done)
                self.progress.update(1)
            for waiting in self.waiting.pop(event.task, []):
                self.write(waiting)
        elif isinstance(event, CellDone):
            if event.cell.task in self.dead_tasks:
                pass
            elif event.cell.task in self.baselines:
                self.write(event)
            else:
                self.waiting.setdefault(event.cell.task, []).append(event)
            self.progress.update(1)
        elif isinstance(event, JobFailed):
            if event.cell is None:
                lost = len(self.baseline_cells.pop(event.task, [])) + len(self.waiting.pop(event.task, []))
                self.dead_tasks.add(event.task)
                self.fail(f"{event.task} unpruned baseline (no row for any cell of the task)", event.message)
                self.progress.update(lost)
            else:
                self.fail(event.cell.label(), event.message)
                self.progress.update(1)
        elif isinstance(event, WorkerLost):
            what = ("no retry left" if event.retry is None else "retrying it"
                    if not isinstance(event.retry, WorkUnit)
                    else f"retrying its {len(event.retry.cells)} unfinished cell(s)")
            self.say(f"worker lost while running {event.job.label()}: {event.reason}; {what}")

    def fail(self, label: str, message: str) -> None:
        self.failures.append((label, message))
        self.say(f"failed: {label}: {message}")

    def write(self, cell: CellDone) -> None:
        """Rows of a cell not yet in the CSV (a retried unit may send a cell twice)."""
        s, key = self.strategies[cell.cell.strategy], cell.cell.key
        base = self.baselines[cell.cell.task]
        if s.uses_fraction:
            self.progress.set_postfix_str(cell.cell.label())
        rows = [make_row(self.cfg, cell.config, key, r, base[sp], cell.edit, s, cell.calibration_size,
                         cell.seconds, cell.stamp)
                for sp, r in cell.results.items() if (key, sp) not in self.done]
        if not rows:
            return
        if cell.mask_report is not None:
            write_json(self.masks_dir / f"{key}.json", cell.mask_report)
        for r in cell.results.values():  # before the rows: every row has its examples on disk
            per_example.save(self.cfg.output, key, r.split, r.per_example, r.nll_per_example)
        leaderboard.append(self.cfg.output, rows)
        self.done.update((r.config_hash, r.split) for r in rows)
        self.written.extend(rows)


def run(cfg: BenchConfig) -> tuple[list[Row], set[str]]:
    """Run the grid; return the rows written now and the config hashes of the whole grid.

    Raises `CellsFailed` at the end (after every other cell ran) when some cells failed.
    """
    from tqdm.auto import tqdm

    strategies = resolve_strategies(cfg)
    cfg = dataclasses.replace(cfg, select_on=select_on(cfg, strategies))  # workers get it resolved
    if cfg.save is not None and cfg.executor != "local":
        raise HarnessError("--save writes one cell's model on this machine; use --executor local")
    executor = registry().get("executors", cfg.executor)(cfg.executor_options)  # imports its engine
    manager, loaded = task_lib.load(cfg.tasks, cfg.tasks_dir, cfg.data_dir)
    task_objs = {t: task_view(task, t) for name, task in loaded.items() for t in slots(cfg, name)}
    grid = list(cells(cfg, strategies))
    pruning_cells = [c for c in grid if c[0].uses_fraction]
    if cfg.save is not None and len(pruning_cells) * len(task_objs) != 1:
        raise HarnessError("--save needs exactly one pruned cell (one task, strategy, fraction, seed)")
    done = set() if cfg.force else leaderboard.done_keys(cfg.output)
    keys = grid_keys(cfg, loaded, strategies)

    progress = tqdm(total=len(grid) * len(task_objs), desc="cells", unit="cell")
    driver = _Driver(cfg, {s.name: s for s in strategies}, progress, set(done), versions())
    todo: list[Cell] = []
    tasks_todo: list[str] = []
    for task_name, task in task_objs.items():
        splits = eval_splits(task, cfg.select_on)
        keyed = [(s, seed, fraction, leaderboard.config_hash(cell_config(cfg, task_name, s, seed, fraction)))
                 for s, seed, fraction in grid]
        finished = {key for *_, key in keyed if all((key, sp) in done for sp in splits)}
        # --test-on chosen: a (strategy, seed) is done once every fraction has its validation
        # row and one has a test row; until then all its fractions run again (the rows
        # already in are kept), so the pick always sees the whole unit
        groups: dict[tuple, list[str]] = {}
        for s, seed, _, key in keyed:
            if s.uses_fraction and tests_chosen_only(cfg, splits, s):
                groups.setdefault((s.name, seed), []).append(key)
        if groups:
            finished -= {k for ks in groups.values() for k in ks}
            finished |= {k for ks in groups.values() for k in ks
                         if all((x, "validation") in done for x in ks)
                         and any((x, "test") in done for x in ks)}
        for s, seed, fraction, key in keyed:
            if key in finished:
                progress.update(1)
            elif s.uses_fraction or s.answerer is not None:  # (a model-free reference: a cell)
                todo.append(Cell(task_name, s.name, seed, fraction, key))
            else:
                driver.baseline_cells.setdefault(task_name, []).append((s, seed, fraction, key))
        if any(c.task == task_name for c in todo) or task_name in driver.baseline_cells:
            tasks_todo.append(task_name)
    if not tasks_todo:
        progress.close()
        return [], keys

    try:
        progress.set_postfix_str(f"starting {cfg.executor} workers")
        executor.setup(cfg, len(tasks_todo) + len(todo))
        per_cell = {t: examples_evaluated(task_objs[t], cfg) for t in tasks_todo}
        # --test-on chosen keeps each (task, strategy, seed) whole: its worker picks the fraction
        units = cut_units(todo, executor.workers, lambda c: per_cell[c.task],
                          sum(per_cell.values()), halve=cfg.test_on == "all")
        # Baselines first: a cell's rows are written as soon as both it and its baseline are in.
        jobs = [BaselineJob(t) for t in tasks_todo] + units
        for event in executor.launch(jobs):
            driver.handle(event)
    finally:
        executor.close()
        progress.close()
    if driver.failures:
        raise CellsFailed(driver.failures, driver.written, keys)
    return driver.written, keys

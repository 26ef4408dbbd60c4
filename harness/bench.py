"""The driver behind `harness bench`: tasks x strategies x seeds x fractions.

The grid itself (settings, cells, what keys a cell) is harness/grid.py, which the workers read
too; its names are re-exported here.

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
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import leaderboard, per_example, preflight
from harness import progress as notes
from harness import tasks as task_lib
from harness.calibration import split_docs
from harness.edits import Edit
from harness.errors import HarnessError
from harness.export import write_json
from harness.grid import (  # noqa: F401  (the grid's names, re-exported: callers import them from here)
    DEFAULT_OUTPUT,
    BenchConfig,
    cell_config,
    cells,
    eval_splits,
    grid_keys,
    pick,
    resolve_strategies,
    select_on,
    slots,
    task_view,
    tests_chosen_only,
    versions,
)
from harness.leaderboard import Row
from harness.plugins import registry
from harness.recipes import Strategy
from harness.stats import paired_p_value
from harness.work import (
    BaselineDone,
    BaselineJob,
    Cell,
    CellDone,
    JobFailed,
    Progress,
    WorkerLost,
    WorkUnit,
    cut_units,
)


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


def estimated_cost(cfg: BenchConfig, s: Strategy, evaluated: float) -> float:
    """A cell's cost in examples forwarded, for the bar's time left: its evaluations, plus
    its share of the (task, seed)'s scoring (a forward and a backward of the calibration
    sample, shared across the fractions). A strategy's own search or measurement is not in
    it: each says its cost in a line when it starts and counts it on the bar."""
    scoring = 3.0 * cfg.calibration_size / len(cfg.fractions or [s.fraction])
    return evaluated + (scoring if s.uses_fraction and s.needs_calibration else 0.0)


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
        layers=cfg.layers or "", threshold=cfg.threshold,
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

    def show(self, text: str) -> None:
        """What is running now (harness/progress.py), after the bar's count."""
        self.progress.set_postfix_str(text)

    def handle(self, event) -> None:
        if isinstance(event, BaselineDone):
            self.progress.spend(f"baseline:{event.task}")
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
            self.progress.spend(event.cell.key)
            self.progress.update(1)
        elif isinstance(event, JobFailed):
            if event.cell is None:
                lost = len(self.baseline_cells.pop(event.task, [])) + len(self.waiting.pop(event.task, []))
                self.dead_tasks.add(event.task)
                self.progress.spend(f"baseline:{event.task}")
                self.fail(f"{event.task} unpruned baseline (no row for any cell of the task)", event.message)
                self.progress.update(lost)
            else:
                self.fail(event.cell.label(), event.message)
                self.progress.spend(event.cell.key)
                self.progress.update(1)
        elif isinstance(event, Progress):
            text = event.text if event.worker is None else f"worker {event.worker}: {event.text}"
            if event.line:
                self.say(text)
            else:
                self.progress.counting(event.left)
                self.show(text)
        elif isinstance(event, WorkerLost) and event.job is None:
            self.say(f"worker lost while starting: {event.reason}")
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
    strategies = resolve_strategies(cfg)
    cfg = dataclasses.replace(cfg, select_on=select_on(cfg, strategies))  # workers get it resolved
    executor = registry().get("executors", cfg.executor)(cfg.executor_options)  # imports its engine
    manager, loaded = task_lib.load(cfg.tasks, cfg.tasks_dir, cfg.data_dir)
    task_objs = {t: task_view(task, t) for name, task in loaded.items() for t in slots(cfg, name)}
    grid = list(cells(cfg, strategies))
    preflight.check_saved_cells(cfg, strategies, len(task_objs))  # a task group loads as several
    done = set() if cfg.force else leaderboard.done_keys(cfg.output)
    keys = grid_keys(cfg, loaded, strategies)

    progress = notes.CostBar(total=len(grid) * len(task_objs), desc="cells", unit="cell")
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
    # Seed by seed: every fold (and task) of seed 0 before any of seed 1, so a sweep cut short
    # leaves whole seeds, the only ones a folded comparison can use (harness/analysis.py)
    todo.sort(key=lambda c: c.seed)  # stable: grid order within a seed

    try:
        progress.set_postfix_str(f"starting {cfg.executor} workers")
        notes.listen(driver.handle)  # what runs now, from this process (harness/progress.py)
        executor.setup(cfg, len(tasks_todo) + len(todo))
        per_cell = {t: examples_evaluated(task_objs[t], cfg) for t in tasks_todo}
        # --test-on chosen keeps each (task, strategy, seed) whole: its worker picks the fraction
        units = cut_units(todo, executor.workers, lambda c: per_cell[c.task],
                          sum(per_cell.values()), halve=cfg.test_on == "all")
        # Baselines first: a cell's rows are written as soon as both it and its baseline are in.
        jobs = [BaselineJob(t) for t in tasks_todo] + units
        progress.plan({**{f"baseline:{t}": per_cell[t] for t in tasks_todo},
                       **{c.key: estimated_cost(cfg, driver.strategies[c.strategy], per_cell[c.task])
                          for c in todo}})
        for event in executor.launch(jobs):
            driver.handle(event)
    finally:
        notes.listen(None)
        executor.close()
        progress.close()
    if driver.failures:
        raise CellsFailed(driver.failures, driver.written, keys)
    return driver.written, keys

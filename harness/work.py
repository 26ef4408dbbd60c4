"""What an executor moves around: jobs (a task's baseline, a unit of cells) and the events
they produce, all picklable, plus how the grid is cut into units.

The cut keeps what is expensive where it is reused. A unit is the cells of one
(task, strategy, seed): every fraction of it reuses the calibration batches and the scores of
that (task, seed), so they are computed once per unit; the model and its SVDs are loaded and
computed once per worker and live across units. The unpruned baseline of a task is its own
job, evaluated once per sweep whatever the number of workers; its result only goes to the
driver, which sets every cell of the task against it, so no unit waits for it.

Units are then halved by fraction, the costliest first (cost: examples evaluated), while
one costs more than half a worker's share of the sweep or there are fewer units than
workers, and handed out costliest first. Without it one big task bounds the sweep: on the
reference arithmetic sweep, int_sum's eigen unit of seed 0 alone is 631 of 2,200
cell-seconds, so 8 workers could not finish before it; halved, the bound is one int_sum
cell (benchmarks/README.md). Each half recomputes its (task, seed) scores: one scoring
pass, a fraction of one evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.edits import Edit


@dataclass(frozen=True)
class Cell:
    """One pruned configuration of the grid: its row(s) are keyed by `key` and split."""

    task: str
    strategy: str
    seed: int
    fraction: float
    key: str  # config hash

    def label(self) -> str:
        return f"{self.task} {self.strategy} f={self.fraction:g} seed={self.seed}"


@dataclass(frozen=True)
class BaselineJob:
    """Evaluate the unpruned model on `task`'s splits (once per sweep)."""

    task: str
    attempt: int = 0

    def label(self) -> str:
        return f"{self.task} unpruned baseline"


@dataclass(frozen=True)
class WorkUnit:
    """Cells run in order by one worker with the scores of their (task, seed) shared."""

    id: int
    task: str
    cells: tuple[Cell, ...]
    attempt: int = 0  # 0: first try; the executor resubmits unfinished cells with attempt + 1

    def label(self) -> str:
        c = self.cells[0]
        fractions = ",".join(f"{x.fraction:g}" for x in self.cells)
        return f"{c.task} {c.strategy} seed={c.seed} f={fractions}"


Job = BaselineJob | WorkUnit


@dataclass
class BaselineDone:
    task: str
    results: dict  # split -> evaluate.EvalResult
    stamp: dict = field(default_factory=dict)  # the worker's: library versions, architecture
    general_nll: float = float("nan")  # the unpruned model's on the general-text probe


@dataclass
class CellDone:
    """A finished cell as the driver needs it to build rows; no tensors but the mask report."""

    cell: Cell
    config: dict
    results: dict  # split -> evaluate.EvalResult
    edit: Edit  # counts, unit, details and scoring time only (restore is a no-op here)
    calibration_size: int
    seconds: float
    stamp: dict  # library versions on the worker that ran it
    mask_report: dict | None = None


@dataclass
class JobFailed:
    """A deterministic error inside a job (bad plugin, NaN loss, out of memory): not retried.

    `cell` is None when the baseline failed (then every cell of `task` fails with it).
    """

    task: str
    cell: Cell | None
    message: str


@dataclass
class WorkerLost:
    """A worker died while running `job`; `retry` is the job of its unfinished cells, if any
    retry is left (None when the retries are spent). `job` is None when it died while starting
    (loading the model): then `reason` also says whether another worker is being started."""

    job: Job | None
    reason: str
    retry: Job | None


@dataclass
class Progress:
    """What a worker is doing now, for the driver's bar: "int_mult eigen-verified f=0.1
    seed=0 › measuring candidates 128/864" (harness/progress.py); with `line`, a line to keep
    above the bar (what a step will cost). `worker` numbers it among several; None with one."""

    text: str
    line: bool = False
    worker: int | None = None
    left: float | None = None  # seconds a count in the text expects to take still


Event = BaselineDone | CellDone | JobFailed | WorkerLost | Progress


@dataclass
class ExecutorOptions:
    """What `harness bench` passes every executor (an executor ignores what it cannot use)."""

    address: str | None = None
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0
    cpus_per_worker: float = 1.0
    max_workers: int | None = None  # None: as many as the cluster's resources allow
    max_retries: int = 2
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Runs jobs on workers and streams their events back, in completion order.

    `setup(config, n_jobs)` starts the workers (loading the model on each; Ray's go on
    starting while `launch` runs) and raises `HarnessError` for a bad input; `workers` then
    says how many there are, so the driver can cut units to fit. `launch(jobs)` yields every
    event of every job; `close()` releases the workers. Each worker builds a
    `harness.runner.CellRunner(config)` once and calls `runner.run(job)` for every job it is
    given.
    """

    workers: int

    def setup(self, config: Any, n_jobs: int) -> None: ...

    def launch(self, jobs: list[Job]): ...

    def close(self) -> None: ...


def cut_units(cells: list[Cell], workers: int, cost: Callable[[Cell], float] = lambda c: 1.0,
              baseline_cost: float = 0.0, halve: bool = True) -> list[WorkUnit]:
    """Group cells by (task, strategy, seed) in grid order; with several workers, halve the
    costliest unit by fraction while it exceeds half a worker's share of the whole sweep
    (the cells plus `baseline_cost`) or there are fewer units than workers; costliest first.
    `halve=False` (--test-on chosen) keeps every unit whole: its fractions are compared."""
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.task, c.strategy, c.seed), []).append(c)
    parts = list(groups.values())
    if workers <= 1:
        return [WorkUnit(i, p[0].task, tuple(p)) for i, p in enumerate(parts)]
    # Greedy list scheduling ends within (total / workers) + (the costliest job): halving every
    # unit above half a share bounds that at 1.5x the ideal, at the price of a scoring pass
    # per extra unit.
    share = (sum(map(cost, cells)) + baseline_cost) / workers
    while parts and halve:
        costliest = max(range(len(parts)), key=lambda i: sum(map(cost, parts[i])))
        whole = parts[costliest]
        if len(whole) < 2 or (sum(map(cost, whole)) <= share / 2 and len(parts) >= workers):
            break
        half = (len(whole) + 1) // 2
        parts[costliest:costliest + 1] = [whole[:half], whole[half:]]
    parts.sort(key=lambda p: -sum(map(cost, p)))  # stable: grid order among equals
    return [WorkUnit(i, p[0].task, tuple(p)) for i, p in enumerate(parts)]


def unfinished(job: Job, finished: set[str]) -> Job | None:
    """The part of `job` still to run after a worker died, with its attempt count raised."""
    if isinstance(job, BaselineJob):
        return BaselineJob(job.task, job.attempt + 1)
    rest = tuple(c for c in job.cells if c.key not in finished)
    return WorkUnit(job.id, job.task, rest, job.attempt + 1) if rest else None

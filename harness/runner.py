"""`CellRunner`: what one worker does, whatever the executor (in-process or a Ray actor).

It loads the model once, wraps it for lm-eval once, and keeps the SVDs, the calibration
batches and the scores of each (task, seed) for as long as it lives; each cell applies an
undoable Edit, evaluates and restores. A failure inside a cell (a plugin that raises, a NaN
loss, out of memory) is reported as that cell's `JobFailed` and the runner goes on with the
next cell, with the weights put back as they were before the cell.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from harness import calibration, evaluate, models, selection, spectral
from harness import tasks as task_lib
from harness.bench import BenchConfig, cell_config, eval_splits, resolve_strategies, versions
from harness.edits import Edit, snapshot
from harness.errors import HarnessError
from harness.export import mask_report
from harness.strategy import PruneRequest, spectral_apply
from harness.work import BaselineDone, BaselineJob, Cell, CellDone, Event, Job, JobFailed, WorkUnit


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def describe_failure(exc: BaseException, cfg: BenchConfig) -> str:
    """One line for a failed cell; out of memory names the options that lower memory."""
    if is_out_of_memory(exc):
        return (f"out of memory; lower --batch-size (now {cfg.batch_size}), --calibration-batch-size "
                f"(now {cfg.calibration_batch_size}) or --max-workers per GPU, or use --dtype bfloat16")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}".rstrip(": ")


class CellRunner:
    """One worker's state: model, lm-eval wrapper, SVD cache, (task, seed) caches."""

    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg
        self.strategies = {s.name: s for s in resolve_strategies(cfg)}
        self.manager, self.tasks = task_lib.load(cfg.tasks, cfg.tasks_dir, cfg.data_dir)
        self.model, self.tokenizer = models.load(cfg.model, cfg.device, cfg.dtype)
        self.lm = evaluate.wrap(self.model, self.tokenizer, cfg.batch_size)  # before pruning
        needs_matrices = any(s.uses_fraction for s in self.strategies.values())
        self.all_matrices = selection.candidates(self.model) if needs_matrices else []
        for s in self.strategies.values():  # a bad --matrices/--layers fails now, not later
            if s.uses_fraction:
                selection.select(self.all_matrices, s.matrices, cfg.layers)
        self.spectrum = spectral.SpectrumCache()
        self.stamp = versions()
        self.batches: dict[tuple[str, int], list] = {}
        self.caches: dict[tuple, dict] = {}

    def run(self, job: Job) -> Iterator[Event]:
        if isinstance(job, BaselineJob):
            try:
                task = self.tasks[job.task]
                results = {sp: evaluate.run(self.lm, task, sp, self.cfg.limit, self.manager)
                           for sp in eval_splits(task, self.cfg.select_on)}
                yield BaselineDone(job.task, results)
            except Exception as exc:
                yield JobFailed(job.task, None, describe_failure(exc, self.cfg))
            return
        assert isinstance(job, WorkUnit)
        for cell in job.cells:
            try:
                yield self.run_cell(cell)
            except Exception as exc:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                yield JobFailed(cell.task, cell, describe_failure(exc, self.cfg))

    def run_cell(self, cell: Cell) -> CellDone:
        cfg, s, task = self.cfg, self.strategies[cell.strategy], self.tasks[cell.task]
        config = cell_config(cfg, cell.task, s, cell.seed, cell.fraction)
        start = time.perf_counter()
        matrices = selection.select(self.all_matrices, s.matrices, cfg.layers)
        if s.needs_calibration and (cell.task, cell.seed) not in self.batches:
            self.batches[cell.task, cell.seed] = calibration.batches(
                task, self.tokenizer, cfg.calibration_size, cfg.calibration_batch_size, cell.seed)
        request = PruneRequest(
            model=self.model, matrices=matrices, fraction=cell.fraction, seed=cell.seed, strategy=s,
            batches=self.batches.get((cell.task, cell.seed), []) if s.needs_calibration else [],
            spectrum=self.spectrum, options={"threshold": cfg.threshold},
            cache=self.caches.setdefault((cell.task, tuple(m.id for m in matrices), cell.seed), {}),
            evaluate=lambda split, limit: evaluate.run(self.lm, task, split, limit, self.manager).value,
        )
        # The spectral path undoes a half-done prune itself; a strategy's own `apply` might not,
        # so its matrices are copied first (only then: the copy costs memory).
        guard = snapshot(m.module for m in matrices) if s.apply is not None else (lambda: None)
        try:
            edit = (s.apply or spectral_apply)(request)
            try:
                results = {sp: evaluate.run(self.lm, task, sp, cfg.limit, self.manager)
                           for sp in eval_splits(task, cfg.select_on)}
                if cfg.save is not None:
                    from harness.export import save_pruned

                    save_pruned(self.model, self.tokenizer, matrices, edit, cfg.save, meta=config)
            finally:
                edit.restore()
        except BaseException:
            guard()
            raise
        seconds = time.perf_counter() - start
        slim = Edit(n_pruned=edit.n_pruned, n_total=edit.n_total, unit=edit.unit,
                    scoring_seconds=edit.scoring_seconds, details=dict(edit.details))
        report = mask_report(edit, matrices, config) if edit.masks is not None else None
        return CellDone(cell, config, results, slim,
                        sum(b.n_examples for b in request.batches) if s.needs_calibration else 0,
                        seconds, self.stamp, report)

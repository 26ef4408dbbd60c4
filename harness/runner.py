"""`CellRunner`: what one worker does, whatever the executor (in-process or a Ray actor).

It loads the model once, wraps it for lm-eval once, and keeps the SVDs, the calibration
batches and the scores of each (task, seed) for as long as it lives; each cell applies an
undoable Edit, evaluates and restores. A failure inside a cell (a plugin that raises, a NaN
loss, out of memory) is reported as that cell's `JobFailed` and the runner goes on with the
next cell, with the weights put back as they were before the cell.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
import traceback
from collections.abc import Iterator

import torch

from harness import baseline_cache, calibration, evaluate, general, models, selection, spectral
from harness import progress as notes
from harness import tasks as task_lib
from harness.decompositions import basis_key
from harness.edits import Edit, snapshot
from harness.errors import HarnessError
from harness.export import mask_report, save_pruned
from harness.grid import (
    BenchConfig,
    cell_config,
    eval_splits,
    pick,
    resolve_strategies,
    select_on,
    task_view,
    tests_chosen_only,
    versions,
)
from harness.strategy import PruneRequest, spectral_apply
from harness.work import BaselineDone, BaselineJob, Cell, CellDone, Event, Job, JobFailed


def weights_digest(model: torch.nn.Module) -> str:
    """A hash of every parameter and buffer, bit for bit (one pass, a tensor at a time)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def describe_failure(exc: BaseException, cfg: BenchConfig) -> str:
    """One line for a failed cell; out of memory names the options that lower memory.
    With --debug the traceback goes to stderr as well (the sweep still goes on)."""
    if os.environ.get("EIGENHARNESS_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)
    if is_out_of_memory(exc):
        return (f"out of memory; lower --batch-size (now {cfg.batch_size}), --calibration-batch-size "
                f"(now {cfg.calibration_batch_size}) or --max-workers per GPU, or use --dtype bfloat16")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {text}".rstrip(": ")


class CellRunner:
    """One worker's state: model, lm-eval wrapper, SVD cache, (task, seed) caches."""

    def __init__(self, cfg: BenchConfig) -> None:
        strategies = resolve_strategies(cfg)
        self.cfg = cfg = dataclasses.replace(cfg, select_on=select_on(cfg, strategies))
        self.strategies = {s.name: s for s in strategies}
        self.manager, self.loaded = task_lib.load(list(dict.fromkeys([*cfg.tasks, *cfg.also_eval])),
                                                  cfg.tasks_dir, cfg.data_dir)
        self.views: dict[str, object] = {}
        self.needs_matrices = any(s.uses_fraction for s in self.strategies.values())
        self.loads = 0
        self._load()
        for s in self.strategies.values():  # a bad --matrices/--layers fails now, not later
            if s.uses_fraction:
                selection.select(self.all_matrices, s.matrices, cfg.layers)
        # which architecture plugin (or discovery) found the matrices goes into every row
        self.stamp = {**versions(), "architecture": selection.architecture(self.model),
                      "model_hash": self.digest[:12]}
        self.batches: dict[tuple[str, int], list] = {}

    def _load(self) -> None:
        """(Re)load the model and forget everything computed from its weights."""
        cfg = self.cfg
        with notes.stage("loading the model"):
            self.model, self.tokenizer = models.load(cfg.model, cfg.device, cfg.dtype)
            self.lm = evaluate.wrap(self.model, self.tokenizer, cfg.batch_size)  # before pruning
            self.digest = weights_digest(self.model)  # what a failed cell must leave behind
            self.spectrum = spectral.SpectrumCache()
            self.caches: dict[tuple, dict] = {}
            self.all_matrices = selection.candidates(self.model) if self.needs_matrices else []
        self.probe = general.probe_batch(self.tokenizer)
        self._general_base: float | None = None
        self.loads += 1

    def general_base(self) -> float:
        """The unpruned model's loss on the general-text probe (measured once per load, while
        no edit is applied: every cell restores before the next one starts)."""
        if self._general_base is None:
            self._general_base = general.nll(self.model, self.probe)
        return self._general_base

    def _recover(self) -> None:
        """After a failed cell: the weights must be the loaded ones, else reload the model
        (a scorer or strategy plugin that wrote to the weights and raised cannot undo it)."""
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if weights_digest(self.model) != self.digest:
            self._load()

    def task(self, slot: str):
        """The Task object of a slot (a task, or one fold of it), built once per worker."""
        if slot not in self.views:
            self.views[slot] = task_view(self.loaded[task_lib.parse_slot(slot)[0]], slot)
        return self.views[slot]

    def run(self, job: Job) -> Iterator[Event]:
        if isinstance(job, BaselineJob):
            try:
                splits = eval_splits(self.task(job.task), self.cfg.select_on)
                with notes.stage(job.label()):
                    event = BaselineDone(job.task, {sp: self.baseline(job.task, sp) for sp in splits},
                                         self.stamp, general_nll=self.general_base())
            except Exception as exc:
                event = JobFailed(job.task, None, describe_failure(exc, self.cfg))
            yield event
            return
        splits = eval_splits(self.task(job.task), self.cfg.select_on)
        if tests_chosen_only(self.cfg, splits, self.strategies[job.cells[0].strategy]):
            yield from self.run_chosen(job.cells)
            return
        for cell in job.cells:
            try:
                with notes.stage(cell.label()):
                    event = self.run_cell(cell)
            except Exception as exc:
                event = JobFailed(cell.task, cell, describe_failure(exc, self.cfg))
                self._recover()
            yield event

    def baseline(self, task_name: str, split: str) -> evaluate.EvalResult:
        """The unpruned model on `split`, from the on-disk cache when these exact weights were
        evaluated the same way before (`--force` evaluates again and refreshes the cache)."""
        cfg, task = self.cfg, self.task(task_name)
        key = baseline_cache.key(self.digest, task, split, cfg.limit, {
            "dtype": cfg.dtype, "device": str(self.model.device), "batch_size": cfg.batch_size,
            "data_dir": cfg.data_dir, **versions()})
        result = None if cfg.force else baseline_cache.load(key)
        if result is None:
            result = evaluate.run(self.lm, task, split, cfg.limit, self.manager)
            baseline_cache.save(key, result)
        return result

    def run_chosen(self, cells: tuple[Cell, ...]) -> Iterator[Event]:
        """--test-on chosen: every fraction on validation, then the edit of the one validation
        picks is applied again (its scores are cached: same mask, same weights) and evaluated
        on test. The unit's cells come back together at the end, so a worker lost half-way
        has the whole unit run again and the pick never sees part of it."""
        done: list[CellDone] = []
        failed: list[Event] = []
        for cell in cells:
            try:
                with notes.stage(cell.label()):
                    done.append(self.run_cell(cell, ["validation"]))
            except Exception as exc:
                failed.append(JobFailed(cell.task, cell, describe_failure(exc, self.cfg)))
                self._recover()
        yield from failed
        if not done:
            return
        best = done[pick([(d.results["validation"].value, d.cell.fraction) for d in done])]
        try:
            with notes.stage(best.cell.label()):
                tested = self.run_cell(best.cell, ["test"])
        except Exception as exc:
            done.remove(best)  # its unit stays unfinished: a re-run does it again
            yield JobFailed(best.cell.task, best.cell, describe_failure(exc, self.cfg))
            self._recover()
        else:
            best.results["test"] = tested.results["test"]
            best.edit.transfer = tested.edit.transfer
            best.seconds += tested.seconds
        yield from done

    def run_cell(self, cell: Cell, splits: list[str] | None = None) -> CellDone:
        cfg, s, task = self.cfg, self.strategies[cell.strategy], self.task(cell.task)
        config = cell_config(cfg, cell.task, s, cell.seed, cell.fraction)
        start = time.perf_counter()
        if s.answerer is not None:
            return self.run_reference(cell, config, splits, start)
        matrices = selection.select(self.all_matrices, s.matrices, cfg.layers)
        if s.needs_calibration and (cell.task, cell.seed) not in self.batches:
            self.batches[cell.task, cell.seed] = calibration.batches(
                task, self.tokenizer, cfg.calibration_size, cfg.calibration_batch_size, cell.seed)
        request = PruneRequest(
            model=self.model, matrices=matrices, fraction=cell.fraction, seed=cell.seed, strategy=s,
            batches=self.batches.get((cell.task, cell.seed), []) if s.needs_calibration else [],
            spectrum=self.spectrum,
            options={**s.options, "threshold": cfg.threshold, "eval_split": task_lib.eval_split(task)},
            cache=self.caches.setdefault((cell.task, tuple(m.id for m in matrices), cell.seed,
                                          *basis_key(s.decomposition, s.options)), {}),
            evaluate=lambda split, limit: evaluate.run(self.lm, task, split, limit, self.manager).value,
        )
        # The spectral path undoes a half-done prune itself; a strategy's own `apply` might not,
        # so its matrices are copied first (only then: the copy costs memory).
        guard = snapshot(m.module for m in matrices) if s.apply is not None else (lambda: None)
        svd_before = self.spectrum.seconds
        base_general = self.general_base()  # before the edit: the unpruned model's
        also = self.transfer_baselines(cell.task) if cfg.also_eval and splits != ["validation"] else {}
        try:
            edit = (s.apply or spectral_apply)(request)
            try:
                results = {sp: evaluate.run(self.lm, task, sp, cfg.limit, self.manager)
                           for sp in splits or eval_splits(task, cfg.select_on)}
                general_nll = general.nll(self.model, self.probe)
                transfer = self.transfer(also)
                if cfg.save is not None:
                    save_pruned(self.model, self.tokenizer, matrices, edit, cfg.save, meta=config)
            finally:
                edit.restore()
        except BaseException:
            guard()
            raise
        seconds = time.perf_counter() - start
        slim = Edit(n_pruned=edit.n_pruned, n_total=edit.n_total, unit=edit.unit,
                    scoring_seconds=edit.scoring_seconds, details=dict(edit.details),
                    spectrum=dict(edit.spectrum), svd_seconds=self.spectrum.seconds - svd_before,
                    general_nll=general_nll, general_nll_base=base_general, transfer=transfer)
        report = mask_report(edit, matrices, config) if edit.masks is not None else None
        return CellDone(cell, config, results, slim,
                        sum(b.n_examples for b in request.batches) if s.needs_calibration else 0,
                        seconds, self.stamp, report)

    def transfer_baselines(self, own: str) -> dict[str, evaluate.EvalResult]:
        """--also-eval: the unpruned model on each other task's reported split. Called before
        the cell's edit: a baseline evaluated with the edit applied would be the pruned model's,
        and the on-disk cache would keep it under the unpruned weights' hash."""
        others = [n for n in self.cfg.also_eval if n != task_lib.parse_slot(own)[0]]
        return {n: self.baseline(n, task_lib.eval_split(self.task(n))) for n in others}

    def transfer(self, bases: dict[str, evaluate.EvalResult]) -> dict[str, dict]:
        """--also-eval: the edited model on each other task's reported split, against the
        unpruned model there (`transfer_baselines`, taken before the edit)."""
        from harness.stats import paired_p_value

        out = {}
        for name, base in bases.items():
            task = self.task(name)
            r = evaluate.run(self.lm, task, base.split, self.cfg.limit, self.manager)
            split = base.split
            out[name] = {"split": split, "metric": r.metric, "value": r.value, "baseline": base.value,
                         "delta": r.value - base.value, "n": r.n, "nll": r.nll, "nll_delta": r.nll - base.nll,
                         "p_value": paired_p_value(base.per_example, r.per_example)}
        return out

    def run_reference(self, cell: Cell, config: dict, splits: list[str] | None, start: float) -> CellDone:
        """A model-free reference (the majority answer): its own LM answers every split. It has
        no likelihood of the target, so its NLL is left out rather than made up."""
        cfg, s, task = self.cfg, self.strategies[cell.strategy], self.task(cell.task)
        lm = s.answerer(task)
        results = {sp: dataclasses.replace(evaluate.run(lm, task, sp, cfg.limit, self.manager),
                                           nll_per_example=None)
                   for sp in splits or eval_splits(task, cfg.select_on)}
        return CellDone(cell, config, results, Edit(n_total=0), 0, time.perf_counter() - start, self.stamp)

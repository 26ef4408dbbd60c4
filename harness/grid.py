"""The grid of a sweep: its settings (`BenchConfig`: the axes, and the run settings of
harness/run_settings.py), its cells and what defines each one
(`cell_config`, hashed into the key that resumes a sweep), the splits a cell evaluates, and
the library versions stamped on its rows.

Both sides of a sweep read it: the driver (harness/bench.py), which cuts the grid into jobs
and writes the rows, and each worker (harness/runner.py), which runs cells and must key and
evaluate them exactly as the driver expects. Keeping it apart from both lets the worker import
the grid without importing the driver.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

from harness import __version__, leaderboard
from harness import tasks as task_lib
from harness.errors import HarnessError
from harness.plugins import registry
from harness.recipes import Strategy, option_value, variant_name
from harness.run_settings import (
    DEFAULT_OUTPUT,  # noqa: F401  (re-exported: callers import it from here)
    RunSettings,
    hashed,
    recipe_overrides,
)
from harness.work import ExecutorOptions


@dataclass
class BenchConfig(RunSettings):
    """A sweep: the grid's axes here; every other setting, with its flag, default and what it
    defines, in the table it inherits (harness/run_settings.py)."""

    model: str = "smollm2-135m"
    tasks: list[str] = field(default_factory=lambda: ["int_sum", "int_mult"])
    strategies: list[str] = field(default_factory=lambda: ["none"])
    fractions: list[float] | None = None  # None: each strategy's default
    seeds: list[int] = field(default_factory=lambda: [0])
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
        overrides = recipe_overrides(cfg) if s.uses_fraction else {}
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
    config = {"model": cfg.model, "task": name, "strategy": s.name, "fraction": fraction, "seed": seed,
              **hashed(cfg, s)}  # the run settings, as harness/run_settings.py says each is hashed
    if fold is not None:
        config.update(folds=folds, fold=fold)
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

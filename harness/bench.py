"""The grid runner behind `harness bench`: tasks x strategies x seeds x fractions.

The model is loaded once, wrapped for lm-eval once, its SVDs computed once; for each task the
unpruned baseline is evaluated once per split; each cell applies an undoable Edit, evaluates,
and restores, so nothing is reloaded. Rows are appended as soon as a cell finishes, and a
re-run skips cells whose (config hash, split) is already in the CSV.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness import __version__, calibration, evaluate, leaderboard, models, selection, spectral
from harness import tasks as task_lib
from harness.errors import HarnessError
from harness.export import mask_report, write_json
from harness.leaderboard import Row
from harness.plugins import registry
from harness.stats import paired_p_value
from harness.strategy import PruneRequest, Strategy, spectral_apply

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
    select_on: str = "validation"  # or "none": evaluate the eval split only
    calibration_size: int = 64
    calibration_batch_size: int = 16
    batch_size: int = 32
    matrices: str | None = None  # overrides each strategy's selector
    layers: str | None = None
    scorer: str | None = None
    pruner: str | None = None
    compensate: bool | None = None
    threshold: float | None = None
    device: str = "auto"
    dtype: str = "auto"
    tasks_dir: str | None = None
    data_dir: str | None = None
    force: bool = False
    save: Path | None = None


def resolve_strategies(cfg: BenchConfig) -> list[Strategy]:
    """The named strategies with the CLI's overrides applied; validates every name up front."""
    reg = registry()
    out = []
    for name in cfg.strategies:
        s = reg.get("strategies", name)
        overrides = {k: v for k, v in (("matrices", cfg.matrices), ("scorer", cfg.scorer),
                                       ("pruner", cfg.pruner), ("compensate", cfg.compensate))
                     if v is not None and s.uses_fraction}
        if s.apply is not None and not s.spectral_options:  # they mean nothing to a custom one
            overrides = {k: v for k, v in overrides.items() if k == "matrices"}
        if "scorer" in overrides or overrides.get("compensate"):
            overrides["seeded"] = True  # a calibration sample or a scorer the seed may move
        s = dataclasses.replace(s, **overrides)
        if s.scorer is not None:
            reg.get("scorers", s.scorer)
        if s.apply is None or s.spectral_options:
            reg.get("pruners", s.pruner)
        for spec in (s.matrices or "").split(","):
            if spec.strip():
                reg.get("selectors", spec.strip())
        out.append(s)
    for f in cfg.fractions or []:
        if not 0 <= f < 1:
            raise HarnessError(f"fraction {f} is outside [0, 1); give e.g. --fraction 0.05,0.2")
    if cfg.select_on not in ("validation", "none"):
        raise HarnessError(f"unknown --select-on '{cfg.select_on}'; choose from: validation, none")
    return out


def versions() -> dict[str, str]:
    import lm_eval
    import transformers

    return {"harness_version": __version__, "lm_eval_version": lm_eval.__version__,
            "transformers_version": transformers.__version__, "torch_version": torch.__version__}


def eval_splits(task, select_on: str) -> list[str]:
    final = task_lib.eval_split(task)
    if select_on == "validation" and final == "test" and task.has_validation_docs():
        return ["validation", "test"]
    return [final]


def cells(cfg: BenchConfig, strategies: list[Strategy]):
    """(strategy, seed, fraction) in run order; the baseline is one cell whatever the grid,
    and a strategy the seed cannot change runs with the first seed only."""
    for s in strategies:
        if not s.uses_fraction:
            yield s, cfg.seeds[0], 0.0
            continue
        for seed in cfg.seeds if s.seeded else cfg.seeds[:1]:
            for fraction in cfg.fractions or [s.fraction]:
                yield s, seed, fraction


def cell_config(cfg: BenchConfig, task: str, s: Strategy, seed: int, fraction: float) -> dict:
    return {"model": cfg.model, "task": task, "strategy": s.name, "matrices": s.matrices,
            "layers": cfg.layers, "scorer": s.scorer, "pruner": s.pruner,
            "compensate": s.compensate, "threshold": cfg.threshold, "fraction": fraction,
            "seed": seed, "limit": cfg.limit, "calibration_size": cfg.calibration_size,
            "calibration_batch_size": cfg.calibration_batch_size, "dtype": cfg.dtype}


def grid_keys(cfg: BenchConfig, task_names, strategies: list[Strategy]) -> set[str]:
    """Config hashes of every cell of the grid (to show finished cells next to new ones)."""
    return {leaderboard.config_hash(cell_config(cfg, t, *c))
            for t in task_names for c in cells(cfg, strategies)}


def make_row(cfg: BenchConfig, config: dict, key: str, result, base, edit, s: Strategy,
             request: PruneRequest, seconds: float, stamp: dict) -> Row:
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
        pruner=s.pruner if s.apply is None or s.spectral_options else "",
        compensate=s.compensate and (s.apply is None or s.spectral_options),
        calibration_size=sum(b.n_examples for b in request.batches) if s.needs_calibration else 0,
        scoring_seconds=round(edit.scoring_seconds, 3), eval_seconds=round(result.seconds, 3),
        config_hash=key, details=json.dumps(edit.details) if edit.details else "", **stamp,
        **edit.spectrum,
    )


def run(cfg: BenchConfig) -> tuple[list[Row], set[str]]:
    """Run the grid; return the rows written now and the config hashes of the whole grid."""
    from tqdm.auto import tqdm

    strategies = resolve_strategies(cfg)
    manager, task_objs = task_lib.load(cfg.tasks, cfg.tasks_dir, cfg.data_dir)
    grid = list(cells(cfg, strategies))
    pruning_cells = [c for c in grid if c[0].uses_fraction]
    if cfg.save is not None and len(pruning_cells) * len(task_objs) != 1:
        raise HarnessError("--save needs exactly one pruned cell (one task, strategy, fraction, seed)")
    done = set() if cfg.force else leaderboard.done_keys(cfg.output)

    model, tokenizer = models.load(cfg.model, cfg.device, cfg.dtype)
    lm = evaluate.wrap(model, tokenizer, cfg.batch_size)  # wraps (and re-ties) before pruning
    needs_matrices = any(s.uses_fraction for s in strategies)
    all_matrices = selection.candidates(model) if needs_matrices else []
    for s in strategies:  # a bad --matrices/--layers fails now, not after the baseline
        if s.uses_fraction:
            selection.select(all_matrices, s.matrices, cfg.layers)
    spectrum = spectral.SpectrumCache()
    stamp = versions()
    written: list[Row] = []
    masks_dir = cfg.output.parent / (cfg.output.stem + "_masks")

    progress = tqdm(total=len(grid) * len(task_objs), desc="cells", unit="cell")
    for task_name, task in task_objs.items():
        splits = eval_splits(task, cfg.select_on)
        todo = [c for c in grid if any(
            (leaderboard.config_hash(cell_config(cfg, task_name, *c)), sp) not in done
            for sp in splits)]
        progress.update(len(grid) - len(todo))
        if not todo:
            continue
        progress.set_postfix_str(f"{task_name}: unpruned baseline")
        baseline = {sp: evaluate.run(lm, task, sp, cfg.limit, manager) for sp in splits}
        batches: dict[int, list] = {}
        caches: dict[tuple, dict] = {}
        for s, seed, fraction in todo:
            progress.set_postfix_str(f"{task_name} {s.name} f={fraction:g} seed={seed}")
            config = cell_config(cfg, task_name, s, seed, fraction)
            key = leaderboard.config_hash(config)
            start = time.perf_counter()
            matrices = selection.select(all_matrices, s.matrices, cfg.layers) if s.uses_fraction else []
            if s.needs_calibration and seed not in batches:
                batches[seed] = calibration.batches(
                    task, tokenizer, cfg.calibration_size, cfg.calibration_batch_size, seed)
            request = PruneRequest(
                model=model, matrices=matrices, fraction=fraction, seed=seed, strategy=s,
                batches=batches.get(seed, []), spectrum=spectrum,
                options={"threshold": cfg.threshold, "eval_split": task_lib.eval_split(task)},
                cache=caches.setdefault((tuple(m.id for m in matrices), seed), {}),
                evaluate=lambda split, limit, _t=task: evaluate.run(lm, _t, split, limit, manager).value,
            )
            edit = (s.apply or spectral_apply)(request)
            try:
                results = baseline if not s.uses_fraction else {
                    sp: evaluate.run(lm, task, sp, cfg.limit, manager) for sp in splits}
                if cfg.save is not None and s.uses_fraction:
                    from harness.export import save_pruned

                    save_pruned(model, tokenizer, matrices, edit, cfg.save, meta=config)
            finally:
                edit.restore()
            seconds = time.perf_counter() - start
            rows = [make_row(cfg, config, key, r, baseline[sp], edit, s, request, seconds, stamp)
                    for sp, r in results.items() if (key, sp) not in done]
            if edit.masks is not None:
                write_json(masks_dir / f"{key}.json", mask_report(edit, matrices, config))
            leaderboard.append(cfg.output, rows)
            written.extend(rows)
            progress.update(1)
    progress.close()
    return written, grid_keys(cfg, task_objs, strategies)

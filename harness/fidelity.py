"""`harness fidelity`: when to trust a scorer, measured per matrix kind.

A scorer is a linear estimate of how the task loss moves when a singular direction goes.
Here a seeded sample of directions per matrix kind is removed for real, one at a time, on
calibration data (batched as rank-1 output changes, see harness/removal.py), and each
scorer's prediction is set next to the measured loss change: one CSV row per direction, the
Spearman rank correlation per kind and scorer (ranking is all a pruner uses), and a scatter
plot. On SmolLM2, gradient scores over all kinds picked large-σ directions that broke the
model; a low or negative correlation on a kind says so before a sweep does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from harness import atomic, calibration, models, objective_loss, removal, selection
from harness import tasks as task_lib
from harness.errors import HarnessError
from harness.matrices import Matrix
from harness.plugins import registry
from harness.report import _pyplot
from harness.run_settings import SETTING
from harness.scoring import ScoringContext
from harness.spectral import Factors, SpectrumCache
from harness.strategy import run_scorer


@dataclass
class FidelityConfig:
    model: str = "smollm2-135m"
    task: str = "int_mult"
    scorers: list[str] = field(default_factory=lambda: ["attribution", "gradient", "mean-ablation"])
    matrices: str = "all"
    layers: str | None = None
    sample: int = 32  # directions per matrix kind
    calibration_size: int = SETTING["calibration_size"].default  # as `harness bench` calibrates
    calibration_batch_size: int = SETTING["calibration_batch_size"].default
    measure_examples: int | None = 32  # held-in subset of the calibration data (None: all)
    compensate: bool = True  # measure mean ablation (what eigen does) or zeroing
    objective: str = "ce"  # what scores estimate and removals measure (harness/objective_loss.py)
    seed: int = 0
    max_rows: int = 128
    out_dir: Path = Path("leaderboard") / "fidelity"
    device: str = "auto"
    dtype: str = "auto"
    tasks_dir: str | None = None
    data_dir: str | None = None


def sample_directions(matrices: list[Matrix], factors: dict[str, Factors], per_kind: int,
                      seed: int) -> dict[str, torch.Tensor]:
    """`per_kind` directions of each kind, uniform over all its matrices, heads and indices."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for kind in dict.fromkeys(m.kind for m in matrices):
        ms = [m for m in matrices if m.kind == kind]
        sizes = torch.tensor([factors[m.id].S.numel() for m in ms])
        flat = torch.randperm(int(sizes.sum()), generator=gen)[:per_kind].sort().values
        which = torch.bucketize(flat, sizes.cumsum(0), right=True)  # matrix of each pick
        offset = flat - (sizes.cumsum(0) - sizes)[which]
        for n, m in enumerate(ms):
            local = offset[which == n]
            if local.numel():
                rank = factors[m.id].rank
                out[m.id] = torch.stack([local // rank, local % rank], 1)
    return out


def spearman(x, y) -> float:
    """Spearman's rank correlation (average ranks for ties); nan when either side is constant."""
    rx = pd.Series(np.asarray(x, dtype=float)).rank().to_numpy()
    ry = pd.Series(np.asarray(y, dtype=float)).rank().to_numpy()
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def compare(model, matrices: list[Matrix], factors: dict[str, Factors], batches, scorers: list[str],
            sample: dict[str, torch.Tensor], compensate: bool = True,
            measure_examples: int | None = None, max_rows: int = 128, seed: int = 0,
            objective: str = "ce") -> pd.DataFrame:
    """One row per sampled direction: where it is, σ, the measured loss change, every score."""
    ctx = ScoringContext(model, matrices, factors, batches, seed, objective=objective)
    means = ctx.input_means() if compensate else None
    measured = removal.measure(model, matrices, factors, removal.subset(batches, measure_examples),
                               sample, means, max_rows, objective_loss.get(objective))
    scores = {name: run_scorer(name, ctx)[0] for name in scorers}
    by_id = {m.id: m for m in matrices}
    frames = []
    for mid, hj in sample.items():
        m, h, j = by_id[mid], hj[:, 0].cpu(), hj[:, 1].cpu()
        frame = pd.DataFrame({"kind": m.kind, "matrix": mid, "layer": m.layer, "head": h.numpy(),
                              "index": j.numpy(), "sigma": factors[mid].S.cpu()[h, j].double().numpy(),
                              "measured": measured.delta[mid].numpy()})
        for name, s in scores.items():
            frame[name] = s[mid].cpu()[h, j].double().numpy()
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    df.attrs["base_loss"] = measured.base_loss
    return df


def summarise(df: pd.DataFrame, scorers: list[str]) -> pd.DataFrame:
    """Spearman per (kind, scorer), and over all kinds together."""
    rows = []
    for kind, part in [*df.groupby("kind", sort=False), ("all", df)]:
        for name in scorers:
            rows.append({"kind": kind, "scorer": name, "n": len(part),
                         "spearman": spearman(part[name], part["measured"])})
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, summary: pd.DataFrame, scorers: list[str], path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(scorers), figsize=(4.5 * len(scorers), 4), squeeze=False)
    for ax, name in zip(axes[0], scorers, strict=True):
        for kind, part in df.groupby("kind", sort=False):
            rho = summary[(summary.kind == kind) & (summary.scorer == name)].spearman.iloc[0]
            ax.scatter(part[name], part["measured"], s=12, alpha=0.7, label=f"{kind} (ρ={rho:.2f})")
        ax.set_xscale("symlog", linthresh=1e-6)
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.axhline(0, color="grey", lw=0.5)
        ax.tick_params(axis="x", labelrotation=45)
        ax.set_xlabel(f"{name} score (predicted)")
        ax.set_ylabel("measured loss change")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic.replacing(path) as f:
        fig.savefig(f, dpi=120, format="png")
    plt.close(fig)


def run(cfg: FidelityConfig) -> tuple[pd.DataFrame, list[Path]]:
    """Load, sample, measure, score; write <task>_directions.csv, <task>_summary.csv, <task>.png."""
    if min(cfg.sample, cfg.max_rows, cfg.calibration_batch_size, cfg.measure_examples or 1) < 1 \
            or cfg.calibration_size < 2:
        raise HarnessError("--sample, --max-rows, --calibration-batch-size and --measure-examples "
                           "must be >= 1, --calibration-size >= 2")
    for name in cfg.scorers:
        registry().get("scorers", name)
    objective_loss.get(cfg.objective)
    _, tasks = task_lib.load([cfg.task], cfg.tasks_dir, cfg.data_dir)
    task = next(iter(tasks.values()))
    model, tokenizer = models.load(cfg.model, cfg.device, cfg.dtype)
    matrices = selection.select(selection.candidates(model), cfg.matrices, cfg.layers)
    factors = SpectrumCache().get(matrices)
    batches = calibration.batches(task, tokenizer, cfg.calibration_size, cfg.calibration_batch_size,
                                  cfg.seed)
    sample = sample_directions(matrices, factors, cfg.sample, cfg.seed)
    df = compare(model, matrices, factors, batches, cfg.scorers, sample, cfg.compensate,
                 cfg.measure_examples, cfg.max_rows, cfg.seed, cfg.objective)
    summary = summarise(df, cfg.scorers)
    stem = cfg.out_dir / cfg.task
    paths = [stem.with_name(f"{cfg.task}_directions.csv"), stem.with_name(f"{cfg.task}_summary.csv"),
             stem.with_name(f"{cfg.task}.png")]
    for frame, path in ((df, paths[0]), (summary, paths[1])):
        with atomic.replacing(path) as f:
            f.write(frame.to_csv(index=False).encode())
    plot(df, summary, cfg.scorers, paths[2])
    return summary, paths

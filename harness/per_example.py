"""Per-example results of every evaluated cell, kept beside the results CSV.

A leaderboard row holds means; comparing two strategies *on the same examples* (a paired test
against the best equal-budget baseline, not only against the unpruned model) needs each
example's outcome. `harness bench` writes one small compressed file per (cell, split) before
it appends the row, so every row in a CSV has its examples on disk:
`<results>_examples/<config_hash>.<split>.npz` with `metric` and `nll`, ordered by doc_id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.atomic import replacing


def directory(results_csv: str | Path) -> Path:
    results_csv = Path(results_csv)
    return results_csv.parent / (results_csv.stem + "_examples")


def path(results_csv: str | Path, config_hash: str, split: str) -> Path:
    return directory(results_csv) / f"{config_hash}.{split}.npz"


def save(results_csv: str | Path, config_hash: str, split: str, metric: np.ndarray,
         nll: np.ndarray | None) -> Path:
    """Write atomically (temporary name, then rename): a crash never leaves a torn file."""
    target = path(results_csv, config_hash, split)
    nll = np.full(len(metric), np.nan) if nll is None else nll
    with replacing(target) as f:
        np.savez_compressed(f, metric=np.asarray(metric, np.float32), nll=np.asarray(nll, np.float32))
    return target


def load(results_csv: str | Path, config_hash: str, split: str) -> dict[str, np.ndarray] | None:
    """{'metric': ..., 'nll': ...} of one cell and split, or None when it was never written
    (rows from before per-example files existed)."""
    target = path(results_csv, config_hash, split)
    if not target.is_file():
        return None
    with np.load(target) as data:
        return {"metric": data["metric"].astype(float), "nll": data["nll"].astype(float)}

"""`Row`: one leaderboard line, and crash-safe appends to the results CSV.

Each append rewrites the file to a temporary name and renames it over the old one, so a crash
or Ctrl-C at any moment leaves either the old or the new CSV, never a torn one. Results CSVs
are small (one row per evaluated cell), so the rewrite costs nothing next to an evaluation.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Row:
    model: str
    task: str
    split: str
    strategy: str
    fraction: float
    metric: str
    value: float
    stderr: float
    n: int
    seed: int
    seconds: float  # the whole cell: pruning + scoring + evaluation
    harness_version: str
    timestamp: str
    delta: float = float("nan")  # value minus the unpruned model's on the same split
    p_value: float = float("nan")  # paired test against the unpruned model, same examples
    n_pruned: int = 0
    n_total: int = 0
    unit: str = ""
    matrices: str = ""
    scorer: str = ""
    pruner: str = ""
    compensate: bool = False
    calibration_size: int = 0
    scoring_seconds: float = 0.0
    eval_seconds: float = 0.0
    config_hash: str = ""
    lm_eval_version: str = ""
    transformers_version: str = ""
    torch_version: str = ""
    details: str = ""
    # storage and spectrum of a spectral edit (harness.spectral.spectrum_stats)
    params_factored: int = 0
    params_dense: int = 0
    energy_kept: float = float("nan")
    effective_rank: float = float("nan")


COLUMNS = [f.name for f in fields(Row)]


def config_hash(config: dict) -> str:
    """A short stable hash of everything that defines a cell (used to resume sweeps)."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def done_keys(path: str | Path) -> set[tuple[str, str]]:
    """(config_hash, split) of every row already in the CSV."""
    return {(r.get("config_hash", ""), r.get("split", "")) for r in read_rows(path)}


def append(path: str | Path, rows: list[Row]) -> None:
    """Add rows to the CSV atomically; a row replaces an older one of the same cell and split
    (what `--force` re-runs), foreign columns are kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new_keys = {(r.config_hash, r.split) for r in rows}
    existing = [r for r in read_rows(path) if (r.get("config_hash"), r.get("split")) not in new_keys]
    columns = list(COLUMNS)
    for r in existing:
        columns += [k for k in r if k not in columns and k is not None]
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make a shared results file private
    try:
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(existing)
            writer.writerows(asdict(r) for r in rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

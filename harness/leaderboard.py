"""`Row`: one leaderboard line, and crash-safe appends to the results CSV.

Each append rewrites the file to a temporary name and renames it over the old one, so a crash
or Ctrl-C at any moment leaves either the old or the new CSV, never a torn one. Results CSVs
are small (one row per evaluated cell), so the rewrite costs nothing next to an evaluation.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from harness import atomic
from harness.errors import HarnessError
from harness.run_settings import SETTING


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
    nll: float = float("nan")  # mean NLL of the target on the same examples (nats)
    nll_delta: float = float("nan")  # nll minus the unpruned model's on the same split
    architecture: str = ""  # "llama (registered)" or "mistral (discovered)"
    # storage and spectrum of a spectral edit (harness.spectral.spectrum_stats)
    params_factored: int = 0
    params_dense: int = 0
    energy_kept: float = float("nan")
    effective_rank: float = float("nan")
    model_hash: str = ""  # sha256 of the loaded weights, bit for bit (first 12 hex digits)
    svd_seconds: float = 0.0  # SVDs this cell computed (kept out of scoring_seconds)
    objective: str = ""  # what a spectral strategy's scores estimate (ce, margin, ...)
    # in the cell's config hash, so a row's command must give it
    calibration_batch_size: int = SETTING["calibration_batch_size"].default
    folds: int = 0  # K of `--folds K` (0: the task's own split, as the paper)
    fold: int = -1  # which fold was the test split (-1: none)
    limit: int | None = None  # --limit (None: every example); rows of different limits never mix
    dtype: str = ""  # --dtype as given (auto, float32, ...)
    # "baseline" or "method", as the strategy's plugin declared it when the row was written:
    # a board built where that plugin is not installed still knows what a method must beat
    role: str = ""
    decomposition: str = ""  # the basis of a spectral strategy's singular values (plain, whitened...)
    # mean NLL per token of a fixed general-text probe (harness/general.py) with the row's
    # weights, and its change from the unpruned model's: what pruning for the task costs elsewhere
    general_nll: float = float("nan")
    general_nll_delta: float = float("nan")
    transfer: str = ""  # --also-eval: JSON {task: {metric, value, baseline, delta, p_value, n, nll}}
    # in the cell's config hash too: recorded so the board's command gives them back
    layers: str = ""  # --layers as given ("": every layer)
    threshold: float | None = None  # --threshold (None: not given)


COLUMNS = [f.name for f in fields(Row)]


def config_hash(config: dict) -> str:
    """A short stable hash of everything that defines a cell (used to resume sweeps)."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# Columns every results CSV has had since the first version; a file without them is not one.
REQUIRED = ("model", "task", "split", "strategy", "value", "config_hash")


@dataclass
class ResultsFile:
    """A results CSV as read: its complete rows, and a torn last line if a crash cut one."""

    path: Path
    rows: list[dict]
    torn: str = ""  # the raw text of a truncated last row ("" when the file is whole)

    def torn_note(self) -> str:
        return (f"{self.path}: its last line is truncated ({len(self.torn)} characters, "
                f"not a whole row); the {len(self.rows)} complete row(s) are used")


def scan(path: str | Path) -> ResultsFile:
    """Read a results CSV strictly: a file that is not one is an error naming it; a truncated
    last line (a crash mid-write by another tool, a copy cut short) is returned apart, so the
    complete rows are kept and nothing is silently rewritten with blanks."""
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise HarnessError(f"results file '{path}' is not a file")
        return ResultsFile(path, [])
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise HarnessError(f"'{path}' is not a results file (not text); give another --output "
                           "or move it away") from None
    if not text.strip():
        return ResultsFile(path, [])
    torn = ""
    if not text.endswith("\n"):
        cut = text.rfind("\n") + 1
        text, torn = text[:cut], text[cut:]
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise HarnessError(f"'{path}' is not a readable results CSV: {exc}") from None
    header = records[0] if records else torn.split(",")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise HarnessError(
            f"'{path}' is not a results file: its header lacks {', '.join(missing)}; "
            "give another --output or move it away")
    rows = []
    for number, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            if number == len(records) and len(record) < len(header) and not torn:
                torn = ",".join(record)  # cut exactly at a field boundary
                continue
            raise HarnessError(
                f"'{path}' is damaged: line {number} has {len(record)} fields, its header "
                f"{len(header)}; repair or move it away (nothing was changed)")
        rows.append(dict(zip(header, record, strict=True)))
    return ResultsFile(path, rows, torn)


def set_aside_torn(path: str | Path) -> str | None:
    """Move a truncated last line into `<name>.torn` beside the CSV and rewrite the CSV
    without it (atomically); the one-line note to show, or None when the file was whole."""
    results = scan(path)
    if not results.torn:
        return None
    side = results.path.with_name(results.path.name + ".torn")
    with open(side, "a") as f:
        f.write(results.torn.rstrip("\r\n") + "\n")
    columns = list(COLUMNS)
    for r in results.rows:
        columns += [k for k in r if k not in columns]
    _write(results.path, columns, results.rows, [])
    return (f"{results.path} ended in a truncated line; moved it to {side} and kept the "
            f"{len(results.rows)} complete row(s)")


def read_rows(path: str | Path) -> list[dict]:
    """The complete rows of a results CSV (an error when the file is not one)."""
    return scan(path).rows


def done_keys(path: str | Path) -> set[tuple[str, str]]:
    """(config_hash, split) of every row already in the CSV."""
    return {(r.get("config_hash", ""), r.get("split", "")) for r in read_rows(path)}


def append(path: str | Path, rows: list[Row]) -> None:
    """Add rows to the CSV atomically; a row replaces an older one of the same cell and split
    (what `--force` re-runs), foreign columns are kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.exclusive(path):  # another sweep appending to the same file waits its turn
        set_aside_torn(path)  # a torn last line is kept in a side file, never rewritten as blanks
        new_keys = {(r.config_hash, r.split) for r in rows}
        existing = [r for r in read_rows(path) if (r.get("config_hash"), r.get("split")) not in new_keys]
        columns = list(COLUMNS)
        for r in existing:
            columns += [k for k in r if k not in columns and k is not None]
        _write(path, columns, existing, rows)


def _write(path: Path, columns: list[str], existing: list[dict], rows: list[Row]) -> None:
    """Write the whole CSV under a temporary name and rename it over the old one."""
    with atomic.replacing(path) as raw:
        f = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(existing)
        writer.writerows(asdict(r) for r in rows)
        f.flush()
        f.detach()  # the raw file stays open for replacing() to sync and rename

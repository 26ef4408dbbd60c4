"""SuperGLUE CB, COPA and RTE for pruning (train) and evaluation (SuperGLUE validation).

Data: with `--data-dir DIR` (or `EIGENHARNESS_DATA_DIR`) the original SuperGLUE jsonl files
`DIR/{cb,copa,rte}/{train,val}.jsonl` are read, string labels mapped to lm-eval's integers
(the hub dataset's label order). Without it the hub dataset `aps/super_glue` is used, which
needs a network; offline that fails at once with an error naming the option.

Splits, as the harness names them:
  train       the first 80% of SuperGLUE train (seeded shuffle, 42): scoring
  validation  the held-out 20% of SuperGLUE train: choosing the pruning fraction
  test        SuperGLUE validation: what the paper reports (test labels are not public)
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

LABELS = {  # lm-eval / hub integer order
    "cb": ["entailment", "contradiction", "neutral"],
    "rte": ["entailment", "not_entailment"],
}
SEED = 42
HELD_OUT = 0.2


class DataUnavailable(RuntimeError):
    pass


def read_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def normalise(name: str, row: dict) -> dict:
    row = dict(row)
    if name in LABELS and isinstance(row.get("label"), str):
        row["label"] = LABELS[name].index(row["label"])
    return row


def local_splits(name: str, data_dir: Path) -> tuple[list[dict], list[dict]]:
    folder = data_dir / name
    files = [folder / "train.jsonl", folder / "val.jsonl"]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise DataUnavailable(f"SuperGLUE {name}: {missing[0]} is missing; --data-dir must hold "
                              f"{{cb,copa,rte}}/{{train,val}}.jsonl")
    return tuple([normalise(name, r) for r in read_jsonl(p)] for p in files)


def hub_splits(name: str) -> tuple[list[dict], list[dict]]:
    from harness.models import hub_reachable

    if not hub_reachable():
        raise DataUnavailable(
            f"SuperGLUE {name}: no local data and the hub is unreachable; pass --data-dir DIR "
            f"(or set EIGENHARNESS_DATA_DIR) with {name}/train.jsonl and {name}/val.jsonl"
        )
    import datasets

    ds = datasets.load_dataset("aps/super_glue", name)
    return list(ds["train"]), list(ds["validation"])


def splits(name: str, data_dir: str | None = None) -> dict[str, list[dict]]:
    data_dir = data_dir or os.environ.get("EIGENHARNESS_DATA_DIR")
    train, val = local_splits(name, Path(data_dir)) if data_dir else hub_splits(name)
    order = list(range(len(train)))
    random.Random(SEED).shuffle(order)
    n_held = int(len(train) * HELD_OUT)
    return {"train": [train[i] for i in sorted(order[n_held:])],
            "validation": [train[i] for i in sorted(order[:n_held])],
            "test": val}


def _dataset(name: str, **metadata):
    import datasets

    return datasets.DatasetDict({k: datasets.Dataset.from_list(v)
                                 for k, v in splits(name, metadata.get("data_dir")).items()})


def cb(**metadata):
    return _dataset("cb", **metadata)


def copa(**metadata):
    return _dataset("copa", **metadata)


def rte(**metadata):
    return _dataset("rte", **metadata)

"""The unpruned model's results, kept on disk across sweeps.

Every `harness bench` sets its cells against the unpruned model on the same examples; that
baseline depends only on the weights, the task and how it is evaluated, so evaluating it again
in each run is pure waste. One file per (weights, task config, split, limit, dtype, device,
batch size, library versions) under `$EIGENHARNESS_HOME/baselines/`, written atomically.
The key starts from a hash of the weights bit for bit, so nothing but this exact model can
hit it: pruned variants never go through here (only `BaselineJob` does).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

from harness import models
from harness.atomic import replacing


def directory() -> Path:
    """`$EIGENHARNESS_BASELINES` if set (tests point it at a temporary folder), else
    `$EIGENHARNESS_HOME/baselines`."""
    env = os.environ.get("EIGENHARNESS_BASELINES")
    return Path(env).expanduser() if env else models.home() / "baselines"


def task_fingerprint(task) -> str:
    """The task's lm-eval config as a stable string (where the YAML was read from left out:
    the same task in two checkouts is the same task)."""
    config = task.dump_config() if hasattr(task, "dump_config") else task.config.to_dict()
    config = dict(config)
    meta = dict(config.get("metadata") or {})
    meta.pop("config_source", None)
    config["metadata"] = meta
    return json.dumps(config, sort_keys=True, default=str)


def key(weights: str, task, split: str, limit: int | None, extra: dict) -> str:
    """sha256 of everything the baseline's numbers depend on."""
    blob = json.dumps({"weights": weights, "task": task_fingerprint(task), "split": split,
                       "limit": limit, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load(cache_key: str):
    """The cached EvalResult, or None (a missing or unreadable file is a miss, never an error)."""
    path = directory() / f"{cache_key}.pkl"
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return None


def save(cache_key: str, result) -> None:
    """Write under a temporary name and rename: a crash leaves the old file or none."""
    with replacing(directory() / f"{cache_key}.pkl") as f:
        pickle.dump(result, f)

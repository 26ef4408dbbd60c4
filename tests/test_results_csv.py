"""The results CSV (harness/leaderboard.py): appends that a crash cannot tear."""


import pandas as pd
import pytest

from harness import atomic, leaderboard


def _row(**kw):
    base = dict(model="m", task="t", split="test", strategy="s", fraction=0.1, metric="acc", value=0.5,
                stderr=0.1, n=10, seed=0, seconds=1.0, harness_version="0", timestamp="now")
    return leaderboard.Row(**{**base, **kw})


def test_leaderboard_append_is_atomic_and_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    leaderboard.append(path, [_row(config_hash="a")])
    leaderboard.append(path, [_row(config_hash="b", split="validation")])
    assert leaderboard.done_keys(path) == {("a", "test"), ("b", "validation")}

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        leaderboard.append(path, [_row(config_hash="c")])
    df = pd.read_csv(path)
    assert list(df.config_hash) == ["a", "b"] and list(df.columns) == leaderboard.COLUMNS
    # no temp file left behind (the lock file stays: removing it could let a waiting writer
    # lock a file no one else sees)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.csv.lock"]

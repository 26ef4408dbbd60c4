"""Run settings: a sweep is resumed by its cells' config hashes, so the hash of every cell ever
written must never move. The hashes below were read from the committed reference CSVs (and,
for overrides no reference run used, computed by the code as it was) before the run settings
were gathered into one table (harness/run_settings.py)."""

from __future__ import annotations

import shlex

import pytest

from harness import bench, leaderboard
from harness import tasks as task_lib

QWEN = "qwen2.5-coder-0.5b"
# (BenchConfig settings, task slot, strategy, seed, fraction) -> config hash
PINNED = [
    # leaderboard/reference/arithmetic.csv
    ({}, "int_mult", "eigen", 0, 0.05, "33f25639a9179ac6"),
    ({}, "int_mult", "none", 0, 0.0, "8daadb5a2f372cf1"),
    ({}, "int_mult", "eigen-nocomp", 0, 0.05, "991d58a6e3113e15"),
    # qwen_superglue.csv: scored in batches of 4
    ({"model": QWEN, "calibration_batch_size": 4}, "rte_eigen", "eigen", 0, 0.2, "3cf713126a7efab1"),
    # qwen_arithmetic.csv: a strategy's own options (--option), a variant label
    ({"model": QWEN, "options": {"verify_examples": "8", "verify_multiple": "1.5"}}, "int_mult",
     "eigen-verified", 0, 0.05, "7a914af4368224d4"),
    # folds_arithmetic.csv: fold 0 of 5
    ({"folds": 5}, task_lib.slot("int_mult", 0, 5), "eigen", 0, 0.2, "40e05474d9f82583"),
    # decomp_arithmetic.csv: a whitened basis
    ({}, "int_mult", "eigen-whitened", 0, 0.05, "24793facfc3bfbf7"),
    # decomp_transfer.csv: --limit 20 --also-eval (the baseline cell does not hash it)
    ({"limit": 20, "also_eval": ["rte_eigen", "cb_eigen"]}, "int_mult", "eigen", 0, 0.3, "469502b7aaf512f5"),
    ({"limit": 20, "also_eval": ["rte_eigen", "cb_eigen"]}, "int_mult", "none", 0, 0.0, "c34f5bdb0589c3ae"),
    # overrides of the recipe and run settings no reference run used (computed before the table)
    ({"matrices": "q,k", "layers": "-4:", "scorer": "gradient", "objective": "margin",
      "calibration_size": 32, "dtype": "float32"}, "int_sum", "eigen", 1, 0.1, "d71a4760d432163c"),
    ({"pruner": "threshold", "threshold": 0.5, "compensate": False, "decomposition": "scaled",
      "limit": 10}, "int_sum", "eigen", 1, 0.1, "87dbaf0fefe9fd78"),
    ({"matrices": "v", "layers": "0,3"}, "int_sum", "magnitude", 1, 0.1, "11d1c8bff036125e"),
]


@pytest.mark.parametrize(("settings", "slot", "strategy", "seed", "fraction", "expected"), PINNED)
def test_config_hashes_of_written_rows_never_move(settings, slot, strategy, seed, fraction, expected):
    cfg = bench.BenchConfig(strategies=[strategy], **settings)
    s = bench.resolve_strategies(cfg)[0]
    assert leaderboard.config_hash(bench.cell_config(cfg, slot, s, seed, fraction)) == expected


def written_rows(tmp_path, cfg: bench.BenchConfig):
    """The rows `harness bench` writes for `cfg`'s grid (made by the driver's own make_row, with
    made-up results), as the board reads them back."""
    from types import SimpleNamespace

    from harness import report
    from harness.edits import Edit

    strategies = bench.resolve_strategies(cfg)
    result = SimpleNamespace(split="test", metric="acc", value=0.5, stderr=0.1, n=4, nll=1.0, seconds=1.0,
                             per_example=[1.0, 0.0, 1.0, 0.0])
    rows = []
    for task in cfg.tasks:
        for slot in bench.slots(cfg, task):
            for s, seed, fraction in bench.cells(cfg, strategies):
                config = bench.cell_config(cfg, slot, s, seed, fraction)
                edit = Edit(n_total=10, transfer={t: {"value": 0.5} for t in cfg.also_eval}
                            if s.uses_fraction else {})
                rows.append(bench.make_row(cfg, config, leaderboard.config_hash(config), result, result,
                                           edit, s, cfg.calibration_size if s.needs_calibration else 0,
                                           1.0, {"harness_version": "0"}))
    leaderboard.append(tmp_path / "results.csv", rows)
    return report.load([tmp_path / "results.csv"])


RECREATED = [
    {"strategies": ["none", "eigen", "magnitude"], "fractions": [0.1, 0.2], "seeds": [0, 1]},
    {"strategies": ["eigen", "smallest-sv"], "calibration_size": 32, "calibration_batch_size": 8,
     "limit": 10, "dtype": "float32"},
    {"strategies": ["eigen"], "matrices": "q,k", "scorer": "gradient", "objective": "margin",
     "compensate": False},
    {"strategies": ["eigen"], "decomposition": "whitened"},
    {"strategies": ["eigen-verified"], "options": {"verify_multiple": "1.5"}},
    {"strategies": ["none", "eigen", "magnitude"], "layers": "0,1", "pruner": "threshold", "threshold": 0.25},
    {"strategies": ["none", "eigen", "random-sv"], "folds": 5, "seeds": [0, 1]},
    {"strategies": ["none", "eigen"], "also_eval": ["int_sum", "cb_eigen"], "limit": 4},
]


@pytest.mark.parametrize("settings", RECREATED)
def test_the_boards_command_reruns_exactly_the_rows_cells(tmp_path, settings):
    """Each strategy's rows -> the board's reproduce command -> `harness bench`'s own parsing of
    it -> the same config hashes: every setting a cell is keyed by is given back."""
    from harness import board_rows, cli

    cfg = bench.BenchConfig(model="smollm2-135m", tasks=["int_mult"], **settings)
    rows = written_rows(tmp_path, cfg)
    for _, group in rows.groupby("strategy"):
        line = board_rows.command(group)
        again = cli.bench_config(cli.bench.make_context("bench", shlex.split(line)[2:]).params)
        assert bench.grid_keys(again, again.tasks, bench.resolve_strategies(again)) \
            == set(group.config_hash), line


def test_every_recorded_setting_has_its_column_in_the_row():
    from harness.run_settings import SETTINGS

    assert {s.column for s in SETTINGS if s.column} <= set(leaderboard.COLUMNS)


def test_every_hashed_setting_is_given_back_by_the_boards_command():
    from harness.run_settings import SETTINGS

    assert {s.name for s in SETTINGS if s.hashed and not s.rebuilt} == set()

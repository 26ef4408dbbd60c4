"""Run settings: a sweep is resumed by its cells' config hashes, so the hash of every cell ever
written must never move. The hashes below were read from the committed reference CSVs (and,
for overrides no reference run used, computed by the code as it was) before the run settings
were gathered into one table (harness/run_settings.py)."""

from __future__ import annotations

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

"""`harness leaderboard`: honest selection, aggregation over seeds, files written."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from harness.cli import cli
from harness.leaderboard import Row, append


def rows(strategy, fraction, seed, val, test, h):
    common = dict(model="m", task="t", strategy=strategy, fraction=fraction, metric="acc", stderr=0.01,
                  n=100, seed=seed, seconds=1.0, harness_version="0", timestamp="now", config_hash=h,
                  n_pruned=int(fraction * 100))
    return [Row(split="validation", value=val, delta=val - 0.5, p_value=0.5, **common),
            Row(split="test", value=test, delta=test - 0.5, p_value=0.04, **common)]


def test_choice_is_made_on_validation_never_on_test(tmp_path):
    csv = tmp_path / "results.csv"
    data = rows("none", 0.0, 0, 0.5, 0.5, "n0")
    for seed in (0, 1):
        # fraction 0.1 wins on validation; 0.3 would win on test (a tempting leak)
        data += rows("eigen", 0.1, seed, 0.70, 0.60 + seed * 0.02, f"a{seed}")
        data += rows("eigen", 0.3, seed, 0.65, 0.90, f"b{seed}")
    append(csv, data)
    (tmp_path / "results_masks").mkdir()
    for seed in (0, 1):
        (tmp_path / "results_masks" / f"a{seed}.json").write_text(json.dumps({"matrices": {
            "layer.0.k": {"layer": 0, "kind": "k", "heads": 2, "rank": 2, "keep": [[1, 0], [1, 1]]},
            "layer.1.k": {"layer": 1, "kind": "k", "heads": 2, "rank": 2, "keep": [[0, 0], [1, 1]]}}}))
    result = CliRunner().invoke(cli, ["leaderboard", str(csv)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "leaderboard.csv")
    eigen = table[table.strategy == "eigen"].iloc[0]
    assert str(eigen.fraction) == "0.1" and eigen.chosen_on == "validation" and eigen.seeds == 2
    assert abs(eigen.value_mean - 0.61) < 1e-9 and abs(eigen.value_std - 0.0141421356) < 1e-6
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.startswith("## Verdict") and "**The rule.** " in md  # the answer first, then the rows
    assert "| m | t | task split | eigen | method | 0.1 (validation) | 61.00 | 2 seeds |" in md
    for name in ("accuracy_vs_fraction.png", "eigen_heatmap.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_baselines_come_from_the_plugins_flag_else_from_the_role_rows_recorded():
    """A registered recipe's `baseline=True` decides (its variants too); a strategy whose plugin
    is not installed where the board is built keeps the role its rows recorded."""
    from harness.report import baseline_names

    recorded = pd.DataFrame({"strategy": ["gone-control", "gone-method", "eigen"],
                             "role": ["baseline", "method", "baseline"]})
    names = {"gone-control", "gone-method", "eigen", "random-sv[matrices=all]", "none"}
    assert baseline_names(names, recorded) == {"gone-control", "random-sv[matrices=all]", "none"}
    assert baseline_names(names) == {"random-sv[matrices=all]", "none"}  # rows without the column


def test_filters_name_the_valid_choices(tmp_path):
    csv = tmp_path / "results.csv"
    append(csv, rows("eigen", 0.1, 0, 0.7, 0.6, "a"))
    result = CliRunner().invoke(cli, ["leaderboard", str(csv), "--task", "nope"])
    assert result.exit_code == 2 and "--task 'nope' is not in the results; choose from: t" in result.output
    result = CliRunner().invoke(cli, ["leaderboard", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_heatmap_keeps_models_of_different_shapes_apart(tmp_path):
    from harness import report

    csv = tmp_path / "results.csv"
    data = []
    for model, layers, heads in (("a", 2, 2), ("b", 3, 1)):
        for r in rows("eigen", 0.1, 0, 0.7, 0.6, f"{model}0"):
            r.model = model
            data.append(r)
        keep = [[1, 0]] * heads
        (tmp_path / "results_masks").mkdir(exist_ok=True)
        (tmp_path / "results_masks" / f"{model}0.json").write_text(json.dumps({"matrices": {
            f"layer.{i}.k": {"layer": i, "kind": "k", "heads": heads, "rank": 2, "keep": keep}
            for i in range(layers)}}))
    append(csv, data)
    assert report.heatmap(report.load([csv]), tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"

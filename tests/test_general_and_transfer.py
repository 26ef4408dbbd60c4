"""Rows' general-text loss, --decomposition and --also-eval end to end on a tiny Llama, and
the promise that default runs keep their config hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from conftest import char_tokenizer, tiny_model
from torch.nn import functional as F

from harness import general, leaderboard, transfer
from harness.cli import cli
from harness.grid import BenchConfig, cell_config, resolve_strategies

SMALL = ["--task", "int_mult", "--limit", "4", "--calibration-size", "8",
         "--calibration-batch-size", "4", "--device", "cpu", "--fraction", "0.3"]
REFERENCE = Path(__file__).parent.parent / "leaderboard" / "reference" / "arithmetic.csv"


def bench(*args):
    return CliRunner().invoke(cli, ["bench", *args])


def test_probe_nll_is_the_mean_next_token_loss_of_every_passage():
    model, tok = tiny_model("llama"), char_tokenizer()
    passages = ("The sea was calm.", "A short one.", "Bread rises.")
    got = general.nll(model, general.probe_batch(tok, passages))
    total = count = 0.0
    for p in passages:  # one passage at a time, no padding
        ids = torch.tensor([tok(p)["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1]
        total += float(F.cross_entropy(logits.double(), ids[0, 1:], reduction="sum"))
        count += ids.shape[1] - 1
    assert got == pytest.approx(total / count, rel=1e-6)


def test_default_runs_keep_the_config_hashes_of_the_reference_rows():
    rows = [r for r in leaderboard.read_rows(REFERENCE)
            if r["task"] == "int_mult" and r["strategy"] in ("eigen", "smallest-sv", "random-sv")
            and r["calibration_size"] == "64" and r["calibration_batch_size"] == "16"][:12]
    assert rows
    cfg = BenchConfig(model="smollm2-135m", strategies=["eigen", "smallest-sv", "random-sv"])
    by_name = {s.name: s for s in resolve_strategies(cfg)}
    for r in rows:
        config = cell_config(cfg, "int_mult", by_name[r["strategy"]], int(r["seed"]), float(r["fraction"]))
        assert leaderboard.config_hash(config) == r["config_hash"], r["strategy"]


def test_rows_carry_the_basis_and_the_general_loss(tiny_dir, tmp_path):
    out = tmp_path / "r.csv"
    result = bench("--model", str(tiny_dir), "--output", str(out), "--strategy",
                   "none,eigen,svd-llm,asvd,eigen-whitened", *SMALL)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert df.general_nll.notna().all() and (df.general_nll > 0).all()
    none = df[df.strategy == "none"]
    assert (none.general_nll_delta == 0).all()
    base = none.general_nll.iloc[0]
    assert (df.general_nll - df.general_nll_delta).round(9).eq(round(base, 9)).all()
    assert dict(zip(df.strategy, df.decomposition.fillna(""), strict=False)) == {
        "none": "", "eigen": "plain", "svd-llm": "whitened", "asvd": "scaled",
        "eigen-whitened": "whitened"}


def test_decomposition_option_labels_a_variant_and_bad_names_exit_2(tiny_dir, tmp_path):
    out = tmp_path / "r.csv"
    result = bench("--model", str(tiny_dir), "--output", str(out), "--strategy", "eigen",
                   "--decomposition", "scaled", *SMALL)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert set(df.strategy) == {"eigen[decomposition=scaled]"} and set(df.decomposition) == {"scaled"}
    bad = bench("--model", str(tiny_dir), "--output", str(out), "--strategy", "eigen",
                "--decomposition", "whitend", *SMALL)
    assert bad.exit_code == 2
    assert "unknown decomposition 'whitend'; choose from: plain, scaled, whitened" in bad.output
    assert "Traceback" not in bad.output


def test_also_eval_measures_each_pruned_cell_on_the_other_task(tiny_dir, tmp_path):
    out = tmp_path / "r.csv"
    result = bench("--model", str(tiny_dir), "--output", str(out), "--strategy", "none,smallest-sv",
                   "--also-eval", "int_sum", *SMALL)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out, keep_default_na=False)
    pruned = df[df.strategy == "smallest-sv"]
    assert "test" in set(pruned.split)
    # the unpruned model on int_sum, measured apart: the transfer's baseline must be it (a
    # baseline first evaluated while the cell's edit was applied would be the pruned model's)
    apart = bench("--model", str(tiny_dir), "--output", str(tmp_path / "u.csv"), "--strategy", "none",
                  "--task", "int_sum", *SMALL[2:])
    assert apart.exit_code == 0, apart.output
    unpruned = pd.read_csv(tmp_path / "u.csv").query("split == 'test'").iloc[0]
    for cell in pruned.transfer:
        t = json.loads(cell)["int_sum"]
        assert t["split"] == "test" and t["n"] == 4 and t["metric"] == "acc"
        assert t["delta"] == pytest.approx(t["value"] - t["baseline"])
        assert t["baseline"] == pytest.approx(unpruned.value)
        assert t["nll"] - t["nll_delta"] == pytest.approx(unpruned.nll, rel=1e-6)
        assert t["nll_delta"] != 0  # 30% of K removed: the pruned model is another model
    assert (df[df.strategy == "none"].transfer == "").all()
    # the transfer measurement is part of the cell: its hash differs from the plain run's
    plain = bench("--model", str(tiny_dir), "--output", str(tmp_path / "p.csv"), "--strategy",
                  "smallest-sv", *SMALL)
    assert plain.exit_code == 0
    assert set(pd.read_csv(tmp_path / "p.csv").config_hash).isdisjoint(set(pruned.config_hash))
    page = tmp_path / "b" / "index.html"
    board = CliRunner().invoke(cli, ["leaderboard", str(out), "--out-dir", str(tmp_path / "b"),
                                     "--html", str(page)])
    assert board.exit_code == 0, board.output
    text = (tmp_path / "b" / "leaderboard.md").read_text()
    t = json.loads(pruned.transfer.iloc[0])["int_sum"]
    assert (f"| int_mult | task split, limit 4 | smallest-sv | 0.3 | int_sum | {100 * t['value']:.2f} | "
            f"{100 * t['baseline']:.2f} | {100 * t['delta']:+.2f} |") in text
    # the page shows the same table, in its cost-elsewhere section, linked from the top
    html = page.read_text()
    section = html[html.index('<section id="elsewhere"'):]
    section = section[:section.index("</section>")]
    assert 'href="#elsewhere"' in html and "pruned for one task, measured on another" in section
    assert (f"<td>int_sum</td><td class=num>{100 * t['value']:.2f}</td>"
            f"<td class=num>{100 * t['baseline']:.2f}</td>") in section
    bad = bench("--model", str(tiny_dir), "--output", str(out), "--strategy", "eigen",
                "--also-eval", "nope_task", *SMALL)
    assert bad.exit_code == 2 and "unknown task 'nope_task'" in bad.output


def test_cost_table_divides_the_general_loss_change_by_the_points_gained():
    t = pd.DataFrame([
        {"model": "m", "task": "a", "strategy": "gains", "fraction": "0.2", "chosen_on": "validation",
         "delta_mean": 0.04, "general_nll_delta_mean": 0.2, "seeds": 4},
        {"model": "m", "task": "a", "strategy": "loses", "fraction": "0.1", "chosen_on": "validation",
         "delta_mean": -0.02, "general_nll_delta_mean": 0.1, "seeds": 4},
        {"model": "m", "task": "a", "strategy": "ties", "fraction": "0.2", "chosen_on": "none",
         "delta_mean": 2.2e-18, "general_nll_delta_mean": 0.06, "seeds": 4},
        {"model": "m", "task": "a", "strategy": "none", "fraction": "0", "chosen_on": "-",
         "delta_mean": 0.0, "general_nll_delta_mean": 0.0, "seeds": 1}])
    text = transfer.cost_markdown(transfer.cost_table(t))
    assert "| m | a | task split | gains | 0.2 (validation) | +4.00 | +0.2000 | +0.0500 | 4 |" in text
    assert "| m | a | task split | loses | 0.1 (validation) | -2.00 | +0.1000 | - | 4 |" in text
    assert "| m | a | task split | ties | 0.2 (none) | +0.00 | +0.0600 | - | 4 |" in text  # no 1e16 per point
    assert "| none |" not in text
    assert transfer.cost_markdown(transfer.cost_table(t.assign(general_nll_delta_mean=float("nan")))) == ""
    # nothing measured, nothing on the page either: no empty section, no dangling link
    from harness import board_html

    empty = [(transfer.COST_TITLE, transfer.COST_NOTE,
              transfer.cost_table(t.assign(general_nll_delta_mean=float("nan"))))]
    assert board_html._elsewhere(empty) == ""
    shown = board_html._elsewhere([(transfer.COST_TITLE, transfer.COST_NOTE, transfer.cost_table(t))])
    assert shown.count("<tr>") == 4 and "<td>gains</td>" in shown and "<td>none</td>" not in shown

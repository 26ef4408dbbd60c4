"""`harness leaderboard --html`: the page's table, sort, filters and escaping, checked in a real
headless browser (Chromium) from the DOM after the page's script ran; plus fast checks of the
HTML itself that need no browser."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import board_html, report
from harness.cli import cli
from harness.leaderboard import Row, append

EVIL = "<script>alert(1)</script>"


def cell_rows(task, strategy, fraction, seed, val, test, p_test, h, **extra):
    common = dict(model="m", task=task, strategy=strategy, fraction=fraction, metric="acc", stderr=0.01,
                  n=100, seed=seed, seconds=1.0, harness_version="0.1.0", timestamp="now", config_hash=h,
                  n_pruned=int(fraction * 100), lm_eval_version="0.4.13", transformers_version="5.24.0",
                  torch_version="2.13.0+cpu", **extra)
    return [Row(split="validation", value=val, delta=val - 0.5, p_value=0.5, **common),
            Row(split="test", value=test, delta=test - 0.5, p_value=p_test, **common)]


@pytest.fixture
def results(tmp_path):
    """Task t: eigen 0.6 (significant, two seeds, 0.1 chosen over 0.3), none 0.5, EVIL 0.4;
    task u: eigen 0.35, none 0.3. Default order is (task, value desc); by value it interleaves."""
    spectral = dict(matrices="k", scorer="attribution", pruner="global-fraction", compensate=True,
                    calibration_size=64, unit="singular values")
    data = cell_rows("t", "none", 0.0, 0, 0.5, 0.5, 1.0, "n0")
    for seed in (0, 1):
        data += cell_rows("t", "eigen", 0.1, seed, 0.70, 0.60, 0.01, f"a{seed}", **spectral)
        data += cell_rows("t", "eigen", 0.3, seed, 0.65, 0.90, 0.01, f"b{seed}", **spectral)
    data += cell_rows("t", EVIL, 0.2, 0, 0.55, 0.40, 0.3, "e0", matrices="k")
    data += cell_rows("u", "none", 0.0, 0, 0.3, 0.3, 1.0, "n1")
    data += cell_rows("u", "eigen", 0.2, 0, 0.4, 0.35, 0.6, "c0", **spectral)
    csv = tmp_path / "results.csv"
    append(csv, data)
    return csv


# --- no browser needed ---------------------------------------------------------------------------

def test_page_is_self_contained_and_escapes_every_csv_value(results, tmp_path):
    page = tmp_path / "board.html"
    result = CliRunner().invoke(cli, ["leaderboard", str(results), "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count("<script") == 1 and EVIL not in text  # the page's own script only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # nothing fetched: no resource or link outside the file; the plot is inline
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "@import" not in text and "url(" not in text
    assert text.count('src="data:image/png;base64,') == 1
    assert "default-src 'none'" in text
    # per row: the command that reruns its cells, and the fingerprint
    assert ("harness bench --model m --task t --strategy eigen --fraction 0.1,0.3 --seed 0,1 --matrices k "
            "--scorer attribution --pruner global-fraction --compensate --calibration-size 64") in text
    assert "--strategy &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27; --fraction 0.2" in text
    for version in ("0.4.13", "5.24.0", "2.13.0+cpu"):
        assert f"<code>{version}</code>" in text


def test_each_rows_command_reruns_exactly_the_cells_behind_it():
    """On the reference board: parse every row's command as `harness bench` would and compare the
    config hashes of its grid with those of the row's cells (the same hashes: the same cells)."""
    from harness import bench
    from harness.cli import bench as bench_cmd
    from harness.cli import split_list

    reference = Path(__file__).parent.parent / "leaderboard" / "reference"
    rows = report.load([reference / f"{name}.csv" for name in
                        ("arithmetic", "superglue", "qwen_arithmetic", "qwen_superglue")])
    table = report.table(rows)
    assert table.strategy.str.contains("[", regex=False).any()  # variants (--option) are covered
    for _, entry in table.iterrows():
        cells = board_html._group_rows(rows, entry)
        grid = set()
        for line in board_html.command(cells).split(" && "):  # one line per run setting
            kw = bench_cmd.make_context("bench", shlex.split(line)[2:]).params
            cfg = bench.BenchConfig(
                model=kw["model"], tasks=split_list(kw["tasks"]), strategies=split_list(kw["strategies"]),
                fractions=split_list(kw["fractions"], float) or None, seeds=split_list(kw["seeds"], int),
                limit=kw["limit"], select_on=kw["select_on"], calibration_size=kw["calibration_size"],
                calibration_batch_size=kw["calibration_batch_size"], matrices=kw["matrices"],
                layers=kw["layers"], scorer=kw["scorer"], pruner=kw["pruner"], compensate=kw["compensate"],
                threshold=kw["threshold"], dtype=kw["dtype"], objective=kw["objective"],
                options=dict(o.split("=", 1) for o in kw["options"]))
            grid |= bench.grid_keys(cfg, cfg.tasks, bench.resolve_strategies(cfg))
        assert grid == set(cells.config_hash), board_html.command(cells)


def test_extra_and_missing_table_columns_render(results):
    rows = report.load([results])
    table = report.table(rows).drop(columns=["n_pruned", "delta_mean"])
    table["nll_mean"] = 1.234567
    table["p_vs_best_median"] = 0.01
    table["my_new_column"] = 12345.6789
    rows["model_hash"] = "deadbeef"
    text = board_html.render(table, rows)
    assert 'data-col="my_new_column"' in text and ">1.235e+04<" in text
    assert ">test NLL<" in text and ">1.235<" in text
    assert 'data-col="p_vs_best_median" data-v="0.01" class="num sig"' in text
    assert "<dt>model_hash</dt><dd><code>deadbeef</code>" in text
    assert 'data-col="delta_mean"' not in text


def test_best_row_and_significance_are_marked(results):
    rows = report.load([results])
    text = board_html.render(report.table(rows), rows)
    bodies = re.findall(r'<tbody class="(entry[^"]*)"[^>]*data-task="(\w)" data-strategy="([^"]*)"', text)
    best = {(task, strategy) for cls, task, strategy in bodies if "best" in cls}
    assert best == {("t", "eigen"), ("u", "eigen")}
    # eigen on t: +10.00 with p = 0.01 is significant; eigen on u: -15.00 with p = 0.6 is noise
    assert re.search(r'data-col="delta_mean" data-v="0.0999+8?" class="num sig up">▲ \+10.00</td>', text)
    assert 'class="num noise">-15.00</td>' in text


# --- in a real browser ---------------------------------------------------------------------------

def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    if os.environ.get("CI"):
        pytest.fail("CI is set but Chromium is missing: .ci/run installs it (apt-get install chromium)")
    pytest.skip("Chromium is not installed (apt-get install chromium); set CI=1 to make this a failure")


class Board(HTMLParser):
    """The leaderboard rows as the browser left them: order, hidden or not, cell texts."""

    def __init__(self):
        super().__init__()
        self.entries: list[dict] = []
        self.scripts = 0
        self.ready = False
        self._col = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.ready = a.get("data-ready") == "1"
        if tag == "script":
            self.scripts += 1
        if tag == "tbody" and "entry" in (a.get("class") or "").split():
            self.entries.append({"hidden": "hidden" in a, "strategy": a["data-strategy"],
                                 "task": a["data-task"], "cells": {}, "details_hidden": None})
        if tag == "tr" and a.get("class") == "details" and self.entries:
            self.entries[-1]["details_hidden"] = "hidden" in a
        if tag == "td" and "data-col" in a and self.entries:
            self._col = a["data-col"]
            self.entries[-1]["cells"][self._col] = ""

    def handle_endtag(self, tag):
        if tag == "td":
            self._col = None

    def handle_data(self, data):
        if self._col:
            self.entries[-1]["cells"][self._col] += data


def browse(page, fragment: str, tmp_path) -> Board:
    out = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000", "--dump-dom",
         page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    board = Board()
    board.feed(out.stdout)
    assert board.ready, "the page's script did not run (CSP or a script error)"
    return board


def test_browser_shows_rows_sorts_filters_and_escapes(results, tmp_path):
    chromium()  # skip (or fail under CI) before any work
    page = tmp_path / "board.html"
    assert CliRunner().invoke(cli, ["leaderboard", str(results), "--html", str(page)]).exit_code == 0

    board = browse(page, "", tmp_path)
    order = [(e["task"], e["strategy"]) for e in board.entries]
    assert order == [("t", "eigen"), ("t", "none"), ("t", EVIL), ("u", "eigen"), ("u", "none")]
    assert not any(e["hidden"] for e in board.entries)
    assert board.scripts == 1  # the strategy name did not become a script element ...
    evil = board.entries[2]["cells"]
    assert evil["strategy"] == EVIL and evil["value_mean"].startswith("40.00")  # ... but text
    assert "± 0.00" not in evil["value_mean"]  # one seed: no made-up spread

    # sorting by the value column (the header's click handler, run on load from the hash)
    board = browse(page, "#sort=value_mean", tmp_path)
    values = [float(e["cells"]["value_mean"].split(" ± ")[0]) for e in board.entries]
    assert values == [30.0, 35.0, 40.0, 50.0, 60.0]
    assert [(e["task"], e["strategy"]) for e in board.entries][:3] == [("u", "none"), ("u", "eigen"),
                                                                        ("t", EVIL)]
    board = browse(page, "#sort=value_mean&dir=desc", tmp_path)
    assert [float(e["cells"]["value_mean"].split(" ± ")[0]) for e in board.entries] == values[::-1]

    # a text column, descending, with a filter on the task and one row opened
    board = browse(page, "#sort=strategy&dir=desc&task=t&open=0", tmp_path)
    visible = [e["strategy"] for e in board.entries if not e["hidden"]]
    assert visible == ["none", "eigen", EVIL]
    assert {e["task"] for e in board.entries if e["hidden"]} == {"u"}
    assert [e["details_hidden"] for e in board.entries if e["strategy"] == "eigen" and e["task"] == "t"] \
        == [False]

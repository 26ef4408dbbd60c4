"""`harness leaderboard --html`: the page's table, sort, filters and escaping, checked in a real
headless browser (Chromium) from the DOM after the page's script ran; plus fast checks of the
HTML itself that need no browser."""

from __future__ import annotations

import ast
import base64
import html
import json
import os
import re
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness import board_html, board_rows, report
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
    assert 'src="data:image/png' not in text and text.count('<figure class="panel"><figcaption>') == 2
    # the CSV the page was built from, downloadable from the page itself
    data = re.search(r'download="results.csv" href="data:text/csv;base64,([^"]+)"', text).group(1)
    assert base64.b64decode(data) == results.read_bytes()
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
    from harness import bench, cli

    reference = Path(__file__).parent.parent / "leaderboard" / "reference"
    rows = report.load([reference / f"{name}.csv" for name in
                        ("arithmetic", "superglue", "qwen_arithmetic", "qwen_superglue",
                         "folds_arithmetic", "folds_qwen_arithmetic", "folds_qwen_superglue",
                         "decomp_transfer")])
    table = report.table(rows)
    assert table.strategy.str.contains("[", regex=False).any()  # variants (--option) are covered
    assert (rows.folds > 0).any() and rows.transfer.fillna("").str.startswith("{").any()  # also those
    for _, entry in table.iterrows():
        cells = board_rows.group_rows(rows, entry)
        grid = set()
        for line in board_rows.command(cells).split(" && "):  # one line per run setting
            cfg = cli.bench_config(cli.bench.make_context("bench", shlex.split(line)[2:]).params)
            grid |= bench.grid_keys(cfg, cfg.tasks, bench.resolve_strategies(cfg))
        assert grid == set(cells.config_hash), board_rows.command(cells)


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


def test_only_a_win_by_the_rule_is_starred_and_significance_is_marked(results):
    """★ goes to what the rule calls a win, not to the highest value: without a verdict column
    nothing is starred; with one, only its WIN rows."""
    rows = report.load([results])
    table = report.table(rows)
    text = board_html.render(table, rows)
    assert '<span class="badge win">' not in text and 'class="entry win"' not in text
    table["verdict"] = ["WIN" if (r.task, r.strategy) == ("u", "eigen") else "" for r in table.itertuples()]
    text = board_html.render(table, rows)
    bodies = re.findall(r'<tbody class="(entry[^"]*)"[^>]*data-task="(\w)" data-strategy="([^"]*)"', text)
    assert {(task, strategy) for cls, task, strategy in bodies if "win" in cls} == {("u", "eigen")}
    assert text.count('<span class="badge win">★ WIN</span>') == 1
    # eigen on t: +10.00 with p = 0.01 is significant; eigen on u: -15.00 with p = 0.6 is noise
    assert re.search(r'data-col="delta_mean" data-v="0.0999+8?" class="num sig up" data-label="Δ vs none" '
                     r'hidden>▲ \+10.00</td>', text)
    assert 'class="num noise" data-label="Δ vs none" hidden>-15.00</td>' in text


def test_board_html_does_not_import_the_report():
    """One direction: the report decides and hands its choices to the page (no import circle)."""
    tree = ast.parse(Path(board_html.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {f"harness.{a.name}" for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module == "harness" for a in node.names}
    assert "harness.report" not in imported


def test_numbers_are_honest(results):
    """One seed reads "1 seed" (never "± 0.00"); intervals appear where the table has them; p in one
    notation; NLL changes signed."""
    rows = report.load([results])
    table = report.table(rows)
    text = board_html.render(table, rows, chosen=report.choose(rows))
    assert "± 0.00" not in text and "1 seed" in text and "2 seeds" in text
    table["value_low"], table["value_high"] = table.value_mean - 0.05, table.value_mean + 0.05
    table["nll_delta_mean"] = 0.5
    table["p_value_median"] = 7.8e-07
    text = board_html.render(table, rows)
    assert "[55.00, 65.00]" in text  # eigen on t: 60.00 with its interval
    assert ">+0.500<" in text and "e-07<" not in text and ">&lt; 0.001</td>" in text
    assert [board_html.fmt_p(p) for p in (7.8e-07, 0.0577, 1.0, float("nan"))] == [
        "< 0.001", "0.058", "1.000", "–"]


def test_real_budget_sits_beside_the_fraction(tmp_path):
    """Singular values with their share and energy, weights for magnitude, and what a searching
    strategy chose."""
    budget = json.dumps({"chosen_fraction": 0.01, "chosen_matrices": "mlp_out"})
    data = cell_rows("t", "none", 0.0, 0, 0.5, 0.5, 1.0, "n0")
    data += cell_rows("t", "eigen", 0.2, 0, 0.6, 0.6, 0.5, "e0", n_total=3072, unit="singular values",
                      energy_kept=0.963, matrices="k")
    data += cell_rows("t", "magnitude", 0.2, 0, 0.6, 0.55, 0.5, "m0", n_total=2752512, unit="weights",
                      matrices="k")
    data += cell_rows("t", "eigen-budget-kinds", 0.2, 0, 0.6, 0.58, 0.5, "k0", n_total=113664,
                      unit="singular values", energy_kept=0.9994, matrices="all", details=budget)
    for row in data:  # what each really removed
        row.n_pruned = {"e0": 614, "m0": 550488, "k0": 215}.get(row.config_hash, 0)
    csv = tmp_path / "r.csv"
    append(csv, data)
    rows = report.load([csv])
    text = board_html.render(report.table(rows), rows, chosen=report.choose(rows))
    assert "614 of 3,072 singular values (20.0%), 3.7% of their energy" in text
    assert "550,488 of 2,752,512 weights (20.0%)" in text
    assert "215 of 113,664 singular values (0.2%), 0.1% of their energy" in text
    assert "searched; chose mlp_out at 0.01" in text


VERDICTS = [
    dict(model="m", task="t", method="eigen", status="WIN", decided_by="sign-flip test vs magnitude",
         equal_baseline="magnitude", equal_delta=0.10, equal_low=0.04, equal_high=0.16, equal_p=0.002,
         tuned_baseline="none", tuned_delta=0.08, tuned_low=0.01, tuned_high=0.15, tuned_p=0.03,
         seeds=2, folds=5, n=100, mde=0.07, needed="", line="m / t: eigen wins."),
    dict(model="m", task="u", method="eigen", status="UNDERPOWERED", decided_by="power",
         seeds=1, folds=0, n=100, mde=0.2, needed="4 seeds", line="m / u: too few seeds."),
]


def test_verdict_comes_first_with_its_numbers(results):
    rows = report.load([results])
    text = board_html.render(report.table(rows), rows, verdicts=pd.DataFrame(VERDICTS),
                             lines=["ignored: the frame's own lines win"], rule="A method wins when X.")
    assert text.index('id="verdict"') < text.index('id="board"')
    assert "<b>1 WIN</b> of 2 model × task pairs · 1 UNDERPOWERED" in text
    assert "+10.00</span> <span class=\"nw\">[+4.00, +16.00]</span>" in text
    assert "2 seeds × 5 folds" in text and "detects ≥ 7.0 points" in text and "needs 4 seeds" in text
    assert "<summary>The rule, in plain words</summary><p>A method wins when X.</p>" in text
    assert "<li>m / u: too few seeds.</li>" in text and "ignored" not in text
    # an older report without a verdict table: its sentences are the verdict
    text = board_html.render(report.table(rows), rows, lines=["m / t: no method beats every baseline."])
    assert '<ul class="lines"><li>m / t: no method beats every baseline.</li></ul>' in text


def test_bench_names_the_unit_of_what_it_removed(tmp_path):
    from harness.cli import format_rows, verdict_lines

    data = cell_rows("t", "none", 0.0, 0, 0.5, 0.5, 1.0, "n0")
    data += cell_rows("t", "eigen", 0.2, 0, 0.6, 0.6, 0.5, "e0", unit="singular values")
    data += cell_rows("t", "magnitude", 0.2, 0, 0.6, 0.55, 0.5, "m0", unit="weights")
    csv = tmp_path / "r.csv"
    append(csv, data)
    keys = {"n0", "e0", "m0"}
    table = format_rows(csv, keys)
    assert "20 sv" in table and "20 weights" in table and "n_pruned" not in table
    lines = verdict_lines(csv, keys)
    assert len(lines) == 1 and lines[0].startswith("m / t [")


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
        self.columns: list[str] = []  # the table's header, in order
        self.hidden_columns: set[str] = set()
        self.pivot_hidden = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.ready = a.get("data-ready") == "1"
        if tag == "script":
            self.scripts += 1
        if tag == "th" and "data-col" in a:
            self.columns.append(a["data-col"])
            if "hidden" in a:
                self.hidden_columns.add(a["data-col"])
        if tag == "div" and a.get("class") == "view-pivot":
            self.pivot_hidden = "hidden" in a
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
    assert evil["strategy"] == EVIL and evil["value_mean"] == "40.00"  # ... but text
    assert evil["evidence"].startswith("1 seed")  # one seed is said, never "± 0.00"

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
    assert board.hidden_columns == {c for c in board.columns if c not in board_html.COMPACT_KEYS}
    assert board.pivot_hidden
    assert {e["task"] for e in board.entries if e["hidden"]} == {"u"}
    assert [e["details_hidden"] for e in board.entries if e["strategy"] == "eigen" and e["task"] == "t"] \
        == [False]

    # several words, each anywhere in the row; a role; columns and the pivot view from the address
    board = browse(page, "#q=35.00%20EIGEN&cols=identity,value,n&view=pivot", tmp_path)
    assert [(e["task"], e["strategy"]) for e in board.entries if not e["hidden"]] == [("u", "eigen")]
    assert set(board.columns) - board.hidden_columns == {"identity", "value", "n"}
    assert not board.pivot_hidden
    board = browse(page, "#role=baseline", tmp_path)
    assert {e["strategy"] for e in board.entries if not e["hidden"]} == {"none"}


# --- layout, measured in a real browser at a laptop's and a phone's size --------------------------

WRAPPER = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" style="border:0; width:%(w)dpx; height:%(h)dpx" src="%(src)s"></iframe><pre id="out"></pre>
<script>
var f = document.getElementById("f");
f.addEventListener("load", function () {
  var w = f.contentWindow, d = f.contentDocument, r = {};
  var board = d.getElementById("board"), head = board.tHead;
  r.ready = d.documentElement.getAttribute("data-ready");
  r.verdictTop = d.getElementById("verdict").getBoundingClientRect().top;
  r.tableWidth = board.getBoundingClientRect().width;
  r.pageWidth = d.documentElement.scrollWidth;
  var start = board.getBoundingClientRect().top + w.scrollY;
  w.scrollTo(0, start + 1500);
  r.scrolled = w.scrollY - start;
  r.headTop = head.rows[0].cells[0].getBoundingClientRect().top;
  w.scrollTo(600, start + 1500);
  r.scrolledX = w.scrollX;
  r.identityLeft = board.querySelector("tbody:not([hidden]) td.identity").getBoundingClientRect().left;
  d.querySelector("tbody.entry .toggle").click();
  var body = d.querySelector("tbody.open .detail-body");
  r.detailsRight = body.getBoundingClientRect().right - w.scrollX;
  r.viewport = w.innerWidth;
  document.getElementById("out").textContent = JSON.stringify(r);
});
</script></body></html>"""


@pytest.fixture(scope="module")
def big_board(tmp_path_factory):
    """A board taller than 1,500 px with what makes real ones wide: long variant names, one-seed
    rows, every column the statistics add, and a verdict table."""
    tmp = tmp_path_factory.mktemp("big")
    data = []
    for task in ("int_mult", "cb_eigen"):
        data += cell_rows(task, "none", 0.0, 0, 0.5, 0.5, 1.0, f"n-{task}")
        data += cell_rows(task, "magnitude", 0.2, 0, 0.5, 0.45, 0.2, f"m-{task}", unit="weights",
                          n_total=2752512)
        for i in range(14):
            name = f"eigen-variant-{i}" + ("[verify_examples=8;verify_multiple=1.5]" if i % 3 == 0 else "")
            seeds = (0,) if i % 2 else (0, 1, 2)
            for seed in seeds:
                data += cell_rows(task, name, 0.2, seed, 0.6, 0.4 + 0.01 * i + 0.02 * seed, 0.03,
                                  f"{name}-{task}-{seed}", unit="singular values", n_total=3072,
                                  energy_kept=0.96, matrices="k", scorer="attribution",
                                  pruner="global-fraction")
    csv = tmp / "results.csv"
    append(csv, data)
    rows = report.load([csv])
    table = report.table(rows)
    table["value_low"], table["value_high"] = table.value_mean - 0.06, table.value_mean + 0.06
    for which in ("best", "tuned"):
        table[f"delta_vs_{which}_low"] = table[f"delta_vs_{which}_mean"] - 0.08
        table[f"delta_vs_{which}_high"] = table[f"delta_vs_{which}_mean"] + 0.08
    table["folds"] = 0
    table["verdict"] = ""
    verdicts = pd.DataFrame([dict(VERDICTS[0], model="m", task=task, method="eigen-variant-0[verify_examples="
                                  "8;verify_multiple=1.5]", line=f"m / {task}: a long sentence. " * 8)
                             for task in ("int_mult", "cb_eigen")])
    page = tmp / "board.html"
    board_html.write(page, table, rows, sources=[str(csv)], chosen=report.choose(rows), verdicts=verdicts,
                     lines=[], rule="A method wins when it beats every baseline.")
    return page


def layout(page, tmp_path, width: int, height: int, fragment: str = "") -> dict:
    wrapper = tmp_path / f"wrap-{width}.html"
    wrapper.write_text(WRAPPER % {"w": width, "h": height, "src": page.as_uri() + fragment})
    out = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files",
         "--virtual-time-budget=4000", "--dump-dom", wrapper.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r'<pre id="out">(.*?)</pre>', out.stdout, re.S)
    assert found and found.group(1), "the wrapper could not measure the page"
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["ready"] == "1", "the page's script did not run"
    return measured


@pytest.mark.parametrize("width,height", [(1366, 768), (390, 844)])
def test_layout_fits_the_screen_and_the_header_sticks(big_board, tmp_path, width, height):
    chromium()
    m = layout(big_board, tmp_path, width, height)
    assert 0 <= m["verdictTop"] < height - 100, m  # the answer starts on the first screen
    assert m["tableWidth"] <= width and m["pageWidth"] <= width, m  # no sideways scroll by default
    assert m["scrolled"] >= 1499, m  # the page is long enough for the check below to mean something
    assert 0 <= m["headTop"] <= 8, m  # the header stuck to the top of the viewport (a phone pads it)
    assert m["detailsRight"] <= width, m  # an opened row's details wrap within the viewport
    text = big_board.read_text()
    assert "± 0.00" not in text and text.count("1 seed") >= 14


def test_with_every_column_the_identity_column_stays(big_board, tmp_path):
    chromium()
    m = layout(big_board, tmp_path, 1366, 768, "#cols=" + ",".join(
        re.findall(r'data-colkey="([^"]+)"', big_board.read_text())))
    assert m["pageWidth"] > 1366 and m["scrolledX"] > 0, m  # wider than the screen: it scrolls ...
    assert abs(m["identityLeft"]) <= 1, m  # ... but the strategy column stays at the left edge
    assert abs(m["headTop"]) <= 1, m  # and the header at the top
    assert m["detailsRight"] <= 1366, m


def test_bench_ends_with_the_verdict_for_what_it_ran(tiny_dir, tmp_path):
    """`harness bench` draws the conclusion, not only a table of cells."""
    out = tmp_path / "results.csv"
    result = CliRunner().invoke(cli, [
        "bench", "--model", str(tiny_dir), "--output", str(out), "--task", "int_mult",
        "--strategy", "none,eigen,magnitude", "--fraction", "0.1", "--limit", "4",
        "--calibration-size", "4", "--calibration-batch-size", "4", "--device", "cpu"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    tail = result.output.rstrip().splitlines()
    assert tail[-2].startswith("Verdict for this grid") and tail[-1].startswith(f"- {tiny_dir} / int_mult [")
    assert " sv " in result.output and " weights " in result.output  # removed, with its unit


def test_markdown_opens_with_the_verdict_table(results):
    rows = report.load([results])
    md = report.markdown(report.table(rows), ["m / t: eigen wins."], pd.DataFrame(VERDICTS))
    assert md.startswith("## Verdict")
    assert ("| m | t | **WIN** | eigen | +10.00 [+4.00, +16.00] vs magnitude, p 0.002 | "
            "+8.00 [+1.00, +15.00] vs none, p 0.030 | 2 seeds × 5 folds | sign-flip test vs magnitude |"
            ) in md
    assert "| m | u | **UNDERPOWERED** | eigen | – | – | 1 seed | power |" in md
    assert md.index("**UNDERPOWERED**") < md.index("- m / t: eigen wins.") < md.index("## All results")
    assert "± 0.00" not in md


def test_plot_panels_keep_designs_and_lines_apart(results):
    """One panel per (model, task, design); at most MAX_LINES strategies drawn in each, a
    one-fraction panel drawn as points with intervals (no line), methods and baselines in
    their own colour families."""
    from harness import board_svg

    rows = report.load([results])
    panels = board_svg.panels(rows, {"eigen": "method"}, {"acc"})
    assert len(panels) == 2 and "m · t</figcaption>" in panels[0]
    assert "<polyline" in panels[0] and "<polyline" not in panels[1]  # u: one fraction, a dot plot
    method = re.search(r'stroke="([^"]+)"[^>]*/>[^<]*<circle[^>]*><title>eigen ', panels[0])
    assert method and method.group(1) in board_svg.METHOD_COLOURS  # a method: a warm colour
    assert board_svg.BASELINE_COLOURS[0] in panels[0]  # the other (a baseline): a cool one
    two = pd.concat([rows, rows.assign(design="5 folds", config_hash=rows.config_hash + "f")])
    titles = re.findall(r"<figcaption>([^<]+)</figcaption>", "".join(board_svg.panels(two, {}, {"acc"})))
    assert titles == ["m · t · 5 folds", "m · t · task split", "m · u · 5 folds", "m · u · task split"]
    many = pd.concat([rows.assign(strategy=f"s{i}") for i in range(12)] + [rows])
    drawn = board_svg.panels(many, {f"s{i}": "method" for i in range(12)}, {"acc"})[0]
    legend = drawn.split('<ul class="keys">')[1]
    assert legend.count("<li>") <= board_svg.MAX_LINES and "Not drawn (see the table)" in drawn

"""`harness leaderboard --html`: the leaderboard as one page that opens on the answer.

One self-contained file: styles, script, plots (inline SVG) and the CSVs it was built from
(data URIs, to download) are in it, nothing is fetched, so it works opened from disk, attached
to a mail or committed beside its CSVs. The page reads top down: the verdict per (model, task)
and the rule behind it, then a table that fits a laptop (a compact set of columns by default; a
chooser adds the rest and the address bar remembers it), a pivot view, small-multiple plots,
the strategies' descriptions and the downloads.

Everything is rendered here, in Python, so every number is in the HTML as text and the page
reads without JavaScript; the small inline script only sorts, filters, chooses columns and opens
rows. Everything that comes from a CSV (task and strategy names come from plugins and users'
YAMLs) goes through `html.escape`; the script reads values from data attributes and writes only
`textContent` and attributes, and a Content-Security-Policy lets no script run but the page's
own (pinned by its hash).

Beside it: `board_rows` (the cells behind a row and the command that reruns them),
`board_format` (one notation per kind of number), `board_svg` (the plots) and `board_assets`
(style sheet and script). This module takes what the report decided (the table, the rows it
chose, the verdicts) as arguments and imports no part of the report: the page shows decisions,
it does not make them.
Known table columns get a label, a meaning and a format; any other column `report.table` grows is
still offered in the column chooser (numbers to 4 significant digits). A column a table lacks
(an older board) shows "–".
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import __version__, atomic, board_svg
from harness.board_assets import SCRIPT, STYLE
from harness.board_format import (
    as_number,
    esc,
    fmt_nll_delta,
    fmt_p,
    present,
    row_seeds_text,
    seeds_text,
    sig4,
    thousands,
)
from harness.board_rows import IDENTITY, details_row, group_rows

SIGNIFICANT = 0.05

# table column -> (label, meaning, kind); kinds: text, fraction, value, delta, p, int, float, nll
KNOWN: dict[str, tuple[str, str, str]] = {
    "model": ("model", "Model name, directory or hub id.", "text"),
    "task": ("task", "Task; the table reports its test split.", "text"),
    "design": ("design", "How the rows were run: the task's own split or cross-fitted folds, an "
               "evaluation limit, a dtype. Rows of different designs are never compared.", "text"),
    "unit": ("unit", "What n_pruned counts: singular values, or weights for magnitude.", "text"),
    "p_holm": ("Holm p", "The rule's p (the larger of the two comparisons'), Holm-adjusted over "
               "every method on the model and task.", "p"),
    "p_vs_eigen": ("p vs eigen", "Paired test against eigen over examples and seeds.", "p"),
    "nll_delta_vs_best": ("Δ NLL vs best", "Change of the answers' NLL against the best equal-budget "
                          "baseline (nats).", "nll_delta"),
    "nll_delta_vs_tuned": ("Δ NLL vs tuned", "Change of the answers' NLL against the best tuned "
                           "baseline (nats).", "nll_delta"),
    "nll_delta_vs_eigen": ("Δ NLL vs eigen", "Change of the answers' NLL against eigen (nats).",
                           "nll_delta"),
    "strategy": ("strategy name", "Pruning strategy; none is the unpruned model, majority the "
                 "training split's most common answer given to every example (no model).", "text"),
    "role": ("role", "method: a strategy under test; baseline: a comparison a method must beat; "
             "control: a baseline with random draws, run with several seeds.", "text"),
    "fraction": ("fraction", "Nominal pruning budget: the fraction chosen on the validation split, "
                 "one per seed (or the fraction run, where nothing was chosen).", "fraction"),
    "chosen_on": ("chosen on", "Split the fraction was chosen on; none: every fraction is its own row.",
                  "text"),
    "metric": ("metric", "The task's metric.", "text"),
    "split": ("split", "Split the value is reported on.", "text"),
    "value_mean": ("test value (mean)", "Mean test value over seeds (and folds).", "value"),
    "delta_mean": ("Δ vs none", "Change against the unpruned model on the same examples, mean over "
                   "seeds; bold and marked where p < 0.05.", "delta"),
    "p_value_median": ("p vs none", "Paired test against the unpruned model on the same examples "
                       "(exact McNemar for accuracy), median over seeds.", "p"),
    "seeds": ("seed count", "Number of seeds averaged.", "int"),
    "folds": ("folds", "Cross-fitted folds (0: the paper's fixed split).", "int"),
    "n": ("n", "Test examples.", "int"),
    "n_pruned": ("pruned", "Singular values (or weights, for magnitude) removed, median over seeds; "
                 "the budget column gives the unit.", "int"),
    "nll_mean": ("test NLL", "Negative log-likelihood of the answers (nats), mean over seeds.", "nll"),
    "nll_delta_mean": ("Δ NLL", "Change of the NLL against the unpruned model (nats), mean over seeds; "
                       "positive: the model is less sure of the right answers.", "nll_delta"),
    "best_baseline": ("best baseline", "The baseline with the highest mean test value at the same "
                      "fraction (equal budget).", "text"),
    "delta_vs_best_mean": ("Δ vs best (mean)", "Change against the best equal-budget baseline, "
                           "mean over seeds.", "delta"),
    "p_vs_best_median": ("p vs best (median)", "Paired test against the best equal-budget baseline, "
                         "median over seeds.", "p"),
    "p_vs_best": ("p vs best", "Paired sign-flip permutation test against the best equal-budget "
                  "baseline over examples and seeds.", "p"),
    "p_seeds_vs_random": ("p seeds vs random", "Permutation test of this strategy's seeds against "
                          "the seeds of every baseline run with several seeds at each fraction it "
                          "chose, the largest p.", "p"),
    "random_seeds": ("control seeds", "The fewest seeds a random control has at this strategy's "
                     "fraction.", "int"),
    "random_controls": ("random controls", "The baselines with several seeds this strategy's seeds "
                        "were tested against.", "text"),
    "tuned_baseline": ("best tuned baseline", "The baseline (the unpruned model and the majority "
                       "answer included) with the highest mean test value at its own "
                       "validation-chosen fraction: what a user who tuned the baseline would get.",
                       "text"),
    "delta_vs_tuned_mean": ("Δ vs tuned (mean)", "Change against the best tuned baseline, mean over "
                            "seeds.", "delta"),
    "p_vs_tuned_median": ("p vs tuned (median)", "Paired test against the best tuned baseline, median "
                          "over seeds.", "p"),
    "p_vs_tuned": ("p vs tuned", "Paired sign-flip permutation test against the best tuned baseline "
                   "over examples and seeds.", "p"),
    "delta_vs_eigen_mean": ("Δ vs eigen", "Change against eigen's row of the same seed, each at its "
                            "own validation-chosen fraction, mean over seeds.", "delta"),
    "p_vs_eigen_median": ("p vs eigen", "Paired test against eigen's row of the same seed on the "
                          "same examples, median over seeds.", "p"),
}
# a Δ is marked by its own test's p: the first of these the table has
DELTA_P = {"delta_mean": ("p_value_median",), "delta_vs_best_mean": ("p_vs_best", "p_vs_best_median"),
           "delta_vs_tuned_mean": ("p_vs_tuned", "p_vs_tuned_median"),
           "delta_vs_eigen_mean": ("p_vs_eigen", "p_vs_eigen_median")}
# shown inside the compact columns, not offered on their own
HIDDEN = {"value_std", "value_low", "value_high", "delta_vs_best_low", "delta_vs_best_high",
          "delta_vs_tuned_low", "delta_vs_tuned_high", "delta_vs_eigen_low", "delta_vs_eigen_high",
          "verdict", "setting", "seeds_partial"}
# columns dropped from the table when they hold one value for every row; the line above the
# table names that value (and the value column's header names the metric and split)
FOLDED = ("model", "design", "metric", "split", "chosen_on")
FILTERS = ("model", "task", "design", "strategy", "role")
ROLES = ("method", "baseline", "control")
DATA_KEYS = ("model", "task", "strategy", "design")  # a row's identity, for the filters
STATUS_CLASS = {"WIN": "win", "NO WIN": "nowin", "UNDERPOWERED": "under", "NO METHOD": "none"}


def _percent_metrics(rows: pd.DataFrame) -> set[str]:
    """Metrics shown in percent: those whose every recorded value lies in [-1, 1] (accuracy, F1,
    MCC...); anything else (a perplexity) is shown as recorded."""
    if "metric" not in rows or "value" not in rows:
        return set()
    values = pd.to_numeric(rows["value"], errors="coerce").abs()
    return {str(m) for m, v in values.groupby(rows["metric"].astype(str)) if (v.dropna() <= 1).all()}


def _kind(column: str, series: pd.Series) -> str:
    if column in KNOWN:
        return KNOWN[column][2]
    if pd.api.types.is_bool_dtype(series):
        return "text"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_numeric_dtype(series):
        return "p" if column.startswith("p_") else "float"
    return "text"


def _p_of(column: str, row: pd.Series) -> float | None:
    for name in DELTA_P.get(column, ()):
        if name in row.index:
            return as_number(row.get(name))
    return None


def _points(number: float, scale: float) -> str:
    return f"{scale * number:+.2f}" if scale != 1 else f"{number:+.4g}"


def _cell(column: str, kind: str, row: pd.Series, scale: float) -> tuple[str, str, str]:
    """(sort value, display text, css class) of one generic table cell."""
    value = row.get(column)
    number = as_number(value)
    if kind == "text":
        text = str(value) if present(value) else "–"
        return (text if present(value) else ""), text, ""
    if kind == "fraction":
        first = str(value).split(",")[0] if present(value) else ""
        return (str(as_number(first)) if as_number(first) is not None else ""), str(value), "num"
    if number is None:
        return "", "–", "num"
    if kind == "value":
        return repr(number), (f"{scale * number:.2f}" if scale != 1 else sig4(number)), "num"
    if kind == "delta":
        p = _p_of(column, row)
        text = _points(number, scale)
        if p is not None and p < SIGNIFICANT and number != 0:
            up = number > 0
            return repr(number), ("▲ " if up else "▼ ") + text, "num sig " + ("up" if up else "down")
        return repr(number), text, "num noise"
    if kind == "p":
        return repr(number), fmt_p(number), "num" + (" sig" if number < SIGNIFICANT else "")
    if kind == "int":
        return repr(number), thousands(number), "num"
    if kind == "nll":
        return repr(number), f"{number:.3f}", "num"
    if kind == "nll_delta":
        return repr(number), fmt_nll_delta(number), "num"
    return repr(number), sig4(number), "num"


@dataclass
class Info:
    """What the page knows about one table row beyond the table's own columns."""

    scale: float  # 100 for metrics shown in percent
    role: str  # method, baseline or control
    win: bool  # the rule calls this row a win
    removed: str  # the real budget, in words
    chose: str  # what a searching strategy chose ("" when it does not search)
    where: str = ""  # model · task (· design, where the board has several)


@dataclass
class Col:
    """One column of the table: the compact set's composite ones and each table column."""

    key: str
    label: str
    meaning: str
    numeric: bool
    default: bool
    render: Callable[[pd.Series, Info], tuple[str, str, str]]  # -> (sort value, inner html, css)


def _p_words(p: float | None) -> str:
    """"p 0.031", "p < 0.001" kept on one line ("" without a p)."""
    return "" if p is None else "p\u00a0" + fmt_p(p).replace(" ", "\u00a0")


def _sub(text: str) -> str:
    return f'<span class="sub">{text}</span>' if text else ""


def _interval(low: object, high: object, scale: float, signed: bool) -> str:
    lo, hi = as_number(low), as_number(high)
    if lo is None or hi is None:
        return ""
    f = "+.2f" if signed else ".2f"
    return f"[{scale * lo:{f}}, {scale * hi:{f}}]" if scale != 1 else f"[{lo:.4g}, {hi:.4g}]"


def _identity(entry: pd.Series, info: Info) -> tuple[str, str, str]:
    name = str(entry.get("strategy", ""))
    star = ('<span class="star" title="a win by the rule" aria-label="win">★</span> '
            if info.win else "")
    inner = ('<button type="button" class="toggle" aria-expanded="false" '
             'aria-label="details: the cells behind this row, the command, the fingerprint">▸</button>'
             f'<span class="id">{star}{_link(name)} '
             f'<span class="role role-{esc(info.role)}">{esc(info.role)}</span>'
             f'{_sub(esc(info.where))}</span>')
    return name.lower(), inner, "identity"


def _budget(entry: pd.Series, info: Info) -> tuple[str, str, str]:
    fraction = str(entry.get("fraction", "")) if present(entry.get("fraction")) else "–"
    chosen_on = str(entry.get("chosen_on", ""))
    tag = {"validation": "chosen", "none": "fixed"}.get(chosen_on, "")
    first = as_number(fraction.split(",")[0])
    inner = (f'<span class="main">{esc(fraction)}</span>'
             + (f' <span class="tag">{tag}</span>' if tag else "")
             + _sub(esc(info.removed)) + _sub(esc(info.chose)))
    return ("" if first is None else repr(first)), inner, "wrap"


def _value(entry: pd.Series, info: Info) -> tuple[str, str, str]:
    mean = as_number(entry.get("value_mean"))
    if mean is None:
        return "", "–", "num"
    s = info.scale
    text = f"{s * mean:.2f}" if s != 1 else sig4(mean)
    spread = _interval(entry.get("value_low"), entry.get("value_high"), s, signed=False)
    std, seeds = as_number(entry.get("value_std")), as_number(entry.get("seeds")) or 0
    if not spread and std is not None and seeds > 1:  # a table without intervals: the seeds' sd
        spread = f"sd {s * std:.2f}" if s != 1 else f"sd {sig4(std)}"
    return repr(mean), f'<span class="main">{text}</span>{_sub(spread)}', "num wrap"


def _seeds(entry: pd.Series, info: Info) -> tuple[str, str, str]:
    seeds = as_number(entry.get("seeds"))
    n = as_number(entry.get("n"))
    inner = esc(row_seeds_text(entry)) + _sub(f"n = {thousands(n)}" if n is not None else "")
    return ("" if seeds is None else repr(seeds)), inner, "num wrap"


def _versus(which: str) -> Callable[[pd.Series, Info], tuple[str, str, str]]:
    """The Δ against the best baseline at equal budget ("best") or as tuned ("tuned")."""
    delta_col = f"delta_vs_{which}_mean"
    base_col = {"best": "best_baseline", "tuned": "tuned_baseline"}[which]

    def render(entry: pd.Series, info: Info) -> tuple[str, str, str]:
        delta = as_number(entry.get(delta_col))
        baseline = entry.get(base_col)
        if delta is None:
            return "", "–", "num"
        p = _p_of(delta_col, entry)
        text = _points(delta, info.scale)
        css = "num wrap noise"
        if p is not None and p < SIGNIFICANT and delta != 0:
            css = "num wrap sig " + ("up" if delta > 0 else "down")
            text = ("▲ " if delta > 0 else "▼ ") + text
        spread = _interval(entry.get(f"delta_vs_{which}_low"), entry.get(f"delta_vs_{which}_high"),
                           info.scale, signed=True)
        against = f"vs {baseline}" if present(baseline) else ""
        detail = ", ".join(x for x in (against, _p_words(p)) if x)
        return repr(delta), (f'<span class="main nw">{esc(text)}</span> '
                             f'<span class="nw">{esc(spread)}</span>'
                             f"{_sub(esc(detail))}"), css

    return render


def _verdict(entry: pd.Series, info: Info) -> tuple[str, str, str]:
    if "verdict" not in entry.index:
        return "", "–", ""
    return ("1" if info.win else "0"), ('<span class="badge win">★ WIN</span>' if info.win else ""), ""


COMPACT = [
    ("identity", "strategy", "The strategy (click ▸ or the row for the cells behind it), its role "
     "and the model and task; the name links to the strategy's description.", False, _identity),
    ("budget", "fraction · removed", "Nominal fraction (chosen on validation, or fixed), then what "
     "was really removed: singular values with their share of the selected spectrum's energy, or "
     "weights for magnitude; for searching strategies, what they chose.", True, _budget),
    ("value", "test value", "Mean test value over seeds (and folds), with its 95 % interval where "
     "the table has one (else the seeds' standard deviation).", True, _value),
    ("evidence", "seeds", "Seeds (and folds) behind the mean, and the test examples.", True, _seeds),
    ("vs_best", "Δ vs best baseline, equal budget", "Change against the best baseline at the same "
     "fraction, its 95 % interval, the baseline and the paired p.", True, _versus("best")),
    ("vs_tuned", "Δ vs best baseline, as tuned", "Change against the best baseline at its own "
     "validation-chosen fraction (the unpruned model and the majority answer included), its "
     "95 % interval, the baseline and the paired p.", True, _versus("tuned")),
    ("verdict", "verdict", "★ WIN where the rule calls this row a win; blank otherwise.", False, _verdict),
]

COMPACT_KEYS = tuple(key for key, *_ in COMPACT)


def _generic(column: str, kind: str) -> Callable[[pd.Series, Info], tuple[str, str, str]]:
    def render(entry: pd.Series, info: Info) -> tuple[str, str, str]:
        sort, text, css = _cell(column, kind, entry, info.scale)
        return sort, esc(text), css

    return render


def columns_of(table: pd.DataFrame, value_label: str) -> list[Col]:
    """The compact set (shown by default) and every other table column (offered in the chooser)."""
    cols = [Col(key, value_label if key == "value" else label, meaning, numeric, True, render)
            for key, label, meaning, numeric, render in COMPACT]
    folded = {c for c in FOLDED if c in table and len(table) and table[c].nunique(dropna=False) == 1}
    for c in table.columns:
        if c in HIDDEN or c in folded:
            continue
        kind = _kind(c, table[c])
        label, meaning, _ = KNOWN.get(c, (c, f"Column {c} of the leaderboard table.", ""))
        cols.append(Col(c, label, meaning, kind != "text", False, _generic(c, kind)))
    return cols


def _link(name: str) -> str:
    """A strategy's name linking to its description, breakable after "[" and ";" only (a
    variant's settings wrap as settings, not mid-word)."""
    parts = re.split(r"([\[;])", name)
    shown = "".join(esc(part) + ("<wbr>" if part in ("[", ";") else "") for part in parts)
    return f'<a class="strat" href="#s-{_slug(name)}">{shown}</a>'


def _slug(name: str) -> str:
    """The in-page anchor of a strategy's description (a variant links to its recipe's)."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.split("[", 1)[0].lower()).strip("-") or "strategy"


def _roles(table: pd.DataFrame, controls: set[str] | None) -> dict[str, str]:
    """method, baseline or control per strategy: a control is a baseline with random draws (the
    report says which; an older table names them in its random_controls column)."""
    controls = set(controls or ())
    for text in table.get("random_controls", pd.Series(dtype=object)).dropna().astype(str):
        controls |= {c.strip() for c in text.split(",") if c.strip()}
    roles = {}
    for _, r in table.iterrows():
        name = str(r.get("strategy", ""))
        role = str(r.get("role", "method")) if present(r.get("role")) else "method"
        roles[name] = "control" if role == "baseline" and name in controls else role
    return roles


def _in_mean(entry: pd.Series, rows: pd.DataFrame, chosen: pd.DataFrame | None) -> pd.DataFrame:
    """The test rows averaged into one table row: the report's chosen rows of its (model, task,
    strategy) at its fraction(s); without them, the raw test rows at the row's fractions."""
    source = chosen if chosen is not None and len(chosen) else rows
    sub = source
    for key in IDENTITY:
        if key in sub and key in entry:
            sub = sub[sub[key].astype(str) == str(entry[key])]
    if "split" in sub:
        sub = sub[sub["split"].astype(str) == "test"]
    if "fraction" in sub and present(entry.get("fraction")):
        wanted = {as_number(f) for f in str(entry["fraction"]).split(",")}
        sub = sub[pd.to_numeric(sub["fraction"], errors="coerce").isin(wanted)]
    if chosen is not None and "chosen_on" in sub and str(entry.get("chosen_on")) in ("none", "validation"):
        sub = sub[sub["chosen_on"].astype(str) == str(entry["chosen_on"])]
    return sub


def removed_text(sub: pd.DataFrame) -> tuple[str, str]:
    """(what was removed, what a searching strategy chose) for the rows behind a table row,
    medians over seeds: "614 of 3,072 singular values (20.0%), 3.7% of their energy"."""
    if sub.empty or "n_pruned" not in sub:
        return "", ""
    pruned = pd.to_numeric(sub["n_pruned"], errors="coerce").median()
    total = pd.to_numeric(sub.get("n_total", pd.Series(dtype=float)), errors="coerce").median()
    units = {str(u) for u in sub.get("unit", pd.Series(dtype=object)).dropna() if present(u)}
    unit = units.pop() if len(units) == 1 else "singular values or weights"
    fractions = pd.to_numeric(sub.get("fraction", pd.Series(dtype=float)), errors="coerce")
    if as_number(pruned) is None:
        text = ""
    elif pruned == 0:
        text = "nothing removed" + (" (declined to prune)" if (fractions > 0).any() else "")
    else:
        text = f"{thousands(pruned)}"
        if total and total > 0:
            text += f" of {thousands(total)} {unit} ({100 * pruned / total:.1f}%)"
        else:
            text += f" {unit}"
        energy = pd.to_numeric(sub.get("energy_kept", pd.Series(dtype=float)), errors="coerce").mean()
        if as_number(energy) is not None:
            text += f", {100 * (1 - energy):.1f}% of their energy"
    chose = []
    for raw in sub.get("details", pd.Series(dtype=object)).dropna():
        try:
            details = json.loads(str(raw))
        except ValueError:
            continue
        if isinstance(details, dict) and "chosen_fraction" in details:
            where = details.get("chosen_matrices")
            chose.append(f"{where} at {details['chosen_fraction']:g}" if where
                         else f"{details['chosen_fraction']:g}")
    said = ", ".join(dict.fromkeys(chose))
    return text, (f"searched; chose {said}" + (" (per seed)" if len(set(chose)) > 1 else "") if said else "")


def _scale_for(metric: object, percent: set[str]) -> float:
    return 100.0 if str(metric) in percent else 1.0


def _verdict_section(verdicts: pd.DataFrame | None, lines: list[str], rule: str,
                     table: pd.DataFrame, percent: set[str]) -> str:
    """The answer first: one line per (model, task) with its status and the test that decided."""
    metric_of = {}
    if {"model", "task", "metric"} <= set(table.columns):
        first = table.groupby(["model", "task"])["metric"].first()
        metric_of = {(str(m), str(t)): g for (m, t), g in first.items()}
    several = "design" in verdicts and verdicts["design"].nunique() > 1 if verdicts is not None else False
    out = ['<section id="verdict" class="verdict" aria-labelledby="verdict-h">'
           '<h2 id="verdict-h">Verdict</h2>']
    if verdicts is not None and len(verdicts) and "status" in verdicts:
        statuses = verdicts["status"].astype(str)
        wins = int((statuses == "WIN").sum())
        out.append(f'<p class="summary"><b>{wins} WIN</b> of {len(verdicts)} model × task pairs'
                   + "".join(f" · {int((statuses == s).sum())} {esc(s)}" for s in STATUS_CLASS
                             if s != "WIN" and (statuses == s).any()) + "</p>")
    if rule:
        out.append(f'<details class="rule"><summary>The rule, in plain words</summary><p>{esc(rule)}</p>'
                   "</details>")
    if verdicts is not None and len(verdicts) and "status" in verdicts:
        heads = ["model · task", "verdict", "best method", "vs best baseline, equal budget",
                 "vs best baseline, as tuned", "evidence", "decided by"]
        out.append('<table class="verdicts"><caption class="sr">One verdict per model and task</caption>'
                   "<thead><tr>" + "".join(f'<th scope="col">{h}</th>' for h in heads)
                   + "</tr></thead><tbody>")
        for _, v in verdicts.iterrows():
            scale = _scale_for(metric_of.get((str(v.get("model")), str(v.get("task")))), percent)
            status = str(v.get("status", "")) if present(v.get("status")) else "–"
            method = str(v.get("method", "")) if present(v.get("method")) else ""
            design = _sub(esc(v.get("design"))) if several and present(v.get("design")) else ""
            cells = [f'<b class="nw">{esc(v.get("model", "–"))}</b> · {esc(v.get("task", "–"))}{design}',
                     f'<span class="badge {STATUS_CLASS.get(status, "")}">'
                     f'{"★ " if status == "WIN" else ""}{esc(status)}</span>',
                     (_link(method) if method else "–"),
                     _comparison(v, "equal", scale), _comparison(v, "tuned", scale),
                     _evidence(v, scale),
                     esc(v.get("decided_by")) if present(v.get("decided_by")) else "–"]
            out.append(f'<tr class="{STATUS_CLASS.get(status, "")}">' + "".join(
                f'<td data-label="{esc(lab)}">{c}</td>' for lab, c in zip(heads, cells, strict=True))
                + "</tr>")
        out.append("</tbody></table>")
        if "line" in verdicts:
            lines = [str(x) for x in verdicts["line"] if present(x)] or lines
    elif lines:  # no verdict table: the sentences are the verdict
        out.append('<ul class="lines">' + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>")
        lines = []
    else:
        out.append("<p>No verdict: the board was given none.</p>")
    if lines:
        out.append('<details class="sentences"><summary>Every verdict in one sentence</summary><ul>'
                   + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul></details>")
    out.append("</section>")
    return "".join(out)


def _comparison(v: pd.Series, which: str, scale: float) -> str:
    delta = as_number(v.get(f"{which}_delta"))
    if delta is None:
        return "–"
    spread = _interval(v.get(f"{which}_low"), v.get(f"{which}_high"), scale, signed=True)
    p = as_number(v.get(f"{which}_p"))
    baseline = v.get(f"{which}_baseline")
    sig = p is not None and p < SIGNIFICANT
    css = ("sig " + ("up" if delta > 0 else "down")) if sig else "noise"
    head = f'<span class="{css} nw">{esc(_points(delta, scale))}</span>'
    against = f"vs {baseline}" if present(baseline) else ""
    return (f'{head} <span class="nw">{esc(spread)}</span>'
            + _sub(esc(", ".join(x for x in (against, _p_words(p)) if x))))


def _evidence(v: pd.Series, scale: float) -> str:
    text = esc(seeds_text(v.get("seeds"), v.get("folds")))
    n = as_number(v.get("n"))
    mde = as_number(v.get("mde"))
    sub = ", ".join(x for x in (f"n = {thousands(n)}" if n is not None else "",
                                f"detects ≥ {scale * mde:.1f}{' points' if scale != 1 else ''}"
                                if mde is not None else "") if x)
    needed = str(v.get("needed")) if present(v.get("needed")) else ""
    return text + _sub(esc(sub)) + (_sub("needs " + esc(needed)) if needed else "")


def _pivot(table: pd.DataFrame, infos: list[Info], roles: dict[str, str]) -> str:
    """Strategies down, model × task across: one number per cell (the row chosen on validation,
    else the best fixed fraction, named), the best of each column in bold."""
    if not {"model", "task", "strategy", "value_mean"} <= set(table.columns) or table.empty:
        return "<p>No pivot: the table lacks model, task, strategy or value.</p>"
    designs = table["design"].astype(str) if "design" in table else pd.Series("", index=table.index)
    several = designs.nunique() > 1
    pairs = sorted(set(zip(table["model"].astype(str), table["task"].astype(str), designs, strict=True)))
    picked: dict[tuple[str, str, str, str], tuple[pd.Series, Info]] = {}
    for (_, entry), info, design in zip(table.iterrows(), infos, designs, strict=True):
        key = (str(entry["strategy"]), str(entry["model"]), str(entry["task"]), design)
        have = picked.get(key)
        chosen = str(entry.get("chosen_on")) != "none"
        value = as_number(entry.get("value_mean"))
        if have is None or (chosen and str(have[0].get("chosen_on")) == "none") or (
                chosen == (str(have[0].get("chosen_on")) != "none")
                and value is not None and value > (as_number(have[0].get("value_mean")) or -math.inf)):
            picked[key] = (entry, info)
    order = {"method": 0, "control": 1, "baseline": 2}
    strategies = sorted({k[0] for k in picked}, key=lambda s: (order.get(roles.get(s, ""), 3), s))
    best = {}
    for pair in pairs:
        found = [as_number(picked[(s, *pair)][0].get("value_mean")) for s in strategies
                 if (s, *pair) in picked]
        values = [v for v in found if v is not None]
        best[pair] = max(values) if values else None
    models = sorted({m for m, _, _ in pairs})
    head = ['<tr><th scope="col" rowspan="2" class="identity">strategy</th>'
            + "".join(f'<th scope="colgroup" colspan="{sum(1 for p in pairs if p[0] == m)}">{esc(m)}</th>'
                      for m in models) + "</tr><tr>"
            + "".join(f'<th scope="col" class="num">{esc(t)}{_sub(esc(d)) if several else ""}</th>'
                      for _, t, d in pairs) + "</tr>"]
    body = []
    for s in strategies:
        cells = [f'<th scope="row" class="identity">{_link(s)} '
                 f'<span class="role role-{esc(roles.get(s, ""))}">{esc(roles.get(s, ""))}</span></th>']
        for pair in pairs:
            got = picked.get((s, *pair))
            if got is None:
                cells.append('<td class="num empty">·</td>')
                continue
            entry, info = got
            value = as_number(entry.get("value_mean"))
            text = "–" if value is None else (f"{info.scale * value:.2f}" if info.scale != 1 else sig4(value))
            fixed = str(entry.get("chosen_on")) == "none" and present(entry.get("fraction"))
            at = f" @{entry.get('fraction')}" if fixed else ""
            css = ("num" + (" top" if value is not None and value == best[pair] else "")
                   + (" win" if info.win else ""))
            star = "★ " if info.win else ""
            cells.append(f'<td class="{css}">{star}{esc(text)}'
                         f'{_sub(esc(row_seeds_text(entry) + at))}</td>')
        body.append(f'<tr data-role="{esc(roles.get(s, ""))}">' + "".join(cells) + "</tr>")
    return ('<div class="pivot-box"><table class="pivot"><caption>Test value per strategy (rows) and '
            "model × task (columns): the fraction chosen on validation, else the best fixed fraction "
            "(named); bold: the best of its column; ★: a win by the rule.</caption>"
            f'<thead>{"".join(head)}</thead><tbody>{"".join(body)}</tbody></table></div>')


def _elsewhere(tables: list[tuple[str, str, pd.DataFrame]]) -> str:
    """What a strategy costs off its task (general-text loss, other tasks), one plain table
    each; nothing when no row measured either."""
    tables = [(title, note, frame) for title, note, frame in tables if not frame.empty]
    if not tables:
        return ""
    out = ['<section id="elsewhere" aria-labelledby="elsewhere-h"><h2 id="elsewhere-h">Cost elsewhere</h2>']
    for title, note, frame in tables:
        numeric = [bool(frame[c].astype(str).str.fullmatch(r"[-+]?[\d.]+|-").all()) for c in frame.columns]
        out.append(f"<h3>{esc(title)}</h3>" + (f'<p class="hint">{esc(note)}</p>' if note else "")
                   + '<div class="scroll-x"><table class="plain"><thead><tr>'
                   + "".join(f'<th scope="col">{esc(c)}</th>' for c in frame.columns)
                   + "</tr></thead><tbody>")
        for row in frame.itertuples(index=False):
            out.append("<tr>" + "".join(f'<td{" class=num" if num else ""}>{esc(v)}</td>'
                                        for v, num in zip(row, numeric, strict=True)) + "</tr>")
        out.append("</tbody></table></div>")
    out.append("</section>")
    return "".join(out)


def _strategies(table: pd.DataFrame, roles: dict[str, str], descriptions: dict[str, str]) -> str:
    names = sorted({str(s) for s in table.get("strategy", [])})
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(_slug(name), []).append(name)
    items = []
    for slug, variants in sorted(seen.items()):
        recipe = variants[0].split("[", 1)[0]
        text = descriptions.get(recipe) or NO_DESCRIPTION
        also = [v for v in variants if v != recipe]
        role = esc(roles.get(variants[0], ""))
        items.append(f'<dt id="s-{slug}">{esc(recipe)} <span class="role role-{role}">{role}</span></dt>'
                     f"<dd>{esc(text)}"
                     + (f' <span class="sub">Variants here: {esc(", ".join(also))}</span>' if also else "")
                     + "</dd>")
    return ('<section id="strategies"><h2>Strategies</h2><dl class="glossary">' + "".join(items)
            + "</dl></section>")


def _downloads(sources: list[str], table: pd.DataFrame) -> str:
    links = []
    for s in sources:
        path = Path(s)
        if not path.is_file():
            continue
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        links.append(f'<li><a download="{esc(path.name)}" href="data:text/csv;base64,{data}">'
                     f"{esc(path.name)}</a> <span class=\"sub\">results, {path.stat().st_size:,} bytes: "
                     f"{esc(s)}</span></li>")
    board = base64.b64encode(table.to_csv(index=False).encode()).decode("ascii")
    links.append(f'<li><a download="leaderboard.csv" href="data:text/csv;base64,{board}">leaderboard.csv</a> '
                 '<span class="sub">this table, every column</span></li>')
    return ('<section id="data"><h2>Data</h2><p>The CSVs this page was built from, in it (nothing is '
            f'fetched):</p><ul class="downloads">{"".join(links)}</ul></section>')


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure class="raster"><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


CAPTIONS = {
    "eigen_heatmap.png": "Where eigen pruned: share of singular values removed per layer and head, "
                         "at the fraction chosen on validation. Click to enlarge.",
}
NO_DESCRIPTION = "No description: its plugin is not installed where this page was written."
SVG_REPLACES = {"accuracy_vs_fraction.png"}  # drawn as inline SVG panels instead


def render(table: pd.DataFrame, rows: pd.DataFrame, plots: Iterable[Path] = (),
           sources: Iterable[str] = (), title: str = "eigenharness leaderboard",
           path: str = "PATH", chosen: pd.DataFrame | None = None,
           verdicts: pd.DataFrame | None = None, lines: Iterable[str] = (), rule: str = "",
           descriptions: dict[str, str] | None = None, controls: set[str] | None = None,
           elsewhere: Iterable[tuple[str, str, pd.DataFrame]] = ()) -> str:
    """The whole page as a string. `table` is `report.table(rows)`, `rows` the raw results,
    `chosen` the test rows the report averaged (`report.choose`), `verdicts` its verdict table
    and `lines` the verdicts in words, `rule` the rule in plain words, `descriptions` each
    strategy's description by recipe name, `controls` the baselines with random draws,
    `elsewhere` the cost-elsewhere tables as (title, note, formatted frame)."""
    table = table.reset_index(drop=True)
    percent = _percent_metrics(rows)
    single_metric = "metric" in table and table["metric"].nunique() == 1
    value_label = "test value"
    if single_metric and len(table):
        metric = str(table["metric"].iloc[0])
        value_label = f"test {metric}{' (%)' if metric in percent else ''}"
    cols = columns_of(table, value_label)
    roles = _roles(table, controls)
    used, chose = _used_keys(chosen)
    width = sum(c.default for c in cols)
    several = "design" in table and table["design"].nunique() > 1
    where_keys = ("model", "task", "design") if several else ("model", "task")
    infos = []
    for _, entry in table.iterrows():
        removed, searched = removed_text(_in_mean(entry, rows, chosen))
        infos.append(Info(scale=_scale_for(entry.get("metric"), percent),
                          role=roles.get(str(entry.get("strategy", "")), "method"),
                          win=str(entry.get("verdict", "")) == "WIN", removed=removed, chose=searched,
                          where=" · ".join(str(entry[k]) for k in where_keys if present(entry.get(k)))))

    head = ["<tr>"]
    for c in cols:
        frozen = " identity" if c.key == "identity" else ""
        head.append(f'<th scope="col" data-col="{esc(c.key)}" data-type="{"num" if c.numeric else "text"}" '
                    f'class="{"num" if c.numeric else ""}{frozen}"{"" if c.default else " hidden"}>'
                    f'<button type="button" class="sort" title="{esc(c.meaning)}">{esc(c.label)}'
                    '<span class="arrow" aria-hidden="true"></span></button></th>')
    head.append("</tr>")

    bodies = []
    for (i, entry), info in zip(table.iterrows(), infos, strict=True):
        attrs = " ".join(f'data-{k}="{esc(entry.get(k, ""))}"' for k in DATA_KEYS)
        tr = [f'<tbody class="entry{" win" if info.win else ""}" data-i="{i}" {attrs} '
              f'data-role="{esc(info.role)}"><tr class="main">']
        for c in cols:
            sort, inner, css = c.render(entry, info)
            tr.append(f'<td data-col="{esc(c.key)}" data-v="{esc(sort)}" class="{css}" '
                      f'data-label="{esc(c.label)}"{"" if c.default else " hidden"}>{inner}</td>')
        tr.append("</tr>")
        chose_here = chose if str(entry.get("chosen_on", "validation")) == "validation" else set()
        tr.append(details_row(group_rows(rows, entry), used, chose_here, info.scale, width))
        tr.append("</tbody>")
        bodies.append("".join(tr))

    filters = []
    for key in FILTERS:
        values = sorted(set(roles.values()) & set(ROLES), key=ROLES.index) if key == "role" else (
            sorted(set(table[key].astype(str))) if key in table else [])
        if not values or (key in ("design", "role") and len(values) < 2):
            continue
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        filters.append(f'<label>{key} <select data-filter="{key}"><option value="">all</option>'
                       f"{options}</select></label>")
    filters.append('<label>search <input type="search" data-filter="q" placeholder="e.g. qwen int_mult" '
                   'title="Rows that contain every word, in any column"></label>')
    chooser = "".join(
        f'<li><label><input type="checkbox" data-colkey="{esc(c.key)}"{" checked" if c.default else ""}'
        f'{" disabled" if c.key == "identity" else ""}> <b>{esc(c.label)}</b></label> '
        f'<span class="meaning">{esc(c.meaning)}</span></li>' for c in cols)

    panels = board_svg.panels(rows, roles, percent)
    figures = "".join(_image(p, CAPTIONS.get(Path(p).name, Path(p).stem.replace("_", " ")))
                      for p in plots if Path(p).is_file() and Path(p).name not in SVG_REPLACES)
    sources = list(sources)
    source_list = ", ".join(f"<code>{esc(s)}</code>" for s in sources) or "–"
    regenerate = " ".join(shlex.quote(s) for s in ["harness", "leaderboard", *sources, "--html", path])
    versions = ", ".join(sorted({str(v) for v in rows.get("harness_version", []) if present(v)})) or "?"
    folded = [c for c in FOLDED if c in table and len(table) and table[c].nunique(dropna=False) == 1]
    same = " &nbsp;·&nbsp; ".join(f"{esc(KNOWN[c][0])} <b>{esc(table[c].iloc[0])}</b>" for c in folded)
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    elsewhere_html = _elsewhere(list(elsewhere))
    jump_elsewhere = ' · <a href="#elsewhere">cost elsewhere</a>' if elsewhere_html else ""
    plots_html = (f'<div class="panels">{"".join(panels)}</div>' if panels else "<p>No plots.</p>") + figures
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="eigenharness {esc(__version__)}">
<title>{esc(title)}</title>
<style>{STYLE}</style>
<noscript><style>tr.details[hidden] {{ display: table-row; }}</style></noscript>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="intro">Does any pruning method beat every baseline? The answer per model and task first;
then every strategy's test value at the fraction chosen on validation. Jump to:
<a href="#board-h">table</a> · <a href="#plots">plots</a>{jump_elsewhere}
· <a href="#strategies">strategies</a> · <a href="#data">data</a>.</p>
</header>
<main>
{_verdict_section(verdicts, list(lines), rule, table, percent)}
<section id="results" aria-labelledby="board-h">
<h2 id="board-h">All results</h2>
<p class="same">{"Every row: " + same if same else ""}</p>
<div class="filters">{"".join(filters)}
<span class="count" aria-live="polite"></span>
<button type="button" class="reset">reset</button>
<span class="views" role="group" aria-label="view">
<button type="button" data-view="table" aria-pressed="true">table</button>
<button type="button" data-view="pivot" aria-pressed="false">pivot</button></span>
</div>
<details class="chooser"><summary>Columns: choose, and what each means</summary>
<p><button type="button" data-cols="compact">compact</button>
<button type="button" data-cols="all">all columns</button></p>
<ul>{chooser}</ul></details>
<div class="view-table">
<table id="board">
<caption>Every strategy on every model and task: the test value at the fraction chosen on validation
(or fixed), against the best baseline at equal budget and as tuned. <span class="legend">
<span class="sig up">▲ +1.23</span> / <span class="sig down">▼ −1.23</span>: p &lt; {SIGNIFICANT};
<span class="noise">+1.23</span>: within noise; ★: a
win by the rule.</span> Sort with the column buttons; open a row for its cells, command and fingerprint;
the address bar keeps the view.</caption>
<thead>{"".join(head)}</thead>
{"".join(bodies)}
</table>
</div>
<div class="view-pivot" hidden>{_pivot(table, infos, roles)}</div>
</section>
<section id="plots" class="plots"><h2>Plots</h2>
<p class="hint">Test value against the fraction pruned, one panel per model and task; points: mean over
seeds with an approximate 95 % interval (examples and seeds). Methods: warm colours, solid; baselines:
cool colours, dashed; grey lines: the unpruned model and the majority answer. At most
{board_svg.MAX_LINES} strategies a panel (the best of each role); the rest are named under it.</p>
{plots_html}</section>
{elsewhere_html}
{_strategies(table, roles, descriptions or {})}
{_downloads(sources, table)}
</main>
<footer><p>Results: {source_list} ({len(rows)} rows). Written by eigenharness {esc(__version__)}
(results from harness {esc(versions)}). Regenerate: <code>{esc(regenerate)}</code></p></footer>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _used_keys(chosen: pd.DataFrame | None) -> tuple[set[tuple[str, str]], set[str]]:
    """(config_hash, split) of the test rows averaged in the table, and the config hashes chosen
    on validation: from the rows the report chose (none given: nothing to mark)."""
    if chosen is None or chosen.empty or "config_hash" not in chosen:
        return set(), set()
    used = {(str(h), "test") for h in chosen["config_hash"]}
    on_validation = chosen["chosen_on"].astype(str) == "validation" if "chosen_on" in chosen else False
    return used, {str(h) for h in chosen.loc[on_validation, "config_hash"]}


def write(path: Path, table: pd.DataFrame, rows: pd.DataFrame, plots: Iterable[Path] = (),
          sources: Iterable[str] = (), **decided) -> Path:
    """Write the page atomically (a crash leaves the old page, never half a page); `decided`
    is what `render` takes from the report: chosen, verdicts, lines, rule, descriptions."""
    path = Path(path)
    text = render(table, rows, plots, sources, path=str(path), **decided)
    with atomic.replacing(path) as f:
        f.write(text.encode("utf-8"))
    return path

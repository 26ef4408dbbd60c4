"""`harness leaderboard --html`: the leaderboard as one page people can browse and share.

One self-contained file: styles, script and plots (base64 data URIs) are inline, nothing is
fetched, so it works opened from disk, attached to a mail or committed beside its CSVs. The
table is rendered here, in Python, so every number is in the HTML as text and the page reads
without JavaScript; the small inline script only sorts, filters and opens rows. Everything that
comes from a CSV (task and strategy names come from plugins and users' YAMLs) goes through
`html.escape`; the script reads values from data attributes and writes only `textContent`, and
a Content-Security-Policy lets no script run but the page's own (pinned by its hash).

Table columns are rendered generically: known ones get a label, a tooltip and a format, any
other column `report.table` grows is still shown (numbers to 4 significant digits).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import shlex
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from harness import __version__

SIGNIFICANT = 0.05

# column -> (label, tooltip, kind); kinds: text, fraction, value, delta, p, int, float
KNOWN: dict[str, tuple[str, str, str]] = {
    "model": ("model", "Model name, directory or hub id.", "text"),
    "task": ("task", "Task; the table reports its test split.", "text"),
    "strategy": ("strategy", "Pruning strategy; none is the unpruned model, majority the training "
                 "split's most common answer given to every example (no model).", "text"),
    "fraction": ("fraction", "Pruning budget: the fraction chosen on the validation split, one per "
                 "seed (or the fraction run, where nothing was chosen).", "fraction"),
    "chosen_on": ("chosen on", "Split the fraction was chosen on; none: every fraction is its own row.",
                  "text"),
    "metric": ("metric", "The task's metric.", "text"),
    "split": ("split", "Split the value is reported on.", "text"),
    "value_mean": ("test value (mean ± std)", "Mean ± standard deviation over seeds.", "value"),
    "delta_mean": ("Δ vs none", "Change against the unpruned model on the same examples, mean over "
                   "seeds; bold and marked where p < 0.05.", "delta"),
    "p_value_median": ("p vs none", "Paired test against the unpruned model on the same examples "
                       "(exact McNemar for accuracy), median over seeds.", "p"),
    "seeds": ("seeds", "Number of seeds averaged.", "int"),
    "n": ("n", "Test examples.", "int"),
    "n_pruned": ("pruned", "Singular values (or weights) removed, median over seeds.", "int"),
    "nll_mean": ("test NLL", "Negative log-likelihood of the answers, mean over seeds.",
                 "float"),
    "nll_delta_mean": ("Δ NLL", "Change of the NLL against the unpruned model, mean over seeds.", "float"),
    "role": ("role", "baseline: a comparison a method must beat; method: everything else.", "text"),
    "best_baseline": ("best baseline", "The baseline with the highest mean test value at the same "
                      "fraction (equal budget).", "text"),
    "delta_vs_best_mean": ("Δ vs best", "Change against the best equal-budget baseline, mean over "
                           "seeds.", "delta"),
    "p_vs_best_median": ("p vs best", "Paired test against the best equal-budget baseline on the "
                         "same examples, median over seeds.", "p"),
    "p_seeds_vs_random": ("p seeds vs random", "Permutation test of this strategy's seeds against "
                          "the seeds of every baseline run with several seeds (random-sv, a "
                          "method's own random control) at each fraction they chose, the largest p.",
                          "p"),
    "random_seeds": ("control seeds", "The fewest seeds a random control has at this strategy's "
                     "fraction: with two or more, a method needs enough seeds for the permutation "
                     "test against them to reach p < 0.05 (3 against 4, not 2) to be judged a win.",
                     "int"),
    "random_controls": ("random controls", "The baselines with several seeds this strategy's "
                        "seeds were tested against.", "text"),
    "tuned_baseline": ("best tuned baseline", "The baseline (the unpruned model and the majority "
                       "answer included) with the "
                       "highest mean test value at its own validation-chosen fraction: what a user "
                       "who tuned the baseline would get.", "text"),
    "delta_vs_tuned_mean": ("Δ vs tuned", "Change against the best tuned baseline's row of the same "
                            "seed, mean over seeds.", "delta"),
    "p_vs_tuned_median": ("p vs tuned", "Paired test against the best tuned baseline on the same "
                          "examples, median over seeds; a win needs p < 0.05 here too.", "p"),
    "delta_vs_eigen_mean": ("Δ vs eigen", "Change against eigen's row of the same seed, each at "
                            "its own validation-chosen fraction, mean over seeds.", "delta"),
    "p_vs_eigen_median": ("p vs eigen", "Paired test against eigen's row of the same seed on the "
                          "same examples, median over seeds.", "p"),
}
DELTA_P = {"delta_vs_best_mean": "p_vs_best_median",  # a Δ is marked by its own test's p
           "delta_vs_tuned_mean": "p_vs_tuned_median", "delta_vs_eigen_mean": "p_vs_eigen_median"}
HIDDEN = {"value_std"}  # shown inside value_mean
# columns dropped from the table when they hold one value for every row; the line above the
# table names that value (and the value column's header names the metric and split)
FOLDED = ("model", "metric", "split", "chosen_on")
FILTERS = ("model", "task", "strategy")
# raw-row columns shown per cell in a row's details, in this order, where present
CELL_COLUMNS = ["split", "fraction", "seed", "value", "stderr", "n", "delta", "p_value", "n_pruned",
                "nll", "nll_delta"]
RECIPE_COLUMNS = ["unit", "n_total", "matrices", "scorer", "pruner", "compensate", "calibration_size",
                  "layers", "threshold", "limit", "dtype", "calibration_batch_size", "details"]
# raw-row columns that become `harness bench` options when recorded (forward compatible)
EXTRA_OPTIONS = [("layers", "--layers"), ("threshold", "--threshold"), ("limit", "--limit"),
                 ("dtype", "--dtype"), ("calibration_batch_size", "--calibration-batch-size")]


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return str(value).strip() != ""


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _sig(value: float) -> str:
    """4 significant digits, integers as integers."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _exact(value: float) -> str:
    """A number for a command line: every digit (a rounded fraction would be another cell)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _int(value: float) -> str:
    """Counts with thousands separators (165,870 weights), as the README writes them."""
    return f"{int(value):,}" if float(value).is_integer() else _sig(value)


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


def _cell(column: str, kind: str, row: pd.Series, scale: float) -> tuple[str, str, str]:
    """(sort value, display text, css class) of one table cell."""
    value = row.get(column)
    number = _number(value)
    if kind == "text":
        text = str(value) if _present(value) else "–"
        return (text if _present(value) else ""), text, ""
    if kind == "fraction":
        first = str(value).split(",")[0] if _present(value) else ""
        return (str(_number(first)) if _number(first) is not None else ""), str(value), "num"
    if number is None:
        return "", "–", "num"
    if kind == "value":
        std = _number(row.get("value_std"))
        text = f"{scale * number:.2f}" if scale != 1 else _sig(number)
        if std is not None:
            text += f" ± {scale * std:.2f}" if scale != 1 else f" ± {_sig(std)}"
        return repr(number), text, "num"
    if kind == "delta":
        p = _number(row.get(DELTA_P.get(column, "p_value_median")))
        text = f"{scale * number:+.2f}" if scale != 1 else f"{number:+.4g}"
        if p is not None and p < SIGNIFICANT and number != 0:
            up = number > 0
            return repr(number), ("▲ " if up else "▼ ") + text, "num sig " + ("up" if up else "down")
        return repr(number), text, "num noise"
    if kind == "p":
        return repr(number), f"{number:.3g}", "num" + (" sig" if number < SIGNIFICANT else "")
    if kind == "int":
        return repr(number), _int(number), "num"
    return repr(number), _sig(number), "num"


def _group_rows(rows: pd.DataFrame, entry: pd.Series) -> pd.DataFrame:
    """The raw rows behind one table row: its (model, task, strategy), and where the table shows
    each fraction on its own (nothing chosen), only that row's fractions."""
    sub = rows
    for key in FILTERS:
        if key in rows and key in entry:
            sub = sub[sub[key].astype(str) == str(entry[key])]
    if str(entry.get("chosen_on")) == "none" and "fraction" in sub:
        wanted = {_number(f) for f in str(entry.get("fraction", "")).split(",")}
        sub = sub[pd.to_numeric(sub["fraction"], errors="coerce").isin(wanted)]
    order = [c for c in ("split", "fraction", "seed") if c in sub]
    if "split" in sub:
        sub = sub.assign(_split_order=sub["split"].astype(str).map({"validation": 0, "test": 1}).fillna(2))
        order = ["_split_order"] + [c for c in order if c != "split"]
    return sub.sort_values(order, kind="stable") if order else sub


def command(group: pd.DataFrame) -> str:
    """The `harness bench` line that reruns every cell behind a table row (the whole sweep the
    fraction was chosen from). The recipe is spelt out even where it is the strategy's default,
    so the line still means the same run if a default changes later. Seeds run with different
    run settings (say, a smaller calibration batch for memory) get one line each, joined by
    `&&`: one line would rerun some of them with the wrong setting."""
    settings = [c for c, _ in EXTRA_OPTIONS if c in group]
    if settings:
        keyed = group[settings].astype(str)  # unset settings ("nan") group together
        parts = [part for _, part in group.groupby([keyed[c] for c in settings], sort=False, dropna=False)]
        if len(parts) > 1:
            return " && ".join(_command(part) for part in parts)
    return _command(group)


def _command(group: pd.DataFrame) -> str:
    from harness.strategy import recipe_name, variant_settings

    first = group.iloc[0]
    parts = ["harness", "bench"]
    for key in ("model", "task"):
        parts += [f"--{key}", str(first.get(key, ""))]
    name = str(first.get("strategy", ""))
    parts += ["--strategy", recipe_name(name)]  # a variant's label is made by its flags below
    fractions = sorted({f for f in (_number(v) for v in group.get("fraction", [])) if f is not None})
    spectral_or_pruned = _present(first.get("matrices")) or any(f > 0 for f in fractions)
    if spectral_or_pruned and fractions:
        parts += ["--fraction", ",".join(map(_exact, fractions))]
    seeds = sorted({int(s) for s in (_number(v) for v in group.get("seed", [])) if s is not None})
    if seeds:
        parts += ["--seed", ",".join(map(str, seeds))]
    if _present(first.get("matrices")):
        parts += ["--matrices", str(first["matrices"])]
    if _present(first.get("scorer")):
        parts += ["--scorer", str(first["scorer"])]
    if _present(first.get("pruner")):
        parts += ["--pruner", str(first["pruner"])]
        compensate = str(first.get("compensate")).strip().lower() in ("true", "1")
        parts.append("--compensate" if compensate else "--no-compensate")
    calibration = _number(first.get("calibration_size"))
    if calibration and _present(first.get("scorer")):  # only scorers read the calibration sample
        parts += ["--calibration-size", str(int(calibration))]
    for column, option in EXTRA_OPTIONS:
        if column in group and _present(first.get(column)):
            value = first[column]
            parts += [option, _exact(value) if isinstance(value, float) else str(value)]
    for key, value in variant_settings(name).items():  # columns above spell the recipe's fields
        if key == "objective":
            parts += ["--objective", value]
        elif key not in ("matrices", "scorer", "pruner", "compensate"):
            parts += ["--option", f"{key}={value}"]
    if "split" in group and not (group["split"].astype(str) == "validation").any():
        parts += ["--select-on", "none"]
    return " ".join(shlex.quote(p) for p in parts)


def _fmt_raw(column: str, value: object, scale: float) -> str:
    if not _present(value):
        return "–"
    number = _number(value)
    if number is None or isinstance(value, bool) or column == "split":
        return str(value)
    if column in ("value", "stderr") and scale != 1:
        return f"{scale * number:.2f}"
    if column == "delta" and scale != 1:
        return f"{scale * number:+.2f}"
    if column == "p_value":
        return f"{number:.3g}"
    if column in ("fraction",):
        return f"{number:g}"
    if column in ("n", "n_pruned", "n_total"):
        return _int(number)
    return _sig(number)


def _details(group: pd.DataFrame, used: set[tuple[str, str]], chose: set[str], scale: float,
             width: int) -> str:
    """The row's details: each raw cell, the fingerprint, the command. `chose` is empty where
    the table says nothing was chosen (the unpruned model, `--select-on none`)."""
    cells = [c for c in CELL_COLUMNS if c in group]
    out = [f'<tr class="details" hidden><td colspan="{width}"><div class="detail-body">']
    unit = " (%)" if scale != 1 else ""
    out.append('<section class="cells-box"><h3>Cells behind this row</h3><table class="cells"><thead><tr>')
    for c in cells:
        out.append(f"<th>{_esc(c + unit if c in ('value', 'stderr', 'delta') else c)}</th>")
    out.append("<th>role</th><th>config hash</th></tr></thead><tbody>")
    for _, r in group.iterrows():
        key = (str(r.get("config_hash", "")), str(r.get("split", "")))
        role = "in the mean" if key in used else ("chose the fraction" if key[0] in chose
                                                 and key[1] == "validation" else "")
        out.append(f'<tr class="{"used" if role else ""}">')
        out += [f'<td class="{"" if c == "split" else "num"}">{_esc(_fmt_raw(c, r.get(c), scale))}</td>'
                for c in cells]
        out.append(f"<td>{_esc(role)}</td><td><code>{_esc(r.get('config_hash', ''))}</code></td></tr>")
    out.append("</tbody></table></section>")
    out.append('<section class="fingerprint"><h3>Fingerprint</h3><dl>')
    fingerprint = [c for c in group.columns if c.endswith(("_hash", "_version"))]
    fingerprint = sorted(fingerprint, key=lambda c: (c != "config_hash", c != "model_hash", c))
    for c in fingerprint + [c for c in RECIPE_COLUMNS if c in group] + ["source"]:
        if c not in group:
            continue
        values = [str(v) for v in dict.fromkeys(group[c]) if _present(v)]
        if c == "config_hash":  # the cells in the mean (every cell's hash is in the table above)
            values = [v for v in values if (v, "test") in used] or values
        if values:
            out.append(f"<dt>{_esc(c)}</dt><dd>" + " ".join(
                f"<code>{_esc(v)}</code>" for v in values) + "</dd>")
    out.append("</dl></section>")
    out.append('<section class="cmd-box"><h3>Reproduce</h3><pre><code class="cmd">'
               f"{_esc(command(group))}</code></pre>"
               '<p class="hint">Reruns every cell above into leaderboard/results.csv (add --output to '
               "choose another file; tasks that read local data also need --data-dir).</p></section>")
    out.append("</div></td></tr>")
    return "".join(out)


def _best(table: pd.DataFrame) -> pd.Series:
    """True on the rows with the highest value_mean of their (model, task)."""
    if "value_mean" not in table or not {"model", "task"} <= set(table.columns):
        return pd.Series(False, index=table.index)
    values = pd.to_numeric(table["value_mean"], errors="coerce")
    top = values.groupby([table["model"].astype(str), table["task"].astype(str)]).transform("max")
    return values.notna() & (values == top)


def _used_keys(rows: pd.DataFrame) -> tuple[set[tuple[str, str]], set[str]]:
    """(config_hash, split) of the test rows averaged in the table, and the config hashes chosen
    on validation; both recomputed with report.choose, the table's own rule."""
    from harness import report
    from harness.errors import HarnessError

    try:
        chosen = report.choose(rows)
    except (HarnessError, KeyError, AttributeError):  # nothing chosen: nothing to mark
        return set(), set()
    used = {(str(h), "test") for h in chosen["config_hash"]}
    return used, {str(h) for h in chosen.loc[chosen["chosen_on"] == "validation", "config_hash"]}


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(caption)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


CAPTIONS = {
    "accuracy_vs_fraction.png": "Test value against the fraction pruned, mean ± std over seeds per "
                                "strategy; dashed: the unpruned model, dotted: the majority answer. Click to "
                                "enlarge.",
    "eigen_heatmap.png": "Where eigen pruned: share of singular values removed per layer and head, "
                         "at the fraction chosen on validation. Click to enlarge.",
}


def render(table: pd.DataFrame, rows: pd.DataFrame, plots: Iterable[Path] = (),
           sources: Iterable[str] = (), title: str = "eigenharness leaderboard",
           path: str = "PATH") -> str:
    """The whole page as a string; `table` is `report.table(rows)`, `rows` the raw results."""
    table = table.reset_index(drop=True)
    single_metric = "metric" in table and table["metric"].nunique() == 1
    folded = [c for c in FOLDED if c in table and len(table) and table[c].nunique(dropna=False) == 1]
    columns = [c for c in table.columns if c not in HIDDEN and c not in folded]
    kinds = {c: _kind(c, table[c]) for c in columns}
    percent = _percent_metrics(rows)
    best = _best(table)
    used, chose = _used_keys(rows)
    width = len(columns) + 1

    head = ['<tr><th class="toggle-col" scope="col"><span class="sr">details</span></th>']
    for c in columns:
        label, tip, _ = KNOWN.get(c, (c, f"Column {c} of the leaderboard table.", ""))
        if c == "value_mean" and single_metric:
            metric = str(table["metric"].iloc[0])
            split = str(table["split"].iloc[0]) if "split" in table else "test"
            label = f"{split} {metric}{' (%)' if metric in percent else ''} (mean ± std)"
        num = kinds[c] != "text"
        head.append(f'<th scope="col" data-col="{_esc(c)}" data-type="{"num" if num else "text"}" '
                    f'title="{_esc(tip)}" tabindex="0" class="{"num" if num else ""}">'
                    f'{_esc(label)}<span class="arrow"></span></th>')
    head.append("</tr>")

    bodies = []
    for i, entry in table.iterrows():
        scale = 100.0 if str(entry.get("metric")) in percent else 1.0
        attrs = " ".join(f'data-{k}="{_esc(entry.get(k, ""))}"' for k in FILTERS)
        cls = "entry best" if best[i] else "entry"
        tr = [f'<tbody class="{cls}" data-i="{i}" {attrs}><tr class="main">'
              '<td class="toggle-col"><button type="button" class="toggle" aria-expanded="false" '
              'title="Show the cells behind this row, the command and the fingerprint">▸</button></td>']
        for c in columns:
            sort, text, css = _cell(c, kinds[c], entry, scale)
            star = ('<span class="star" title="best test value on this model and task">★ </span>'
                    if c == "strategy" and best[i] else "")
            tr.append(f'<td data-col="{_esc(c)}" data-v="{_esc(sort)}" class="{css}">{star}'
                      f"{_esc(text)}</td>")
        tr.append("</tr>")
        chose_here = chose if str(entry.get("chosen_on", "validation")) == "validation" else set()
        tr.append(_details(_group_rows(rows, entry), used, chose_here, scale, width))
        tr.append("</tbody>")
        bodies.append("".join(tr))

    filters = []
    for key in FILTERS:
        if key not in table:
            continue
        options = "".join(f'<option value="{_esc(v)}">{_esc(v)}</option>'
                          for v in sorted(set(table[key].astype(str))))
        filters.append(f'<label>{key} <select data-filter="{key}"><option value="">all</option>'
                       f"{options}</select></label>")
    filters.append('<label>text <input type="search" data-filter="q" placeholder="filter rows"></label>')

    figures = "".join(_image(p, CAPTIONS.get(Path(p).name, Path(p).stem.replace("_", " ")))
                      for p in plots if Path(p).is_file())
    sources = list(sources)
    source_list = ", ".join(f"<code>{_esc(s)}</code>" for s in sources) or "–"
    regenerate = " ".join(shlex.quote(s) for s in ["harness", "leaderboard", *sources, "--html", path])
    versions = ", ".join(sorted({str(v) for v in rows.get("harness_version", []) if _present(v)})) or "?"
    same = " &nbsp;·&nbsp; ".join(f"{_esc(KNOWN[c][0])} <b>{_esc(table[c].iloc[0])}</b>" for c in folded)
    same = f"Every row: {same}" if same else ""
    script = SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="eigenharness {_esc(__version__)}">
<title>{_esc(title)}</title>
<style>{STYLE}</style>
<noscript><style>tr.details[hidden] {{ display: table-row; }}</style></noscript>
</head>
<body>
<header>
<h1>{_esc(title)}</h1>
<p>Each strategy's pruning fraction is chosen on the <b>validation</b> split; the table reports the
<b>test</b> split at that fraction, mean ± std over seeds. Δ is against the unpruned model
(<code>none</code>) on the same examples, p the paired test against it (median over seeds).
Click a column to sort, a row to see the cells behind it, the command that reproduces them and
their fingerprint. The address bar keeps the sort and the filters: copy it to share this view.</p>
<p class="legend"><span class="best-swatch">★ best</span> highest test value of its model and task
&nbsp; <span class="sig up">▲ +1.23</span> / <span class="sig down">▼ −1.23</span> significant change
(p &lt; {SIGNIFICANT}) &nbsp; <span class="noise">+1.23</span> within noise (p ≥ {SIGNIFICANT})</p>
</header>
<main>
<p class="same">{same}</p>
<div class="filters">{"".join(filters)} <span class="count" aria-live="polite"></span>
<button type="button" class="reset">reset</button></div>
<div class="scroll"><table id="board">
<thead>{"".join(head)}</thead>
{"".join(bodies)}
</table></div>
<section class="plots"><h2>Plots</h2>{figures or "<p>No plots.</p>"}</section>
</main>
<footer><p>Results: {source_list} ({len(rows)} rows). Written by eigenharness {_esc(__version__)}
(results from harness {_esc(versions)}). Regenerate: <code>{_esc(regenerate)}</code></p></footer>
<script>{script}</script>
</body>
</html>
"""


def write(path: Path, table: pd.DataFrame, rows: pd.DataFrame, plots: Iterable[Path] = (),
          sources: Iterable[str] = ()) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(table, rows, plots, sources, path=str(path)), encoding="utf-8")
    tmp.replace(path)  # a crash leaves the old page, never half a page
    return path


STYLE = """
:root { --fg: #1d2329; --muted: #5f6b76; --line: #d8dee4; --best: #fff6d6; --up: #116329;
  --down: #b3261e; --head: #f3f5f7; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: #fff; }
header, main, footer { max-width: 1500px; margin: 0 auto; padding: 0 20px; }
h1 { font-size: 22px; margin: 18px 0 6px; }
h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 13px; margin: 4px 0 6px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
header p { margin: 4px 0; max-width: 130ch; color: var(--muted); }
.legend { font-size: 13px; }
.best-swatch { background: var(--best); padding: 1px 6px; border: 1px solid #e8d48a; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; margin: 14px 0 10px; }
.filters label { font-size: 13px; color: var(--muted); }
.filters select, .filters input { font: inherit; padding: 3px 6px; margin-left: 4px; max-width: 260px; }
.count { color: var(--muted); font-size: 13px; }
p.same { margin: 12px 0 0; font-size: 13px; color: var(--muted); }
p.same b { color: var(--fg); font-weight: 600; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table#board { border-collapse: collapse; width: 100%; font-size: 13.5px; }
#board > thead th { position: sticky; top: 0; background: var(--head); text-align: left;
  font-weight: 600; padding: 7px 8px; border-bottom: 2px solid var(--line); cursor: pointer;
  user-select: none; vertical-align: bottom; min-width: 4em; }
#board > thead th:hover, #board > thead th:focus { color: var(--accent); outline: none; }
#board > thead th .arrow { color: var(--accent); white-space: nowrap; }
#board > thead th[aria-sort=ascending] .arrow::after { content: "\\00a0▲"; }
#board > thead th[aria-sort=descending] .arrow::after { content: "\\00a0▼"; }
#board > tbody > tr.main > td { padding: 5px 8px; border-top: 1px solid var(--line);
  white-space: nowrap; }
#board > tbody > tr.main { cursor: pointer; }
#board > tbody > tr.main:hover { background: #f0f6fc; }
#board > tbody.best > tr.main { background: var(--best); }
#board > tbody.best > tr.main:hover { background: #fbefc0; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
#board th.num { text-align: right; }
.star { color: #b58100; }
.sig { font-weight: 700; }
.sig.up { color: var(--up); }
.sig.down { color: var(--down); }
.noise { color: var(--muted); }
td.sig:not(.up):not(.down) { color: var(--fg); }
.toggle-col { width: 28px; text-align: center; }
.toggle { border: 0; background: none; cursor: pointer; font-size: 13px; color: var(--accent);
  padding: 0 4px; }
tbody.open .toggle { transform: rotate(90deg); }
tr.details > td { background: #fafbfc; border-top: 1px dashed var(--line); padding: 10px 16px 14px 40px; }
.detail-body { display: flex; flex-wrap: wrap; gap: 12px 40px; align-items: flex-start; }
.detail-body section { flex: 0 1 auto; min-width: 0; max-width: 100%; }
.detail-body section.fingerprint { flex: 1 1 320px; }
.detail-body section.cmd-box { flex: 1 1 100%; }
section.cells-box { overflow-x: auto; }
table.cells { border-collapse: collapse; font-size: 12.5px; }
table.cells th, table.cells td { padding: 2px 8px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
table.cells th { color: var(--muted); font-weight: 600; }
table.cells td.num { text-align: right; }
table.cells tr.used td { font-weight: 600; }
pre { margin: 0; padding: 8px 10px; background: #f3f5f7; border: 1px solid var(--line);
  border-radius: 4px; white-space: pre-wrap; word-break: break-all; font-size: 12.5px; }
.hint { font-size: 12px; color: var(--muted); margin: 4px 0 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; font-size: 12.5px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
dd code { display: inline-block; margin-right: 10px; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
.plots figure { margin: 0 0 22px; }
.plots img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line);
  cursor: zoom-in; }
.plots img.zoom { max-width: none; cursor: zoom-out; }
.plots figure.zoomed { overflow-x: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
footer { color: var(--muted); font-size: 12.5px; margin: 24px auto 30px; }
.sr { position: absolute; left: -9999px; }
.reset { font: inherit; font-size: 13px; padding: 2px 10px; }
"""

# Reads values only from data attributes and writes only textContent / attributes: never markup.
SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("board");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells, 1);
  var bodies = Array.prototype.slice.call(table.tBodies);
  var filters = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));
  var count = document.querySelector(".count");
  var sortCol = "", sortDir = "";

  function cellValue(body, col) {
    var cell = body.querySelector('td[data-col="' + CSS.escape(col) + '"]');
    return cell ? cell.getAttribute("data-v") : "";
  }

  function sortBy(th, dir) {
    var col = th.getAttribute("data-col"), numeric = th.getAttribute("data-type") === "num";
    var sign = dir === "descending" ? -1 : 1;
    var keyed = bodies.map(function (b) {
      var raw = cellValue(b, col);
      return { body: b, empty: raw === "", v: numeric ? parseFloat(raw) : raw.toLowerCase(),
               i: +b.getAttribute("data-i") };
    });
    keyed.sort(function (a, b) {
      if (a.empty !== b.empty) { return a.empty ? 1 : -1; }  // missing values last either way
      if (a.v < b.v) { return -sign; }
      if (a.v > b.v) { return sign; }
      return a.i - b.i;
    });
    keyed.forEach(function (k) { table.appendChild(k.body); });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    sortCol = col; sortDir = dir;
  }

  function onHeadClick(ev) {
    var th = ev.currentTarget;
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    sortBy(th, dir);
    save();
  }

  function applyFilters() {
    var shown = 0;
    var want = {};
    filters.forEach(function (f) { want[f.getAttribute("data-filter")] = f.value; });
    var q = (want.q || "").toLowerCase();
    bodies.forEach(function (b) {
      var ok = ["model", "task", "strategy"].every(function (k) {
        return !want[k] || b.getAttribute("data-" + k) === want[k];
      });
      if (ok && q) { ok = b.rows[0].textContent.toLowerCase().indexOf(q) !== -1; }
      if (ok) { b.removeAttribute("hidden"); shown++; } else { b.setAttribute("hidden", ""); }
    });
    count.textContent = shown + " of " + bodies.length + " rows";
  }

  function save() {
    var p = new URLSearchParams();
    if (sortCol) { p.set("sort", sortCol); if (sortDir === "descending") { p.set("dir", "desc"); } }
    filters.forEach(function (f) { if (f.value) { p.set(f.getAttribute("data-filter"), f.value); } });
    try { history.replaceState(null, "", "#" + p.toString()); } catch (e) { /* file: may refuse */ }
  }

  function toggle(body) {
    var details = body.rows[1], open = details.hasAttribute("hidden");
    if (open) { details.removeAttribute("hidden"); } else { details.setAttribute("hidden", ""); }
    body.classList.toggle("open", open);
    body.querySelector(".toggle").setAttribute("aria-expanded", open ? "true" : "false");
  }

  heads.forEach(function (th) {
    th.addEventListener("click", onHeadClick);
    th.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); th.click(); }
    });
  });
  bodies.forEach(function (b) {
    b.rows[0].addEventListener("click", function () {
      if (!window.getSelection().toString()) { toggle(b); }
    });
  });
  filters.forEach(function (f) {
    f.addEventListener(f.tagName === "INPUT" ? "input" : "change", function () { applyFilters(); save(); });
  });
  document.querySelector(".reset").addEventListener("click", function () {
    filters.forEach(function (f) { f.value = ""; });
    bodies.slice().sort(function (a, b) { return a.getAttribute("data-i") - b.getAttribute("data-i"); })
      .forEach(function (b) { table.appendChild(b); });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    sortCol = ""; sortDir = "";
    applyFilters(); save();
  });
  Array.prototype.forEach.call(document.querySelectorAll(".plots img"), function (img) {
    img.addEventListener("click", function () {
      img.classList.toggle("zoom");
      img.parentNode.classList.toggle("zoomed");
    });
  });

  // a shared link: #sort=COLUMN&dir=desc&model=..&task=..&strategy=..&q=..&open=N
  var state = new URLSearchParams(location.hash.replace(/^#/, ""));
  filters.forEach(function (f) {
    var v = state.get(f.getAttribute("data-filter"));
    if (v !== null) { f.value = v; }
  });
  applyFilters();
  var th = heads.filter(function (h) { return h.getAttribute("data-col") === state.get("sort"); })[0];
  if (th) {
    th.click();  // the same handler a reader's click runs
    if (state.get("dir") === "desc") { th.click(); }
  }
  (state.get("open") || "").split(",").forEach(function (i) {
    var b = table.querySelector('tbody[data-i="' + CSS.escape(i) + '"]');
    if (b && i !== "") { toggle(b); }
  });
  document.documentElement.setAttribute("data-ready", "1");
})();
"""

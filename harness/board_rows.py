"""The cells behind one leaderboard row, shown when it is opened, and the `harness bench`
line that reruns exactly them (tested against the grid's config hashes)."""

from __future__ import annotations

import json
import shlex

import pandas as pd

from harness.board_format import as_number, esc, exact, fmt_nll_delta, fmt_p, present, sig4, thousands
from harness.recipes import recipe_name, variant_settings
from harness.run_settings import LABEL, RECORDED, RUN, SETTING, WITH_PRUNER, WITH_SCORER

IDENTITY = ("model", "task", "design", "strategy")  # rows of another design are other runs
# raw-row columns shown per cell in a row's details, in this order, where present
CELL_COLUMNS = ["split", "fraction", "seed", "value", "stderr", "n", "delta", "p_value", "n_pruned",
                "nll", "nll_delta"]
# the run settings a row records, in the order its details list them and its command spells them
# (the board's order: a regenerated board stays byte for byte); how each is spelt, and from which
# column, is in the table of harness/run_settings.py
SHOWN = [SETTING[name] for name in ("matrices", "scorer", "pruner", "compensate", "calibration_size",
                                    "layers", "threshold", "limit", "dtype", "calibration_batch_size")]
RECIPE_COLUMNS = ["unit", "n_total", "energy_kept", *(s.column for s in SHOWN), "details"]
# settings of the run rather than the recipe (the strategy's name fixes those): seeds run with
# different values of one get a command line each
RUN_COLUMNS = [s.column for s in SHOWN if s.rebuilt == RECORDED and s.hashed == RUN]


def group_rows(rows: pd.DataFrame, entry: pd.Series) -> pd.DataFrame:
    """The raw rows behind one table row: its (model, task, strategy), and where the table shows
    each fraction on its own (nothing chosen), only that row's fractions."""
    sub = rows
    for key in IDENTITY:
        if key in rows and key in entry:
            sub = sub[sub[key].astype(str) == str(entry[key])]
    if str(entry.get("chosen_on")) == "none" and "fraction" in sub:
        wanted = {as_number(f) for f in str(entry.get("fraction", "")).split(",")}
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
    settings = [c for c in RUN_COLUMNS if c in group]
    if settings:
        keyed = group[settings].astype(str)  # unset settings ("nan") group together
        parts = [part for _, part in group.groupby([keyed[c] for c in settings], sort=False,
                                                     dropna=False)]
        if len(parts) > 1:
            return " && ".join(_command(part) for part in parts)
    return _command(group)


def _command(group: pd.DataFrame) -> str:
    first = group.iloc[0]
    parts = ["harness", "bench"]
    for key in ("model", "task"):
        parts += [f"--{key}", str(first.get(key, ""))]
    name = str(first.get("strategy", ""))
    parts += ["--strategy", recipe_name(name)]  # a variant's label is made by its flags below
    fractions = sorted({f for f in (as_number(v) for v in group.get("fraction", [])) if f is not None})
    spectral_or_pruned = present(first.get("matrices")) or any(f > 0 for f in fractions)
    if spectral_or_pruned and fractions:
        parts += ["--fraction", ",".join(map(exact, fractions))]
    seeds = sorted({int(s) for s in (as_number(v) for v in group.get("seed", [])) if s is not None})
    if seeds:
        parts += ["--seed", ",".join(map(str, seeds))]
    for s in SHOWN:
        value = first.get(s.column)
        if s.rebuilt == RECORDED and present(value):
            parts += [s.flag, exact(value) if isinstance(value, float) else str(value)]
        elif s.rebuilt == WITH_PRUNER and present(first.get("pruner")):
            on, off = s.flag.split("/")
            parts.append(on if str(value).strip().lower() in ("true", "1") else off)
        elif s.rebuilt == WITH_SCORER and as_number(value) and present(first.get("scorer")):
            parts += [s.flag, str(int(as_number(value)))]
    for key, value in variant_settings(name).items():  # the label's overrides, as their own flags
        setting = SETTING.get(key)
        if setting is None or not setting.recipe:  # a strategy's own option
            parts += [SETTING["options"].flag, f"{key}={value}"]
        elif setting.rebuilt == LABEL:  # (the others were spelt from their columns above)
            parts += [setting.flag, value]
    folds = as_number(first.get(SETTING["folds"].column))
    if folds:  # (rebuilt=FOLDED)
        parts += [SETTING["folds"].flag, str(int(folds))]
    also = _transfer_tasks(group.get(SETTING["also_eval"].column, []))
    if also:  # (rebuilt=TRANSFER)
        parts += [SETTING["also_eval"].flag, ",".join(also)]
    if "split" in group and not (group["split"].astype(str) == "validation").any():
        parts += [SETTING["select_on"].flag, "none"]  # (rebuilt=SPLITS)
    return " ".join(shlex.quote(p) for p in parts)


def _transfer_tasks(cells: object) -> list[str]:
    """The --also-eval tasks a group's cells were measured on (their transfer column's keys)."""
    names: set[str] = set()
    for cell in cells:
        if isinstance(cell, str) and cell.startswith("{"):
            names |= set(json.loads(cell))
    return sorted(names)


def fmt_raw(column: str, value: object, scale: float) -> str:
    if not present(value):
        return "–"
    number = as_number(value)
    if number is None or isinstance(value, bool) or column == "split":
        return str(value)
    if column in ("value", "stderr") and scale != 1:
        return f"{scale * number:.2f}"
    if column == "delta" and scale != 1:
        return f"{scale * number:+.2f}"
    if column == "p_value":
        return fmt_p(number)
    if column == "nll_delta":
        return fmt_nll_delta(number)
    if column == "energy_kept":
        return f"{100 * number:.2f}%"
    if column == "fraction":
        return f"{number:g}"
    if column in ("n", "n_pruned", "n_total"):
        return thousands(number)
    return sig4(number)


def details_row(group: pd.DataFrame, used: set[tuple[str, str]], chose: set[str], scale: float,
             width: int) -> str:
    """The row's details: each raw cell, the fingerprint, the command. `chose` is empty where
    the table says nothing was chosen (the unpruned model, `--select-on none`)."""
    cells = [c for c in CELL_COLUMNS if c in group]
    out = [f'<tr class="details" hidden><td colspan="{width}"><div class="detail-body">']
    unit = " (%)" if scale != 1 else ""
    out.append('<section class="cells-box"><h3>Cells behind this row</h3><table class="cells"><thead><tr>')
    for c in cells:
        out.append(f"<th>{esc(c + unit if c in ('value', 'stderr', 'delta') else c)}</th>")
    out.append("<th>role</th><th>config hash</th></tr></thead><tbody>")
    for _, r in group.iterrows():
        key = (str(r.get("config_hash", "")), str(r.get("split", "")))
        role = "in the mean" if key in used else ("chose the fraction" if key[0] in chose
                                                 and key[1] == "validation" else "")
        out.append(f'<tr class="{"used" if role else ""}">')
        out += [f'<td class="{"" if c == "split" else "num"}">{esc(fmt_raw(c, r.get(c), scale))}</td>'
                for c in cells]
        out.append(f"<td>{esc(role)}</td><td><code>{esc(r.get('config_hash', ''))}</code></td></tr>")
    out.append("</tbody></table></section>")
    out.append('<section class="fingerprint"><h3>Fingerprint</h3><dl>')
    fingerprint = [c for c in group.columns if c.endswith(("_hash", "_version"))]
    fingerprint = sorted(fingerprint, key=lambda c: (c != "config_hash", c != "model_hash", c))
    for c in fingerprint + [c for c in RECIPE_COLUMNS if c in group] + ["source"]:
        if c not in group:
            continue
        values = [str(v) for v in dict.fromkeys(group[c]) if present(v)]
        if c == "config_hash":  # the cells in the mean (every cell's hash is in the table above)
            values = [v for v in values if (v, "test") in used] or values
        if values:
            out.append(f"<dt>{esc(c)}</dt><dd>" + " ".join(
                f"<code>{esc(v)}</code>" for v in values) + "</dd>")
    out.append("</dl></section>")
    out.append('<section class="cmd-box"><h3>Reproduce</h3><pre><code class="cmd">'
               f"{esc(command(group))}</code></pre>"
               '<p class="hint">Reruns every cell above into leaderboard/results.csv (add --output to '
               "choose another file; tasks that read local data also need --data-dir).</p></section>")
    out.append("</div></td></tr>")
    return "".join(out)

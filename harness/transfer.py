"""The board's cost-elsewhere sections: general-text loss per point gained, and transfer.

A strategy that gains on its task may pay for it on everything else. Two tables say how much:
the change of the general-text probe's loss (harness/general.py) next to the task points
gained at the chosen budget, and, for cells run with `--also-eval`, each pruned model measured
on the other tasks (pruned for A, measured on B) against the unpruned model there.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _fmt(value: float, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def cost_markdown(t: pd.DataFrame) -> str:
    """General loss against task points, per pruned strategy at its chosen budget (the table
    `report.table` made); empty when no row measured the probe."""
    if "general_nll_delta_mean" not in t or t.general_nll_delta_mean.isna().all():
        return ""
    lines = ["", "## Cost elsewhere: general-text loss per point gained", "",
             "Δ general NLL: nats per token on the fixed general-text probe, pruned minus unpruned "
             "(mean over seeds); per point: that change divided by the task points gained "
             "(only where the strategy gained).", "",
             "| model | task | strategy | fraction (chosen on) | Δ task points | Δ general NLL "
             "| Δ general NLL per point gained | seeds |", "|---|---|---|---|---|---|---|---|"]
    for r in t[t.general_nll_delta_mean.notna() & (t.fraction != "0")].itertuples():
        points = 100 * r.delta_mean
        per_point = r.general_nll_delta_mean / points if points > 0 else float("nan")
        lines.append(f"| {r.model} | {r.task} | {r.strategy} | {r.fraction} ({r.chosen_on}) | "
                     f"{points:+.2f} | {_fmt(r.general_nll_delta_mean, '+.4f')} | "
                     f"{_fmt(per_point, '+.4f')} | {r.seeds} |")
    return "\n".join(lines) + "\n"


def transfer_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, measured task) from the `transfer` column (a cell's rows of every split
    carry the same measurement: it is read once per cell)."""
    if "transfer" not in df:
        return pd.DataFrame()
    cells = df[df.transfer.fillna("").astype(str).str.startswith("{")].drop_duplicates("config_hash")
    out = [{"model": r.model, "pruned_for": r.task, "strategy": r.strategy, "fraction": r.fraction,
            "seed": r.seed, "measured_on": name, **m}
           for r in cells.itertuples() for name, m in json.loads(r.transfer).items()]
    return pd.DataFrame(out)


def transfer_markdown(df: pd.DataFrame) -> str:
    """Pruned for A, measured on B: mean over seeds of B's metric, the unpruned model's, the
    change, and the median paired p-value; empty when no cell ran with --also-eval."""
    rows = transfer_rows(df)
    if rows.empty:
        return ""
    lines = ["", "## Transfer: pruned for one task, measured on another (--also-eval)", "",
             "| model | pruned for | strategy | fraction | measured on | value | unpruned | Δ points "
             "| ΔNLL | p (median) | seeds | n |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = ["model", "pruned_for", "strategy", "fraction", "measured_on"]
    for key, g in rows.groupby(keys, sort=True):
        model, pruned_for, strategy, fraction, measured_on = key
        lines.append(f"| {model} | {pruned_for} | {strategy} | {fraction:g} | {measured_on} | "
                     f"{100 * g.value.mean():.2f} | {100 * g.baseline.mean():.2f} | "
                     f"{100 * g.delta.mean():+.2f} | {_fmt(g.nll_delta.mean(), '+.3f')} | "
                     f"{_fmt(g.p_value.median(), '.3g')} | {len(g)} | {int(g.n.iloc[0])} |")
    return "\n".join(lines) + "\n"

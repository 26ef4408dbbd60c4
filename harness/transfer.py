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


COST_TITLE = "Cost elsewhere: general-text loss per point gained"
COST_NOTE = ("Δ general NLL: nats per token on the fixed general-text probe, pruned minus unpruned "
             "(mean over seeds); per point: that change divided by the task points gained "
             "(only where the strategy gained).")
TRANSFER_TITLE = "Transfer: pruned for one task, measured on another (--also-eval)"
TRANSFER_NOTE = ("Each pruned cell measured on another task: mean over seeds of that task's metric, "
                 "the unpruned model's there, the change, and the median paired p-value.")


def cost_table(t: pd.DataFrame) -> pd.DataFrame:
    """General loss against task points, per pruned strategy at its chosen budget (from the table
    `report.table` made), formatted for reading; empty when no row measured the probe. The
    markdown board and the page both print this one frame."""
    if "general_nll_delta_mean" not in t or t.general_nll_delta_mean.isna().all():
        return pd.DataFrame()
    out = []
    for r in t[t.general_nll_delta_mean.notna() & (t.fraction != "0")].itertuples():
        points = 100 * r.delta_mean
        gained = round(points, 2) > 0  # a float's 1e-14 from equal means is no gain to divide by
        per_point = r.general_nll_delta_mean / points if gained else float("nan")
        out.append({"model": r.model, "task": r.task, "design": getattr(r, "design", "task split"),
                    "strategy": r.strategy, "fraction (chosen on)": f"{r.fraction} ({r.chosen_on})",
                    "Δ task points": f"{points:+.2f}",
                    "Δ general NLL": _fmt(r.general_nll_delta_mean, "+.4f"),
                    "Δ general NLL per point gained": _fmt(per_point, "+.4f"), "seeds": str(r.seeds)})
    return pd.DataFrame(out)


def transfer_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (cell, measured task) from the `transfer` column (a cell's rows of every split
    carry the same measurement: it is read once per cell)."""
    if "transfer" not in df:
        return pd.DataFrame()
    cells = df[df.transfer.fillna("").astype(str).str.startswith("{")].drop_duplicates("config_hash")
    out = [{"model": r.model, "pruned_for": r.task, "design": getattr(r, "design", "task split"),
            "strategy": r.strategy, "fraction": r.fraction, "seed": r.seed, "measured_on": name, **m}
           for r in cells.itertuples() for name, m in json.loads(r.transfer).items()]
    return pd.DataFrame(out)


def transfer_table(df: pd.DataFrame) -> pd.DataFrame:
    """Pruned for A, measured on B, one row per (model, A, strategy, fraction, B), formatted for
    reading; empty when no cell ran with --also-eval."""
    rows = transfer_rows(df)
    if rows.empty:
        return pd.DataFrame()
    keys = ["model", "pruned_for", "design", "strategy", "fraction", "measured_on"]
    out = []
    for (model, pruned_for, design, strategy, fraction, measured_on), g in rows.groupby(keys, sort=True):
        out.append({"model": model, "pruned for": pruned_for, "design": design, "strategy": strategy,
                    "fraction": f"{fraction:g}", "measured on": measured_on,
                    "value": f"{100 * g.value.mean():.2f}", "unpruned": f"{100 * g.baseline.mean():.2f}",
                    "Δ points": f"{100 * g.delta.mean():+.2f}", "ΔNLL": _fmt(g.nll_delta.mean(), "+.3f"),
                    "p (median)": _fmt(g.p_value.median(), ".3g"), "seeds": str(len(g)),
                    "n": str(int(g.n.iloc[0]))})
    return pd.DataFrame(out)


def _markdown(title: str, note: str | None, frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    lines = ["", f"## {title}", ""] + ([note, ""] if note else [])
    lines += ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def cost_markdown(cost: pd.DataFrame) -> str:
    """`cost_table`'s frame as the board's markdown section (empty frame: nothing)."""
    return _markdown(COST_TITLE, COST_NOTE, cost)


def transfer_markdown(moved: pd.DataFrame) -> str:
    """`transfer_table`'s frame as the board's markdown section (empty frame: nothing)."""
    return _markdown(TRANSFER_TITLE, None, moved)

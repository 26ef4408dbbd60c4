"""How the leaderboard page and report write numbers: one notation for each kind of number.

A p of 7.8e-07 beside one of 0.0577 reads as two kinds of number, and "± 0.00" beside a
single seed claims a certainty nobody measured; these helpers are the one place that decides.
"""

from __future__ import annotations

import html
import math


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return str(value).strip() != ""


def as_number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def sig4(value: float) -> str:
    """4 significant digits, integers as integers."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def exact(value: float) -> str:
    """A number for a command line: every digit (a rounded fraction would be another cell)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def thousands(value: float) -> str:
    """Counts with thousands separators (165,870 weights), as the README writes them."""
    return f"{int(value):,}" if float(value).is_integer() else sig4(value)


def fmt_p(value: object) -> str:
    """Every p on the page in one notation: three decimals, and "< 0.001" below that (a
    p of 7.8e-07 next to one of 0.0577 reads as a different kind of number)."""
    p = as_number(value)
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_nll_delta(value: object) -> str:
    """NLL changes signed, at one fixed precision (nats)."""
    d = as_number(value)
    return "–" if d is None else f"{d:+.3f}"


def seeds_text(seeds: object, folds: object = None, partial: object = None) -> str:
    """"1 seed", "4 seeds", "4 seeds × 5 folds (+1 partial)": the evidence behind a mean, in
    words; a partial seed (not every fold yet) is named but is not in the mean."""
    k = as_number(seeds)
    if k is None:
        return "–"
    text = f"{int(k)} seed" + ("" if int(k) == 1 else "s")
    f = as_number(folds)
    if f:
        text += f" × {int(f)} folds"
    extra = as_number(partial)
    if extra:
        text += f" (+{int(extra)} partial)"
    return text


def row_seeds_text(row) -> str:
    """`seeds_text` of a board row (a dict or a pandas row)."""
    return seeds_text(row.get("seeds"), row.get("folds"), row.get("seeds_partial"))

"""The page's plots: small multiples, one inline SVG per (model, task), readable at page width.

Written as SVG text here rather than by matplotlib: a vector image scales with the panel
(a raster shrunk to half its width loses its labels), it is a few kilobytes, and it lives in
the page (no data URI, no fetch). Each panel draws at most `MAX_LINES` strategies so the lines
stay apart: the unpruned model and the majority answer as reference levels, the best
baselines in cool colours (dashed) and the best methods in warm colours (solid); the rest are
named under the panel and stay in the table. A strategy run at one fraction is a point with
its interval, never a line; a panel where every strategy ran one fraction is a dot plot.

Intervals are approximate 95 % ones (± 1.96 standard errors) over examples and seeds: the
example-level standard error the row recorded, and the spread of the seeds' means, combined.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

MAX_LINES = 8
METHOD_COLOURS = ("#c2255c", "#e8590c", "#9c6500", "#862e9c", "#d6336c")  # warm: methods
BASELINE_COLOURS = ("#1864ab", "#087f5b", "#495057", "#4c6ef5")  # cool: baselines
REFERENCE_DASH = {"none": ("#495057", "6 3")}  # the unpruned model; any other reference: dotted
OTHER_REFERENCE = ("#adb5bd", "1.5 3")
NAME_WIDTH = 150  # a dot plot's strategy names
REFERENCE_ROOM = 46  # a line plot's margin for the reference levels' names
WIDTH, HEIGHT = 440, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 24, 34


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def summarise(test: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, fraction): mean test value and its approximate 95 % half-width.

    The seeds' evaluations share the examples, so the examples' variance does not shrink with
    the number of seeds; the seeds' own spread does: SE^2 = mean(stderr^2) + var(seeds) / k.
    """
    value = pd.to_numeric(test["value"], errors="coerce")
    stderr = pd.to_numeric(test.get("stderr", pd.Series(np.nan, index=test.index)), errors="coerce")
    frame = pd.DataFrame({"strategy": test["strategy"].astype(str),
                          "fraction": test["fraction"].astype(float), "value": value, "se2": stderr**2})
    g = frame.groupby(["strategy", "fraction"])
    out = g.agg(mean=("value", "mean"), var=("value", "var"), k=("value", "size"), se2=("se2", "mean"))
    se = np.sqrt(out["se2"].fillna(0) + out["var"].fillna(0) / out["k"])
    return out.assign(half=1.96 * se).reset_index()


def pick(stats: pd.DataFrame, roles: dict[str, str],
         references: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(references, baselines, methods) drawn, best first by their best mean; at most
    MAX_LINES in all, methods and baselines sharing what the references leave."""
    best = stats.groupby("strategy")["mean"].max().sort_values(ascending=False)
    refs = [s for s in best.index if s in references][:2]
    room = MAX_LINES - len(refs)
    baselines = [s for s in best.index if s not in references and roles.get(s) != "method"]
    methods = [s for s in best.index if s not in references and roles.get(s) == "method"]
    n_methods = min(len(methods), len(METHOD_COLOURS), max(room - min(len(baselines), 3), room // 2))
    n_baselines = min(len(baselines), len(BASELINE_COLOURS), room - n_methods)
    return refs, baselines[:n_baselines], methods[:n_methods]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    start = math.ceil(low / step) * step
    return [round(start + i * step, 10) for i in range(int((high - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"


def reference_style(name: str) -> tuple[str, str]:
    return REFERENCE_DASH.get(name, OTHER_REFERENCE)


def _reference_line(name: str, colour: str, dash: str, level: float) -> str:
    """The rest of a reference level's <line>: its style and a tooltip with its value."""
    return (f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}">'
            f"<title>{_esc(name)}: {level:.2f}</title></line>")


def _key(colour: str, dash: str = "", point: bool = False) -> str:
    """A legend swatch drawn like the line it stands for (dashes included)."""
    mark = f'<circle cx="11" cy="5" r="3.5" fill="{colour}"/>' if point else ""
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<svg class="key" width="22" height="10" aria-hidden="true"><line x1="0" y1="5" x2="22" y2="5" '
            f'stroke="{colour}" stroke-width="2.5"{dashes}/>{mark}</svg>')


def panel(test: pd.DataFrame, roles: dict[str, str], title: str, scale: float, unit: str) -> str:
    """One panel's <figure>: an SVG and its legend, from the test rows of one (model, task)."""
    stats = summarise(test)
    references = {s for s, g in stats.groupby("strategy") if (g["fraction"] == 0).all()}
    refs, baselines, methods = pick(stats, roles, references)
    drawn = refs + baselines + methods
    left_out = sorted(set(stats["strategy"]) - set(drawn))
    colours = {s: c for s, c in zip(methods, METHOD_COLOURS, strict=False)}
    colours |= {s: c for s, c in zip(baselines, BASELINE_COLOURS, strict=False)}
    shown = stats[stats["strategy"].isin(baselines + methods)]
    fractions = sorted(set(shown["fraction"]))
    dot_plot = len(fractions) <= 1
    levels = {r: float(stats[stats["strategy"] == r]["mean"].mean()) * scale for r in refs}
    bounds = list((shown["mean"] - shown["half"]) * scale) + list((shown["mean"] + shown["half"]) * scale)
    bounds += list(levels.values())
    v_low, v_high = (min(bounds), max(bounds)) if bounds else (0.0, 1.0)
    pad = (v_high - v_low) * 0.06 or 1.0
    v_low, v_high = v_low - pad, v_high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_esc(title)}: test value '
             f'against the fraction pruned" xmlns="http://www.w3.org/2000/svg"><title>{_esc(title)}</title>']
    order = baselines + methods
    if dot_plot:  # strategies down the side, the value across: each a point with its interval
        x0 = LEFT + NAME_WIDTH - 40
        step = plot_h / max(len(order), 1)

        def x_of(v: float) -> float:
            return x0 + (v - v_low) / (v_high - v_low) * (WIDTH - RIGHT - x0)

        for t in _ticks(v_low, v_high):
            x = x_of(t)
            parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" class="grid"/>'
                         f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" class="tick" text-anchor="middle">'
                         f"{_fmt(t)}</text>")
        for k, (r, level) in enumerate(levels.items()):
            colour, dash = reference_style(r)
            x = x_of(level)
            parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" '
                         f"{_reference_line(r, colour, dash, level)}"
                         f'<text x="{x:.1f}" y="{TOP - 4 - 10 * k}" class="reflabel" text-anchor="middle">'
                         f"{_esc(r)}</text>")
        for i, s in enumerate(order):
            y = TOP + step * (i + 0.5)
            r = shown[shown["strategy"] == s].iloc[0]
            m, h = r["mean"] * scale, r["half"] * scale
            parts.append(f'<text x="{x0 - 8}" y="{y + 4:.1f}" class="name" text-anchor="end">'
                         f"<title>{_esc(s)}</title>{_esc(_short(s))}</text>"
                         f'<line x1="{x_of(m - h):.1f}" y1="{y:.1f}" x2="{x_of(m + h):.1f}" y2="{y:.1f}" '
                         f'stroke="{colours[s]}" stroke-width="2"/>'
                         f'<circle cx="{x_of(m):.1f}" cy="{y:.1f}" r="4.5" fill="{colours[s]}">'
                         f"<title>{_esc(s)}: {m:.2f} ± {h:.2f}</title></circle>")
        if baselines and methods:  # a rule between the roles
            y = TOP + step * len(baselines)
            parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>')
        at = f" at fraction {fractions[0]:g}" if fractions else ""
        parts.append(f'<text x="{(x0 + WIDTH - RIGHT) / 2:.1f}" y="{HEIGHT - 4}" class="axis" '
                     f'text-anchor="middle">{_esc(unit)}{_esc(at)}</text>')
        x_axis = (x0, WIDTH - RIGHT)
    else:
        plot_w -= REFERENCE_ROOM  # the reference levels are named right of the plot
        span = fractions[-1] - fractions[0]
        f_low, f_high = fractions[0] - 0.07 * span, fractions[-1] + 0.07 * span
        dodge = 2.5  # px between strategies at one fraction, so their intervals do not hide each other

        def x_of(f: float) -> float:
            return LEFT + (f - f_low) / (f_high - f_low) * plot_w

        def y_of(v: float) -> float:
            return TOP + (v_high - v) / (v_high - v_low) * plot_h

        for t in _ticks(v_low, v_high):
            y = y_of(t)
            parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" class="grid"/>'
                         f'<text x="{LEFT - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                         f"{_fmt(t)}</text>")
        for f in fractions:
            parts.append(f'<text x="{x_of(f):.1f}" y="{TOP + plot_h + 14}" class="tick" '
                         f'text-anchor="middle">{_fmt(f)}</text>')
        for r, level in levels.items():
            colour, dash = reference_style(r)
            y = y_of(level)
            parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                         f"{_reference_line(r, colour, dash, level)}"
                         f'<text x="{LEFT + plot_w + 3}" y="{y + 3:.1f}" class="reflabel">'
                         f"{_esc(r)}</text>")
        for i, s in enumerate(order):
            g = shown[shown["strategy"] == s].sort_values("fraction")
            shift = (i - (len(order) - 1) / 2) * dodge
            dash = ' stroke-dasharray="5 3"' if s in baselines else ""
            points = [(x_of(f) + shift, y_of(m * scale))
                      for f, m in zip(g["fraction"], g["mean"], strict=True)]
            if len(points) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{colours[s]}" '
                             f'stroke-width="1.8"{dash}/>')
            for (x, y), m, h in zip(points, g["mean"], g["half"], strict=True):
                top, bottom = y_of((m + h) * scale), y_of((m - h) * scale)
                parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                             f'stroke="{colours[s]}" stroke-width="1" opacity=".55"/>'
                             f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3 if len(points) > 1 else 4.5}" '
                             f'fill="{colours[s]}"><title>{_esc(s)} at {g["fraction"].iloc[0]:g}…: '
                             f"{m * scale:.2f} ± {h * scale:.2f}</title></circle>")
        parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" class="axis" '
                     f'text-anchor="middle">fraction pruned</text>'
                     f'<text x="12" y="{TOP + plot_h / 2:.1f}" class="axis" text-anchor="middle" '
                     f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">{_esc(unit)}</text>')
        x_axis = (LEFT, LEFT + plot_w)
    parts.append(f'<line x1="{x_axis[0]:.1f}" y1="{TOP + plot_h}" x2="{x_axis[1]:.1f}" y2="{TOP + plot_h}" '
                 'class="frame"/></svg>')
    legend = [f"<li>{_key(*reference_style(r))}{_esc(r)} <small>reference</small></li>" for r in refs]
    single = {s for s in order if (shown["strategy"] == s).sum() == 1}
    legend += [f"<li>{_key(colours[s], '5 3', s in single)}{_esc(s)} <small>baseline</small></li>"
               for s in baselines]
    legend += [f"<li>{_key(colours[s], '', s in single)}{_esc(s)}</li>" for s in methods]
    more = f'<p class="more">Not drawn (see the table): {_esc(", ".join(left_out))}</p>' if left_out else ""
    return (f'<figure class="panel"><figcaption>{_esc(title)}</figcaption>{"".join(parts)}'
            f'<ul class="keys">{"".join(legend)}</ul>{more}</figure>')


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def panels(rows: pd.DataFrame, roles: dict[str, str], percent: set[str]) -> list[str]:
    """Every (model, task) panel, from the raw rows' test split."""
    if rows.empty or not {"model", "task", "strategy", "fraction", "value", "split"} <= set(rows.columns):
        return []
    test = rows[rows["split"].astype(str) == "test"]
    design = test["design"].astype(str) if "design" in test else pd.Series("", index=test.index)
    several = design.nunique() > 1  # rows of another design are other runs: a panel of their own
    out = []
    for (model, task, kind), g in test.groupby([test["model"].astype(str), test["task"].astype(str), design],
                                               sort=True):
        metric = str(g["metric"].iloc[0]) if "metric" in g else "value"
        scale = 100.0 if metric in percent else 1.0
        unit = f"test {metric}" + (" (%)" if scale != 1 else "")
        out.append(panel(g, roles, f"{model} · {task}" + (f" · {kind}" if several else ""), scale, unit))
    return out

"""`harness leaderboard`: results CSVs -> comparative table (CSV, Markdown) and plots.

Honest selection: for each model x task x strategy x seed (and fold, with `--folds`), the
fraction is chosen on the validation rows and the *test* row of that fraction is reported;
test never takes part in the choice. Groups without validation rows (runs with
`--select-on none`, or one fraction) report every fraction as its own setting, marked
`chosen_on = none`. Rows made with a different design (folds, evaluation limit, dtype) are
never compared or chosen across: each design gets its own rows and verdict.

What the rows are then compared with, and how a verdict is reached (paired effects with
intervals over seeds and examples, Holm across methods, power), is harness/analysis.py and
docs/statistics.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import analysis, board_html, board_svg, leaderboard, transfer
from harness.analysis import ALPHA, RULE_TEXT  # noqa: F401 (the board's rule, re-exported)
from harness.board_format import fmt_p, row_seeds_text, seeds_text
from harness.errors import HarnessError, warn
from harness.plugins import registry
from harness.recipes import recipe_name, variant_settings

KEYS = ["model", "task", "design", "strategy"]


def baseline_names(strategies, rows: pd.DataFrame | None = None) -> set[str]:
    """Strategies that are baselines (a method must beat them), per their plugins' declaration;
    one whose plugin is not installed where the board is built keeps the role its `rows` recorded."""
    try:
        table = registry().components["strategies"]
    except Exception:  # a broken plugin must not stop a board from being read
        table = {}
    recorded = set() if rows is None or "role" not in rows else set(rows.strategy[rows.role == "baseline"])

    def is_baseline(name: str) -> bool:
        recipe = recipe_name(name)  # a variant (`random-sv[matrices=all]`) is its recipe's kind
        if recipe in table:
            return table[recipe].value.baseline
        return name in recorded

    return {s for s in strategies if is_baseline(s)}


def _read(path: Path) -> pd.DataFrame:
    """The complete rows of one results CSV; a truncated last line is reported and left out."""
    results = leaderboard.scan(path)  # an error, naming the file, when it is not a results CSV
    if results.torn:
        warn(results.torn_note())
    if not results.rows:
        return pd.DataFrame(columns=leaderboard.COLUMNS)
    return pd.read_csv(path, nrows=len(results.rows))


def load(paths: list[Path], model=None, task=None, strategy=None) -> pd.DataFrame:
    frames = []
    for p in paths:
        if not Path(p).is_file():
            raise HarnessError(f"results file '{p}' does not exist")
        df = _read(Path(p))
        df["source"] = str(p)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df = df.drop_duplicates(["config_hash", "split"], keep="last")
    # results written before loss, folds, limit or dtype were recorded
    for column, default in (("nll", np.nan), ("nll_delta", np.nan), ("folds", 0), ("fold", -1),
                            ("limit", np.nan), ("dtype", ""), ("unit", ""),
                            ("general_nll", np.nan), ("general_nll_delta", np.nan)):
        df[column] = df[column].fillna(default) if column in df else default
    df["folds"], df["fold"] = df.folds.astype(int), df.fold.astype(int)
    df["design"] = analysis.design_labels(df)
    for column, wanted in (("model", model), ("task", task), ("strategy", strategy)):
        if wanted:
            keep = set(wanted)
            unknown = keep - set(df[column])
            if unknown:
                raise HarnessError(
                    f"--{column} '{sorted(unknown)[0]}' is not in the results; choose from: "
                    f"{', '.join(sorted(map(str, set(df[column]))))}")
            df = df[df[column].isin(keep)]
    return df


def choose(df: pd.DataFrame) -> pd.DataFrame:
    """One test row per (model, task, design, strategy, seed, fold): the fraction that won on
    validation, within that fold (its test fold never takes part in the choice)."""
    picked = []
    df = df.assign(**{c: d for c, d in (("design", ""), ("fold", -1)) if c not in df})
    for _, group in df.groupby(KEYS + ["seed", "fold"], sort=True):
        test = group[group.split == "test"]
        val = group[group.split == "validation"]
        if test.empty:
            continue
        if val.empty:
            picked.append(test.assign(chosen_on="none"))
            continue
        # best validation value; ties go to the smaller fraction (prune less)
        best = val.sort_values(["value", "fraction"], ascending=[False, True]).iloc[0]
        row = test[test.config_hash == best.config_hash]
        picked.append(row.assign(chosen_on="validation", validation_value=best.value))
    if not picked:
        raise HarnessError("no test rows in the results; run `harness bench` on a task with a test split")
    return pd.concat(picked, ignore_index=True)


def strategy_flags(rows: pd.DataFrame) -> dict[str, tuple[bool, bool]]:
    """{strategy: (is a baseline, is seeded)} as its plugin declares; a strategy whose plugin is
    not installed where the board is built keeps its recorded role and is taken as seeded (the
    rule then asks it for seeds rather than assume it has no seed noise)."""
    try:
        registered = registry().components["strategies"]
    except Exception:  # a broken plugin must not stop a board from being read
        registered = {}
    strategies = sorted(set(rows.strategy))
    baselines = baseline_names(strategies, rows)
    flags = {}
    for name in strategies:
        recipe = registered.get(recipe_name(name))
        # a variant can be seeded where its recipe is not: bench marks it so when the seed can
        # move its scores (another scorer, objective or compensation draws a calibration sample)
        moved = {"scorer", "objective", "compensate"} & set(variant_settings(name))
        # (a strategy with no budget, the unpruned model, runs once whatever --seed says)
        seeded = recipe is None or (recipe.value.seeded and recipe.value.uses_fraction) or bool(moved)
        flags[name] = (name in baselines, bool(seeded))
    return flags


def table(df: pd.DataFrame) -> pd.DataFrame:
    """The board: one row per (model, task, design, strategy, setting); its verdicts, one per
    (model, task, design), ride along in `attrs` (`verdict_table`). See harness/analysis.py."""
    chosen = choose(df)
    setting = np.where(chosen.chosen_on == "none", chosen.fraction.astype(str), "chosen")
    chosen = chosen.assign(setting=setting)
    # a strategy recorded under several names would be judged twice; flags come from plugins
    t, verdict_rows = analysis.board(df, chosen, strategy_flags(df))
    t.attrs["verdicts"] = verdict_rows
    return t


def verdict_table(t: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, design): the best method, its effects with intervals against
    the best baseline at equal budget and as tuned, WIN / NO WIN / UNDERPOWERED and why."""
    return t.attrs.get("verdicts", pd.DataFrame())


def verdicts(t: pd.DataFrame) -> list[str]:
    """The verdicts in words, one line per (model, task, design)."""
    found = verdict_table(t)
    return [] if found.empty else list(found.line)


def _cell(r: dict, column: str, fmt: str, scale: float = 1.0) -> str:
    value = r.get(column)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return format(scale * value, fmt)


def _spread(r: dict, low: str, high: str, scale: float, fmt: str) -> str:
    lo, hi = r.get(low), r.get(high)
    if lo is None or hi is None or np.isnan(lo) or np.isnan(hi):
        return ""
    return f" [{format(scale * lo, fmt)}, {format(scale * hi, fmt)}]"


def _where(r: dict, designs: bool) -> str:
    return f"| {r['model']} | {r['task']} |" + (f" {r.get('design', '–')} |" if designs else "")


def _versus(r: dict, prefix: str, delta: str) -> str:
    """"+10.00 [+4.00, +16.00]": a change in points with its 95% interval where there is one."""
    return _cell(r, delta, "+.2f", 100) + _spread(r, f"{prefix}_low", f"{prefix}_high", 100, "+.2f")


def _verdict_rows(frame: pd.DataFrame | None, designs: bool) -> list[str]:
    """The verdict table in Markdown: status, method and both comparisons per model and task."""
    if frame is None or frame.empty or "status" not in frame:
        return []
    out = ["| model | task |" + (" design |" if designs else "") + " verdict | best method | "
           "Δ vs best baseline, equal budget [95%] | Δ vs best baseline, as tuned [95%] | seeds | "
           "decided by |", "|" + "---|" * (8 + designs)]
    for r in frame.to_dict("records"):
        cells = []
        for which in ("equal", "tuned"):
            if r.get(f"{which}_delta") is None or np.isnan(r[f"{which}_delta"]):
                cells.append("–")
                continue
            cells.append(f"{_versus(r, which, f'{which}_delta')} vs {r.get(f'{which}_baseline') or '–'}, "
                         f"p {fmt_p(r.get(f'{which}_p'))}")
        out.append(f"{_where(r, designs)} **{r['status']}** | {r.get('method') or '–'} | {cells[0]} | "
                   f"{cells[1]} | {seeds_text(r.get('seeds'), r.get('folds'))} | "
                   f"{r.get('decided_by') or '–'} |")
    return out + [""]


def markdown(t: pd.DataFrame, lines: list[str] | None = None, frame: pd.DataFrame | None = None) -> str:
    """The verdict first (its table, one sentence per model and task, and the rule), then every
    row: the test value with its 95% interval where there is one ("1 seed" is said, never
    "± 0.00"), changes in points with their intervals, p-values in the page's notation."""
    lines = verdicts(t) if lines is None else lines
    frame = verdict_table(t) if frame is None else frame
    designs = "design" in t and t.design.nunique() > 1
    out = ["## Verdict", "", f"Fraction chosen on validation, test reported, alpha = {ALPHA}.", ""]
    out += _verdict_rows(frame, designs)
    out += [f"- {line}" for line in lines]
    out += ["", f"**The rule.** {RULE_TEXT}", "", "## All results", "",
            "| model | task |" + (" design |" if "design" in t else "") + " strategy | role | fraction "
            "(chosen on) | test " + str(t.metric.iloc[0]) + " [95% interval] | seeds | best baseline "
            "(equal budget) | Δ vs it [95%] | p | best baseline (as tuned) | Δ vs it [95%] | p | "
            "Δ vs eigen [95%] | p | Holm p | verdict | NLL | ΔNLL |",
            "|" + "---|" * (19 + ("design" in t))]
    for r in t.to_dict("records"):
        out.append(
            f"{_where(r, 'design' in t)} {r['strategy']} | {r.get('role', '–')} | "
            f"{r['fraction']} ({r['chosen_on']}) | "
            f"{100 * r['value_mean']:.2f}{_spread(r, 'value_low', 'value_high', 100, '.2f')} | "
            f"{row_seeds_text(r)} | {r.get('best_baseline') or '–'} | "
            f"{_versus(r, 'delta_vs_best', 'delta_vs_best_mean')} | {fmt_p(r.get('p_vs_best'))} | "
            f"{r.get('tuned_baseline') or '–'} | {_versus(r, 'delta_vs_tuned', 'delta_vs_tuned_mean')} | "
            f"{fmt_p(r.get('p_vs_tuned'))} | {_versus(r, 'delta_vs_eigen', 'delta_vs_eigen_mean')} | "
            f"{fmt_p(r.get('p_vs_eigen'))} | {fmt_p(r.get('p_holm'))} | "
            f"{'**WIN**' if r.get('verdict') == 'WIN' else ''} | {_cell(r, 'nll_mean', '.3f')} | "
            f"{_cell(r, 'nll_delta_mean', '+.3f')} |")
    return "\n".join(out) + "\n"


def _pyplot():
    """pyplot on the file-only Agg backend (no display on the machines this runs on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fraction_curves(df: pd.DataFrame, path: Path) -> None:
    """Test value against the fraction pruned: small multiples, one panel per (model, task),
    each with its own legend of at most `board_svg.MAX_LINES` strategies (the page's choice:
    the best baselines in cool colours, dashed; the best methods in warm colours, solid; the
    unpruned model and the majority answer as reference levels). A strategy run at one fraction
    is a point with its interval, and a panel where all ran one fraction is a dot plot: a line
    across 0.19-0.21 would draw an axis out of nothing."""
    plt = _pyplot()
    test = df[df.split == "test"]
    pairs = sorted({(str(m), str(t)) for m, t in zip(test.model, test.task, strict=True)})
    roles = {s: "baseline" for s in baseline_names(set(df.strategy), df)}
    cols = min(3, max(1, len(pairs)))
    rows_n = -(-len(pairs) // cols) if pairs else 1
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 4.4 * rows_n), squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    for ax, (model, task) in zip(axes.flat, pairs, strict=False):
        sub = test[(test.model == model) & (test.task == task)]
        stats = board_svg.summarise(sub)
        references = {s for s, g in stats.groupby("strategy") if (g.fraction == 0).all()}
        refs, baselines, methods = board_svg.pick(stats, {s: roles.get(s, "method") for s in stats.strategy},
                                                  references)
        colours = dict(zip(methods, board_svg.METHOD_COLOURS, strict=False))
        colours |= dict(zip(baselines, board_svg.BASELINE_COLOURS, strict=False))
        shown = stats[stats.strategy.isin(baselines + methods)]
        percent = (sub.value.abs() <= 1).all()
        scale = 100 if percent else 1
        single = shown.fraction.nunique() <= 1
        for r in refs:
            colour, dash = board_svg.reference_style(r)
            level = scale * stats[stats.strategy == r]["mean"].mean()
            line = ax.axvline if single else ax.axhline
            line(level, color=colour, lw=1.2, ls=(0, tuple(float(x) for x in dash.split())), label=r)
        for i, s in enumerate(baselines + methods):
            g = shown[shown.strategy == s].sort_values("fraction")
            style = dict(color=colours[s], capsize=2, lw=1.4, ms=4 if len(g) > 1 else 6, marker="o",
                         ls="--" if s in baselines else "-", label=s)
            if single:
                ax.errorbar(scale * g["mean"], [i] * len(g), xerr=scale * g.half, **style)
            else:
                ax.errorbar(g.fraction, scale * g["mean"], yerr=scale * g.half, elinewidth=0.8, **style)
        unit = f"test {sub.metric.iloc[0]}" + (" (%)" if percent else "")
        if single:
            ax.set_yticks(range(len(baselines + methods)), [s[:24] for s in baselines + methods], fontsize=7)
            ax.invert_yaxis()
            at = f" at fraction {shown.fraction.iloc[0]:g}" if len(shown) else ""
            ax.set_xlabel(unit + at, fontsize=8)
        else:
            ax.set_xlabel("fraction pruned", fontsize=8)
            ax.set_ylabel(unit, fontsize=8)
        ax.set_title(f"{model} · {task} (test)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def heatmap(df: pd.DataFrame, path: Path, strategy: str = "eigen") -> bool:
    """Share of singular values pruned per layer x head, at the validation-chosen fraction."""
    plt = _pyplot()

    chosen = choose(df[df.strategy == strategy]) if (df.strategy == strategy).any() else None
    if chosen is None or chosen.empty:
        return False
    grids: dict[str, list[np.ndarray]] = {}
    for r in chosen.itertuples():
        mask_file = Path(r.source).parent / (Path(r.source).stem + "_masks") / f"{r.config_hash}.json"
        if not mask_file.is_file():
            continue
        data = json.loads(mask_file.read_text())["matrices"]
        layers = 1 + max(m["layer"] for m in data.values())
        heads = max(m["heads"] for m in data.values())
        grid = np.full((layers, heads), np.nan)
        for m in data.values():
            keep = np.array(m["keep"])
            grid[m["layer"], : m["heads"]] = 1 - keep.mean(1)
        grids.setdefault(f"{r.model}\n{r.task}", []).append(grid)  # shapes differ by model
    if not grids:
        return False
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids) + 1, 6), squeeze=False)
    for ax, (task, gs) in zip(axes[0], sorted(grids.items()), strict=True):
        mean = np.nanmean(np.stack(gs), 0)
        im = ax.imshow(mean, aspect="auto", cmap="viridis", vmin=0)
        ax.set_title(f"{strategy}: {task}\n(share pruned, {len(gs)} seed(s))", fontsize=8)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(mean.shape[1]))
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def strategy_descriptions() -> dict[str, str]:
    """Each registered strategy's description by name, for the page's links; empty where the
    plugins cannot be loaded (a board must still be readable without them)."""
    try:
        found = registry().components["strategies"]
    except Exception:  # a broken plugin must not stop a board from being read
        return {}
    return {name: comp.value.description for name, comp in found.items()}


def controls(df: pd.DataFrame) -> set[str]:
    """Baselines with random draws (their seed changes what they prune): the page files them
    under "control", the comparisons a method's own luck is measured against."""
    budgeted = set(df.strategy[df.fraction > 0])
    flags = strategy_flags(df)
    return {s for s, (baseline, seeded) in flags.items() if baseline and seeded and s in budgeted}


def write(paths: list[Path], out_dir: Path, model=None, task=None, strategy=None,
          html: Path | None = None) -> list[Path]:
    df = load(paths, model, task, strategy)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = table(df)
    written = [out_dir / "leaderboard.csv", out_dir / "leaderboard.md",
               out_dir / "accuracy_vs_fraction.png"]
    t.to_csv(written[0], index=False)
    frame, lines = verdict_table(t), verdicts(t)
    cost, moved = transfer.cost_table(t), transfer.transfer_table(df)  # one frame each: md and page
    written[1].write_text(markdown(t, lines, frame) + transfer.cost_markdown(cost)
                          + transfer.transfer_markdown(moved))
    plot_fraction_curves(df, written[2])
    if heatmap(df, out_dir / "eigen_heatmap.png"):
        written.append(out_dir / "eigen_heatmap.png")
    if html is not None:
        written.append(board_html.write(
            html, t, df, written[2:], [str(p) for p in paths], chosen=choose(df), verdicts=frame,
            lines=lines, rule=RULE_TEXT, descriptions=strategy_descriptions(), controls=controls(df),
            elsewhere=[(transfer.COST_TITLE, transfer.COST_NOTE, cost),
                       (transfer.TRANSFER_TITLE, transfer.TRANSFER_NOTE, moved)]))
    return written

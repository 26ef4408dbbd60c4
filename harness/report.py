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

from harness import analysis, leaderboard
from harness.analysis import ALPHA, RULE_TEXT  # noqa: F401 (the board's rule, re-exported)
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
        seeded = recipe is None or recipe.value.seeded or bool(moved)
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


def _num(value: float, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, fmt)


def _interval(mean: float, low: float, high: float) -> str:
    """A value with its 95% interval in points; '-' where there is none."""
    if mean != mean:
        return "-"
    if low != low:
        return f"{100 * mean:+.2f}"
    return f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def markdown(t: pd.DataFrame) -> str:
    """The verdicts first, then the rule, then the table (intervals are 95%, in points)."""
    lines = ["Verdicts (one per model, task and design):", ""]
    lines += [f"- {line}" for line in verdicts(t)]
    lines += ["", f"The rule: {RULE_TEXT}", ""]
    lines += ["| model | task | design | strategy | fraction (chosen on) | test " + str(t.metric.iloc[0])
              + " [95% interval] | seeds | best baseline (equal budget) | Δ vs it [95%] | p "
              "| best baseline (as tuned) | Δ vs it [95%] | p | Δ vs eigen [95%] | p | Holm p "
              "| verdict | NLL | ΔNLL |",
              "|" + "---|" * 19]
    for r in t.itertuples():
        value = (f"{100 * r.value_mean:.2f}" + ("" if r.value_low != r.value_low else
                                                 f" [{100 * r.value_low:.2f}, {100 * r.value_high:.2f}]"))
        lines.append(
            f"| {r.model} | {r.task} | {r.design} | {r.strategy} | {r.fraction} ({r.chosen_on}) | {value} | "
            f"{r.seeds} | {r.best_baseline or '-'} | "
            f"{_interval(r.delta_vs_best_mean, r.delta_vs_best_low, r.delta_vs_best_high)} | "
            f"{_num(r.p_vs_best, '.2g')} | {r.tuned_baseline or '-'} | "
            f"{_interval(r.delta_vs_tuned_mean, r.delta_vs_tuned_low, r.delta_vs_tuned_high)} | "
            f"{_num(r.p_vs_tuned, '.2g')} | "
            f"{_interval(r.delta_vs_eigen_mean, r.delta_vs_eigen_low, r.delta_vs_eigen_high)} | "
            f"{_num(r.p_vs_eigen, '.2g')} | {_num(r.p_holm, '.2g')} | {r.verdict or '-'} | "
            f"{_num(r.nll_mean, '.3f')} | {_num(r.nll_delta_mean, '+.3f')} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    """pyplot on the file-only Agg backend (no display on the machines this runs on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fraction_curves(df: pd.DataFrame, path: Path) -> None:
    """Metric and target NLL against the fraction pruned, one column per task and a pair of
    rows per model: accuracy and loss can move in opposite directions under pruning."""
    plt = _pyplot()

    tasks = sorted(set(df.task))
    models = sorted(set(df.model))
    panels = [(m, q) for m in models for q in ("value", "nll")]
    width = max(4.6 * len(tasks), 7.0)
    # budget-free references (the unpruned model, the majority answer) are lines across
    refs = {s for s, g in df.groupby("strategy") if (g.fraction == 0).all()}
    strategies = sorted(set(df.strategy) - refs)
    palette = plt.get_cmap("tab20" if len(strategies) > 10 else "tab10")
    colour = {s: palette(i % palette.N) for i, s in enumerate(strategies)}  # same in every panel
    ncol = max(1, min(len(strategies) + len(refs), int(width / 1.7)))
    legend_rows = -(-(len(strategies) + len(refs)) // ncol)
    height = 3.4 * len(panels) + 0.3 * legend_rows
    fig, axes = plt.subplots(len(panels), len(tasks), figsize=(width, height), squeeze=False)
    for (model, quantity), row_axes in zip(panels, axes, strict=True):
        for ax, task in zip(row_axes, tasks, strict=True):
            sub = df[(df.model == model) & (df.task == task) & (df.split == "test")]
            if sub.empty or sub[quantity].isna().all():
                ax.set_visible(False)
                continue
            scale = 100 if quantity == "value" else 1
            others = sorted(refs - {"none"})
            for ref in sorted(refs):  # dashed: the unpruned model; dotted (...): the others
                level = sub[sub.strategy == ref][quantity].mean()
                if not np.isnan(level):
                    unpruned = ref == "none"
                    ax.axhline(scale * level, color="grey" if unpruned else "black", lw=1,
                               ls="--" if unpruned else (":", "-.")[others.index(ref) % 2],
                               label="none (unpruned)" if unpruned else ref)
            for strategy, g in sub[~sub.strategy.isin(refs)].groupby("strategy"):
                stats = g.groupby("fraction")[quantity].agg(["mean", "std"]).reset_index()
                ax.errorbar(stats.fraction, scale * stats["mean"], yerr=scale * stats["std"].fillna(0),
                            marker="o", ms=3, capsize=2, lw=1, label=strategy, color=colour[strategy])
            label = f"{sub.metric.iloc[0]} (%)" if quantity == "value" else "target NLL (nats)"
            ax.set_title(f"{model} · {task} (test)", fontsize=9)
            ax.set_xlabel("fraction pruned", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    handles, labels = {}, {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels[lab] = lab
    fig.legend(handles.values(), labels.values(), loc="lower center", ncol=ncol, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.3 * legend_rows / height + 0.01, 1, 1))
    fig.savefig(path, dpi=110)
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


def write(paths: list[Path], out_dir: Path, model=None, task=None, strategy=None,
          html: Path | None = None) -> list[Path]:
    df = load(paths, model, task, strategy)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = table(df)
    written = [out_dir / "leaderboard.csv", out_dir / "leaderboard.md",
               out_dir / "accuracy_vs_fraction.png"]
    t.to_csv(written[0], index=False)
    from harness import transfer

    written[1].write_text(markdown(t) + transfer.cost_markdown(t) + transfer.transfer_markdown(df))
    plot_fraction_curves(df, written[2])
    if heatmap(df, out_dir / "eigen_heatmap.png"):
        written.append(out_dir / "eigen_heatmap.png")
    if html is not None:
        from harness import board_html

        written.append(board_html.write(html, t, df, written[2:], [str(p) for p in paths]))
    return written

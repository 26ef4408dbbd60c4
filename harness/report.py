"""`harness leaderboard`: results CSVs -> comparative table (CSV, Markdown) and plots.

Honest selection: for each model x task x strategy x seed, the fraction is chosen on the
validation rows and the *test* row of that fraction is reported; test never takes part in
the choice. Groups without validation rows (runs with `--select-on none`) report every
fraction as its own setting, marked `chosen_on = none`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import leaderboard
from harness.errors import HarnessError, warn

KEYS = ["model", "task", "strategy"]


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
    """One test row per (model, task, strategy, seed): the fraction that won on validation."""
    picked = []
    for _, group in df.groupby(KEYS + ["seed"], sort=True):
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


def table(df: pd.DataFrame) -> pd.DataFrame:
    chosen = choose(df)
    setting = np.where(chosen.chosen_on == "none", chosen.fraction.astype(str), "chosen")
    chosen = chosen.assign(setting=setting)
    rows = []
    for (model, task, strategy, _setting), g in chosen.groupby(KEYS + ["setting"], sort=True):
        rows.append({
            "model": model, "task": task, "strategy": strategy,
            "fraction": ", ".join(f"{f:g}" for f in sorted(set(g.fraction))),
            "chosen_on": "-" if (g.fraction == 0).all() else g.chosen_on.iloc[0],
            "metric": g.metric.iloc[0], "split": "test",
            "value_mean": g.value.mean(), "value_std": g.value.std(ddof=1) if len(g) > 1 else 0.0,
            "delta_mean": g.delta.mean(), "p_value_median": g.p_value.median(),
            "seeds": len(g), "n": int(g.n.iloc[0]), "n_pruned": int(g.n_pruned.median()),
        })
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "task", "value_mean"], ascending=[True, True, False])


def markdown(t: pd.DataFrame) -> str:
    lines = ["| model | task | strategy | fraction (chosen on) | test " + str(t.metric.iloc[0])
             + " (mean ± std) | Δ vs none | p (median) | seeds | n |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(
            f"| {r.model} | {r.task} | {r.strategy} | {r.fraction} ({r.chosen_on}) | "
            f"{100 * r.value_mean:.2f} ± {100 * r.value_std:.2f} | {100 * r.delta_mean:+.2f} | "
            f"{r.p_value_median:.3g} | {r.seeds} | {r.n} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    """pyplot on the file-only Agg backend (no display on the machines this runs on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fraction_curves(df: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()

    tasks = sorted(set(df.task))
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        sub = df[(df.task == task) & (df.split == "test")]
        baseline = sub[sub.strategy == "none"].value.mean()
        if not np.isnan(baseline):
            ax.axhline(100 * baseline, color="grey", ls="--", label="none (unpruned)")
        for strategy, g in sub[sub.strategy != "none"].groupby("strategy"):
            stats = g.groupby("fraction").value.agg(["mean", "std", "count"]).reset_index()
            ax.errorbar(stats.fraction, 100 * stats["mean"], yerr=100 * stats["std"].fillna(0),
                        marker="o", capsize=3, label=strategy)
        ax.set_title(f"{task} (test)")
        ax.set_xlabel("fraction pruned")
        ax.set_ylabel(f"{sub.metric.iloc[0] if len(sub) else 'metric'} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
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
        grids.setdefault(r.task, []).append(grid)
    if not grids:
        return False
    fig, axes = plt.subplots(1, len(grids), figsize=(3.2 * len(grids) + 1, 6), squeeze=False)
    for ax, (task, gs) in zip(axes[0], sorted(grids.items()), strict=True):
        mean = np.nanmean(np.stack(gs), 0)
        im = ax.imshow(mean, aspect="auto", cmap="viridis", vmin=0)
        ax.set_title(f"{strategy} on {task}\n(share pruned, {len(gs)} seed(s))", fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(mean.shape[1]))
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write(paths: list[Path], out_dir: Path, model=None, task=None, strategy=None) -> list[Path]:
    df = load(paths, model, task, strategy)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = table(df)
    written = [out_dir / "leaderboard.csv", out_dir / "leaderboard.md",
               out_dir / "accuracy_vs_fraction.png"]
    t.to_csv(written[0], index=False)
    written[1].write_text(markdown(t))
    plot_fraction_curves(df, written[2])
    if heatmap(df, out_dir / "eigen_heatmap.png"):
        written.append(out_dir / "eigen_heatmap.png")
    return written

"""`harness leaderboard`: results CSVs -> comparative table (CSV, Markdown) and plots.

Honest selection: for each model x task x strategy x seed, the fraction is chosen on the
validation rows and the *test* row of that fraction is reported; test never takes part in
the choice. Groups without validation rows (runs with `--select-on none`) report every
fraction as its own setting, marked `chosen_on = none`.

Beating the unpruned model is not enough: a lucky random draw can do that. Every chosen row is
also set against the **best baseline at the same budget** (the baseline strategy with the
highest mean test value at that fraction), with a paired test on the same examples, and a
method's seeds are tested against the seed distribution of every baseline run with several
seeds at the same fraction (random-sv, and a method's own random control such as
random-sv-budget-kinds), at each fraction its seeds chose. Equal budget is not the whole
story either: a baseline that does best at another budget is also compared as a user would
run it, at its own validation-chosen fraction (the unpruned model and the majority answer,
which have no fraction, count too). The verdict (`verdicts`) names the methods that beat
every baseline, both ways, with p < 0.05.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from harness import leaderboard, per_example
from harness.errors import HarnessError, warn
from harness.stats import paired_p_value, permutation_p_value, smallest_permutation_p

KEYS = ["model", "task", "strategy"]
ALPHA = 0.05
# used when the plugin that defined a strategy is not installed where the board is built
KNOWN_BASELINES = {"none", "majority", "random-sv", "random-sv-nocomp", "smallest-sv",
                   "smallest-sv-comp", "magnitude", "laser", "random-sv-budget-kinds"}


def baseline_names(strategies) -> set[str]:
    """Strategies that are baselines (a method must beat them), per their plugins' declaration."""
    from harness.strategy import recipe_name

    try:
        from harness.plugins import registry

        table = registry().components["strategies"]
    except Exception:  # a broken plugin must not stop a board from being read
        table = {}

    def is_baseline(name: str) -> bool:
        name = recipe_name(name)  # a variant (`random-sv[matrices=all]`) is its recipe's kind
        if name in table:
            return table[name].value.baseline
        return name in KNOWN_BASELINES

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
    for column in ("nll", "nll_delta", "general_nll", "general_nll_delta"):  # older results lack them
        if column not in df:
            df[column] = np.nan
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


def _examples(row) -> np.ndarray | None:
    data = per_example.load(row.source, row.config_hash, row.split)
    return None if data is None else data["metric"]


def paired_with(r, rows: pd.DataFrame) -> tuple:
    """(partner, paired p): `rows`' row of r's seed, else its lowest seed, and the paired test
    of r against it on the same examples (nan without both per-example files)."""
    rows = rows.sort_values("seed")
    same_seed = rows[rows.seed == r.seed]
    partner = (same_seed if len(same_seed) else rows).iloc[0]
    mine, theirs = _examples(r), _examples(partner)
    p = paired_p_value(theirs, mine) if mine is not None and theirs is not None else np.nan
    return partner, p


NO_PARTNER = ("", np.nan, np.nan)


def best_paired(r, pool: pd.DataFrame) -> tuple[str, float, float]:
    """(strategy of `pool` with the highest mean test value, that mean, r's paired p against
    its rows); picked on test, which can only favour the one r is set against."""
    if pool.empty:
        return NO_PARTNER
    means = pool.groupby("strategy").value.mean()
    best = means.idxmax()
    _, p = paired_with(r, pool[pool.strategy == best])
    return best, means[best], p


def against_best_baseline(df: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """For each chosen test row: the best other baseline at the same fraction and a paired p.

    "Best" is the baseline strategy with the highest mean test value over its seeds at that
    fraction (picked on test, which can only favour the baseline). The paired test uses the
    baseline's row of the same seed when it has one, else its first seed.
    """
    test = df[(df.split == "test") & (df.fraction > 0)]
    baselines = baseline_names(set(df.strategy))
    out = []
    for r in chosen.itertuples():
        pool = test[(test.model == r.model) & (test.task == r.task) & (test.fraction == r.fraction)
                    & test.strategy.isin(baselines - {r.strategy})]
        found = best_paired(r, pool) if r.fraction else NO_PARTNER
        out.append(dict(zip(("best_baseline", "best_baseline_value", "p_vs_best"), found, strict=True)))
    return chosen.reset_index(drop=True).join(pd.DataFrame(out))


def against_method(chosen: pd.DataFrame, reference: str = "eigen",
                   df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each chosen test row against `reference`'s chosen row of the same model, task and seed
    (its first seed where it lacks that one), each at its own validation-chosen fraction: do
    the new methods beat the paper's, as a user would run both? A paired p on the same examples.
    A row run at a fixed fraction (--select-on none) where the reference was chosen on
    validation is set against the reference's test row at that same fraction, from `df`."""
    out = []
    for r in chosen.itertuples():
        pool = chosen[(chosen.model == r.model) & (chosen.task == r.task)
                      & (chosen.strategy == reference) & (chosen.chosen_on == r.chosen_on)]
        if pool.empty and r.chosen_on == "none" and df is not None:
            pool = df[(df.split == "test") & (df.model == r.model) & (df.task == r.task)
                      & (df.strategy == reference) & (df.fraction == r.fraction)]
        if r.strategy == reference or pool.empty or r.fraction == 0:
            out.append({f"{reference}_value": np.nan, f"p_vs_{reference}": np.nan})
            continue
        partner, p = paired_with(r, pool)
        out.append({f"{reference}_value": partner.value, f"p_vs_{reference}": p})
    return chosen.reset_index(drop=True).join(pd.DataFrame(out, index=range(len(chosen))))


def against_tuned_baseline(chosen: pd.DataFrame) -> pd.DataFrame:
    """Each chosen test row against the best baseline *as a user would run it*: at the
    baseline's own validation-chosen fraction (the unpruned model included), paired seed by
    seed. Equal budget alone can flatter a method: a baseline that does best at another
    fraction is beaten only at the method's; a tuned-against-tuned win is the one a user gets.
    "Best" is the highest mean test value over seeds (picked on test: it can only favour the
    baseline)."""
    baselines = baseline_names(set(chosen.strategy))
    as_tuned = (chosen.chosen_on == "validation") | (chosen.fraction == 0)
    tuned = chosen[chosen.strategy.isin(baselines) & as_tuned]
    out = []
    for r in chosen.itertuples():
        pool = tuned[(tuned.model == r.model) & (tuned.task == r.task) & (tuned.strategy != r.strategy)]
        found = NO_PARTNER if r.strategy in baselines else best_paired(r, pool)
        out.append(dict(zip(("tuned_baseline", "tuned_baseline_value", "p_vs_tuned"), found, strict=True)))
    return chosen.reset_index(drop=True).join(pd.DataFrame(out, index=range(len(chosen))))


def seeds_vs_random(df: pd.DataFrame, g: pd.DataFrame, baselines: set[str]) -> tuple[float, int, str]:
    """(largest permutation p of a strategy's chosen test values against the seeds of each
    random control, the fewest seeds a control has, the controls faced). A random control is
    any baseline with two seeds or more at a fraction the strategy's seeds chose: random-sv,
    and the control a method brings for itself (random-sv-budget-kinds for the kinds search).
    Testing only against random-sv would let a method that searches kinds pass against a
    control that cannot. Where the seeds chose different fractions, each fraction's controls
    are faced: a method is not told apart from random directions because it was compared at
    the fraction that suits it."""
    own = g.strategy.iloc[0]
    test = df[(df.split == "test") & (df.model == g.model.iloc[0]) & (df.task == g.task.iloc[0])
              & df.strategy.isin(baselines - {own}) & df.fraction.isin(set(g.fraction))]
    by_control = test.groupby(["strategy", "fraction"])
    seeds = by_control.seed.nunique()
    controls = seeds[seeds >= 2]
    if controls.empty:  # nothing with a seed distribution: how many seeds the best-seeded has
        return np.nan, int(seeds.max()) if len(seeds) else 0, ""
    names = ", ".join(sorted(set(controls.index.get_level_values("strategy"))))
    if len(g) < 2:
        return np.nan, int(controls.min()), names
    mine = g.value.to_numpy()
    ps = [permutation_p_value(mine, by_control.get_group(key).value.to_numpy()) for key in controls.index]
    return (np.nan if np.isnan(ps).all() else float(np.nanmax(ps))), int(controls.min()), names


def table(df: pd.DataFrame) -> pd.DataFrame:
    chosen = against_tuned_baseline(against_method(against_best_baseline(df, choose(df)), df=df))
    setting = np.where(chosen.chosen_on == "none", chosen.fraction.astype(str), "chosen")
    chosen = chosen.assign(setting=setting)
    baselines = baseline_names(set(df.strategy))
    rows = []
    for (model, task, strategy, _setting), g in chosen.groupby(KEYS + ["setting"], sort=True):
        has_best = g.best_baseline.astype(bool)
        p_random, random_seeds, controls = seeds_vs_random(df, g, baselines)
        rows.append({
            "model": model, "task": task, "strategy": strategy,
            "role": "baseline" if strategy in baselines else "method",
            "fraction": ", ".join(f"{f:g}" for f in sorted(set(g.fraction))),
            "chosen_on": "-" if (g.fraction == 0).all() else g.chosen_on.iloc[0],
            "metric": g.metric.iloc[0], "split": "test",
            "value_mean": g.value.mean(), "value_std": g.value.std(ddof=1) if len(g) > 1 else 0.0,
            "delta_mean": g.delta.mean(), "p_value_median": g.p_value.median(),
            "best_baseline": g.best_baseline[has_best].mode().iloc[0] if has_best.any() else "",
            "delta_vs_best_mean": (g.value - g.best_baseline_value).mean(),
            "p_vs_best_median": g.p_vs_best.median(),
            "p_seeds_vs_random": p_random, "random_seeds": random_seeds, "random_controls": controls,
            "tuned_baseline": g.tuned_baseline.iloc[0],
            "delta_vs_tuned_mean": (g.value - g.tuned_baseline_value).mean(),
            "p_vs_tuned_median": g.p_vs_tuned.median(),
            "delta_vs_eigen_mean": (g.value - g.eigen_value).mean(),
            "p_vs_eigen_median": g.p_vs_eigen.median(),
            "nll_mean": g.nll.mean(), "nll_delta_mean": g.nll_delta.mean(),
            "general_nll_delta_mean": g.general_nll_delta.mean(),
            "seeds": len(g), "n": int(g.n.iloc[0]), "n_pruned": int(g.n_pruned.median()),
        })
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "task", "value_mean"], ascending=[True, True, False])


def verdicts(t: pd.DataFrame) -> list[str]:
    """In words, per (model, task): which method, if any, beats every baseline with p < ALPHA.

    A method must be above the best equal-budget baseline with a paired p < ALPHA (median over
    seeds), and, where a baseline (random-sv, a method's own random control) was run with
    several seeds at its fraction, its own seeds (two at least) must also differ from each such
    baseline's seed distribution with p < ALPHA. One whose seeds, or a control's, are too few
    for that test to reach ALPHA at all is named as one to replicate.
    Last, it must be above the best baseline at that baseline's own validation-chosen fraction
    (the unpruned model included) with a paired p < ALPHA; one that passes the rest but not
    this is named as winning at equal budget only.

    The seed-for-seed test is the median of the per-seed paired p values, not one test pooled
    over seeds (a stratified McNemar): every seed is scored on the same test examples, so the
    strata are not independent, and pooling would count each example once per seed, a power
    the data do not have. Variation between seeds is the across-seeds test's job.
    """
    lines = []
    for (model, task), g in t.groupby(["model", "task"], sort=True):
        candidates = g[g.role == "method"]
        chosen = candidates[candidates.chosen_on != "none"]
        # a method run at one fixed fraction only (--select-on none) is judged there, and said
        # so; one with several fixed fractions and no chosen row would be picked on test: not
        # judged, unless no method was chosen on validation at all
        fixed_rows = candidates[(candidates.chosen_on == "none") & ~candidates.strategy.isin(chosen.strategy)]
        once = fixed_rows[fixed_rows.groupby("strategy").strategy.transform("size") == 1]
        methods = pd.concat([chosen, once]) if len(chosen) else candidates
        fixed = "" if len(chosen) or methods.empty else " (at a fixed fraction, not chosen on validation)"

        def at(r, mixed: bool = len(chosen) > 0) -> str:  # where a method's row was taken
            return f"{r.fraction} (fixed)" if mixed and r.chosen_on == "none" else f"{r.fraction}"

        paired = [r for r in methods.itertuples() if r.delta_vs_best_mean > 0 and r.p_vs_best_median < ALPHA]
        # too few seeds against a control's several draws for the across-seeds test to reach
        # ALPHA (one seed, or 2 against 4): a lucky draw of the method is as likely as one of
        # the control, and the test could not have said otherwise: not a win until replicated
        unreplicated = [r for r in paired if r.random_seeds >= 2
                        and smallest_permutation_p(r.seeds, r.random_seeds) >= ALPHA]
        across = [r for r in paired if r not in unreplicated and not (r.p_seeds_vs_random >= ALPHA)]
        # ... and it must beat the best baseline as tuned on validation too (the unpruned model
        # included), or the win is only the equal budget's
        winners = [r for r in across if not r.tuned_baseline
                   or (r.delta_vs_tuned_mean > 0 and r.p_vs_tuned_median < ALPHA)]
        equal_only = [r for r in across if r not in winners]
        tuned_part = (" Above every baseline at equal budget, but not above the best baseline "
                      "as a user would run it (at its own validation-chosen fraction, or as it is "
                      f"for the unpruned model and the majority answer) with p < {ALPHA}: "
                      + "; ".join(f"{r.strategy} at {at(r)} ({100 * r.delta_vs_tuned_mean:+.2f} "
                                  f"points vs {r.tuned_baseline} as tuned, paired p = "
                                  f"{r.p_vs_tuned_median:.3g})" for r in equal_only) + "."
                      if equal_only else "")
        versus_eigen = [r for r in methods.itertuples()
                        if r.delta_vs_eigen_mean > 0 and r.p_vs_eigen_median < ALPHA]
        eigen_part = (
            " Against eigen (each at its own chosen fraction, paired on the same examples): "
            + ("; ".join(f"{r.strategy} is better (+{100 * r.delta_vs_eigen_mean:.2f} points, "
                         f"p = {r.p_vs_eigen_median:.3g})" for r in versus_eigen)
               if versus_eigen else f"no method is better with p < {ALPHA}") + "."
            if methods.strategy.ne("eigen").any() and (methods.strategy == "eigen").any() else "")
        pending = (" Above the best baseline seed for seed but with too few seeds (its own or "
                   f"a random control's) for the across-seeds test to reach p < {ALPHA}, so not "
                   "judged across seeds (replicate them): "
                   + "; ".join(f"{r.strategy} at {at(r)} (+{100 * r.delta_vs_best_mean:.2f} points "
                               f"over {r.best_baseline}, paired p = {r.p_vs_best_median:.3g}, "
                               f"{_seeds(r.seeds)} vs {r.random_seeds} of {r.random_controls}: "
                               f"smallest attainable p {smallest_permutation_p(r.seeds, r.random_seeds):.2g})"
                               for r in unreplicated) + "."
                   if unreplicated else "")
        if winners:
            said = "; ".join(
                f"{r.strategy} at {at(r)} (+{100 * r.delta_vs_best_mean:.2f} points over "
                f"{r.best_baseline}, paired p = {r.p_vs_best_median:.3g}"
                + ("" if np.isnan(r.p_seeds_vs_random) else
                   f", seeds vs {r.random_controls} p = {r.p_seeds_vs_random:.3g}") + ")" for r in winners)
            lines.append(f"{model} / {task}: beats every baseline{fixed}: {said}.{tuned_part}{pending}"
                         f"{eigen_part}")
        elif methods.empty:
            lines.append(f"{model} / {task}: no method (non-baseline strategy) was run.")
        else:
            best = methods.sort_values("value_mean", ascending=False).iloc[0]
            lines.append(
                f"{model} / {task}: no method beats every baseline with p < {ALPHA}{fixed} (best method "
                f"{best.strategy} at {at(best)}: {100 * best.delta_vs_best_mean:+.2f} points vs "
                f"{best.best_baseline or 'no baseline'} at equal budget, paired p = "
                f"{best.p_vs_best_median:.3g}"
                + ("" if np.isnan(best.p_seeds_vs_random) else
                   f"; seeds vs {best.random_controls} p = {best.p_seeds_vs_random:.3g}")
                + (f"; {100 * best.delta_vs_tuned_mean:+.2f} points vs {best.tuned_baseline} as "
                   f"tuned, paired p = {best.p_vs_tuned_median:.3g}" if best.tuned_baseline else "")
                + f").{tuned_part}{pending}{eigen_part}")
    return lines


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _num(value: float, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, fmt)


def markdown(t: pd.DataFrame) -> str:
    lines = ["| model | task | strategy | fraction (chosen on) | test " + str(t.metric.iloc[0])
             + " (mean ± std) | Δ vs none | p vs none | best baseline (equal budget) | Δ vs it "
             "| p vs it | p seeds vs random controls | best baseline (as tuned) | Δ vs it | p vs it "
             "| Δ vs eigen | p vs eigen | NLL | ΔNLL | seeds | n |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(
            f"| {r.model} | {r.task} | {r.strategy} | {r.fraction} ({r.chosen_on}) | "
            f"{100 * r.value_mean:.2f} ± {100 * r.value_std:.2f} | {100 * r.delta_mean:+.2f} | "
            f"{r.p_value_median:.3g} | {r.best_baseline or '-'} | "
            f"{_num(100 * r.delta_vs_best_mean, '+.2f')} | {_num(r.p_vs_best_median, '.3g')} | "
            f"{_num(r.p_seeds_vs_random, '.3g')} | {r.tuned_baseline or '-'} | "
            f"{_num(100 * r.delta_vs_tuned_mean, '+.2f')} | {_num(r.p_vs_tuned_median, '.3g')} | "
            f"{_num(100 * r.delta_vs_eigen_mean, '+.2f')} | "
            f"{_num(r.p_vs_eigen_median, '.3g')} | {_num(r.nll_mean, '.3f')} | "
            f"{_num(r.nll_delta_mean, '+.3f')} | {r.seeds} | {r.n} |")
    lines += ["", "Verdict (fraction chosen on validation, test reported, alpha = 0.05):", ""]
    lines += [f"- {line}" for line in verdicts(t)]
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

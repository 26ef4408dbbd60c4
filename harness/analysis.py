"""The board's one analysis: paired effects with intervals, Holm across methods, power.

A method's claim is "on this task, pruning this way beats what a user could do without it".
Each method is set against two references on the *same examples*: the best baseline at the
same budget (fraction) and the best baseline as a user would run it (its own
validation-chosen fraction, the unpruned model and the majority answer included). For each:

- the effect: mean difference in the metric (and in the target NLL) over seeds and examples;
- its 95% interval: a two-way bootstrap that resamples seeds and examples (`stats.two_way_bootstrap`);
- its p: the larger of that bootstrap's and a sign-flip permutation test over the examples of
  the seed-averaged differences (`stats.sign_flip_p`): the permutation test is exact for the
  examples but blind to seed noise, the bootstrap sees both.

A method wins when both effects are positive and the larger of its two p values, adjusted by
Holm's method over every method judged on the (model, task), is below ALPHA; a seeded side
with fewer than MIN_SEEDS seeds has no seed variance to judge by, so it cannot win. Where no
method wins, the verdict says UNDERPOWERED when the best method's effect is positive but below
what the comparison could detect at 80% power (and how many seeds or examples it would need),
NO WIN otherwise. The rule is checked by simulation in tests/test_statistics.py;
docs/statistics.md says it in words.

The arrays here are (seeds, examples) matrices: a strategy's per-example outcomes on the test
folds laid end to end, one row per seed. The functions that judge take arrays only, so the
simulation runs exactly the code the board runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness import stats

ALPHA = 0.05
POWER = 0.8
MIN_SEEDS = 3  # below this a seeded strategy's between-seed variance is a guess

RULE_TEXT = (
    "A method WINS on a (model, task) when it beats both the best baseline at the same budget and "
    "the best baseline as a user would run it (each baseline at its own validation-chosen "
    "fraction; the unpruned model and the majority answer count), on the same test examples. "
    "For each comparison the effect is the mean difference over seeds and examples, its 95% "
    "interval comes from a bootstrap that resamples both seeds and examples, and its p value is "
    "the larger of that bootstrap's and a sign-flip permutation test over examples. Both effects "
    f"must be positive and the larger p, Holm-adjusted over every method on the (model, task), "
    f"below {ALPHA}; a seeded strategy needs {MIN_SEEDS} seeds or more. Otherwise the verdict is "
    "UNDERPOWERED when the best method's effect is positive but smaller than the smallest effect "
    f"the comparison could detect with {POWER:.0%} power, and NO WIN when it is not.")


@dataclass
class Comparison:
    """One method against one reference on the same (seeds, examples)."""

    reference: str
    delta: float
    low: float
    high: float
    p: float  # max(p_sign, p_boot): what the rule reads
    p_sign: float
    p_boot: float
    se: float  # bootstrap standard error of delta
    var_seed: float  # the between-seed part of se**2 (0 with one seed)
    seeds: int
    n: int
    nll_delta: float = float("nan")
    seeds_short: str = ""  # which seeded side has fewer than MIN_SEEDS seeds ("" when none)

    @property
    def seeds_enough(self) -> bool:
        return not self.seeds_short

    @property
    def test(self) -> str:
        """The test whose p the rule read (the larger one)."""
        return "two-way bootstrap" if self.p_boot >= self.p_sign else "sign-flip permutation"


def compare(reference: str, diff: np.ndarray, seeded: bool, nll_diff: np.ndarray | None = None,
            resamples: int = stats.RESAMPLES, seeds_short: str = "") -> Comparison:
    """The effect of a (seeds, examples) matrix of paired differences, its interval and p."""
    diff = np.atleast_2d(diff)
    low, high, se, p_boot = stats.two_way_bootstrap(diff, seeded, resamples=resamples)
    p_sign = stats.sign_flip_p(diff.mean(0), resamples=min(stats.SIGN_FLIPS, 2 * resamples + 1))
    s = diff.shape[0]
    var_seed = float(diff.mean(1).var(ddof=1) / s) if seeded and s > 1 else 0.0
    nll = float(np.nanmean(nll_diff)) if nll_diff is not None and np.isfinite(nll_diff).any() else math.nan
    return Comparison(reference, float(diff.mean()), low, high, max(p_sign, p_boot), p_sign, p_boot,
                      se, min(var_seed, se**2), s, diff.shape[1], nll, seeds_short)


@dataclass
class Candidate:
    """A method as the rule sees it: its two comparisons (None where no such baseline ran)."""

    name: str
    value: float
    equal: Comparison | None
    tuned: Comparison | None
    folds: int = 0
    p_adjusted: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def comparisons(self) -> list[Comparison]:
        return [c for c in (self.equal, self.tuned) if c is not None]

    @property
    def p(self) -> float:
        """Both must hold (an intersection-union test): the larger p decides."""
        if self.equal is None or self.tuned is None:
            return 1.0
        return max(self.equal.p, self.tuned.p)

    @property
    def decisive(self) -> Comparison | None:
        """The comparison that decided: the one with the larger p (the smaller effect on ties)."""
        found = self.comparisons
        return max(found, key=lambda c: (c.p, -c.delta)) if found else None


@dataclass
class Verdict:
    status: str  # WIN, NO WIN, UNDERPOWERED, NO METHOD
    best: Candidate | None
    winners: list[Candidate]
    mde: float  # smallest effect detectable at POWER, metric units
    needed: str
    decided_by: str
    tests: int


def needed_for(c: Comparison, effect: float, tests: int) -> str:
    """How many seeds, or examples, would bring the detectable effect down to `effect`: the
    bootstrap variance splits into a between-seed part (shrinks with seeds) and the rest
    (shrinks with examples; --folds tests every labelled document)."""
    if not c.seeds_enough:
        return f"at least {MIN_SEEDS} seeds ({c.seeds_short}), to know the seed variance"
    if effect <= 0:
        return ""
    target = (effect / stats.detectable_effect(1.0, ALPHA, POWER, tests)) ** 2  # se**2 needed
    var_seed, var_rest = c.var_seed, max(c.se**2 - c.var_seed, 0.0)
    options = []
    if var_rest < target and var_seed > 0:
        options.append(f"{math.ceil(c.seeds * var_seed / (target - var_rest))} seeds")
    if var_seed < target and var_rest > 0:
        options.append(f"{math.ceil(c.n * var_rest / (target - var_seed))} test examples "
                       f"(now {c.n}; --folds tests every labelled document)")
    return " or ".join(options) if options else "more seeds and more examples together"


def judge(candidates: list[Candidate]) -> Verdict:
    """The rule, over every method judged on one (model, task). See the module docstring."""
    if not candidates:
        return Verdict("NO METHOD", None, [], math.nan, "", "", 0)
    tests = len(candidates)
    for c, adjusted in zip(candidates, stats.holm([c.p for c in candidates]), strict=True):
        c.p_adjusted = float(adjusted)
    winners = [c for c in candidates
               if c.equal is not None and c.tuned is not None and c.equal.delta > 0 and c.tuned.delta > 0
               and c.p_adjusted < ALPHA and all(x.seeds_enough for x in c.comparisons)]
    if winners:
        best = max(winners, key=lambda c: min(c.equal.delta, c.tuned.delta))
    else:
        best = max(candidates, key=lambda c: c.value)
    decisive = best.decisive
    if decisive is None:
        return Verdict("NO WIN", best, [], math.nan, "", "no baseline ran on the same examples", tests)
    # two sides that never differ on an example have no variance to size a test by: a
    # "detectable effect of 0.00 points" would claim a power the comparison does not have
    mde = stats.detectable_effect(decisive.se, ALPHA, POWER, tests) if decisive.se > 0 else math.nan
    where = "at equal budget" if decisive is best.equal else "as tuned"
    decided_by = (f"{decisive.test} vs {decisive.reference} {where} "
                  f"(Holm-adjusted p = {best.p_adjusted:.2g} over {tests} method{'s' * (tests > 1)})")
    if winners:
        return Verdict("WIN", best, winners, mde, "", decided_by, tests)
    effect = min(c.delta for c in best.comparisons) if len(best.comparisons) == 2 else -math.inf
    if effect <= 0:
        return Verdict("NO WIN", best, [], mde, "", decided_by, tests)
    short = [c for c in best.comparisons if not c.seeds_enough]
    if short:  # whichever comparison lacks them: its seed variance is unknown
        where = "at equal budget" if short[0] is best.equal else "as tuned"
        return Verdict("UNDERPOWERED", best, [], mde, needed_for(short[0], effect, tests),
                       f"too few seeds vs {short[0].reference} {where}", tests)
    if effect < mde:
        return Verdict("UNDERPOWERED", best, [], mde, needed_for(decisive, effect, tests), decided_by, tests)
    return Verdict("NO WIN", best, [], mde, "", decided_by, tests)


def stack(cells: dict[tuple[int, int], np.ndarray], folds: list[int]) -> tuple[list[int], np.ndarray] | None:
    """(seeds, matrix): each seed's outcomes over `folds` laid end to end, seeds with every
    fold only; None when no seed has them all or lengths disagree."""
    kept = complete_seeds(cells, folds)
    rows = [np.concatenate([cells[s, k] for k in folds]) for s in kept]
    if not rows or len({len(r) for r in rows}) > 1:
        return None
    return kept, np.stack(rows)


def complete_seeds(cells, folds: list[int]) -> list[int]:
    """The seeds among `cells` ((seed, fold) keys) that have every one of `folds`, in order."""
    return [s for s in sorted({s for s, _ in cells}) if all((s, k) in cells for k in folds)]


# --- From results rows to candidates: what the board runs on its CSVs -----------------------

Cells = dict  # (seed, fold) -> (metric, nll) arrays of one strategy's test rows


def design_labels(df):
    """Each row's run design: rows made differently are never compared or chosen across.

    The fold scheme (`--folds K`, or the task's own split), the evaluation limit and a
    non-default dtype. A `--limit 10` try appended beside a full run is then its own design,
    with its own verdict, instead of replacing the full run's rows. Rows from before the
    limit was recorded show it by their size: smaller than the largest run of that split.
    """
    import pandas as pd

    full = df.groupby(["model", "task", "split", "folds"]).n.transform("max")
    limit = df["limit"] if "limit" in df else pd.Series(np.nan, index=df.index)
    inferred = limit.where(limit.notna(), df.n.where((df.n < full) & (df.folds == 0)))
    labels = []
    for k, lim, dt in zip(df.folds, inferred, df["dtype"] if "dtype" in df else [""] * len(df), strict=True):
        label = f"{k} folds" if k > 0 else "task split"
        label += f", limit {int(lim)}" if lim == lim and lim is not None else ""
        labels.append(label + (f", {dt}" if isinstance(dt, str) and dt not in ("", "auto") else ""))
    return pd.Series(labels, index=df.index)


def _mean(found: list[tuple[np.ndarray, np.ndarray]]):
    if len({len(m) for m, _ in found}) != 1:
        return None
    return np.mean([m for m, _ in found], 0), np.mean([n for _, n in found], 0)


def pair(mine: Cells, partner: Partner, folds: list[int], fractions: dict | None = None):
    """(mine, theirs) metric and NLL (seeds, examples) matrices on the same cells, or None
    where the reference lacks a cell or the examples disagree.

    Rows are my seeds, each against the reference's row of that seed or the mean of its seeds
    (a deterministic baseline has one). A strategy with one seed against a reference with
    several takes the reference's seeds as rows, so the bootstrap sees that seed noise.
    `fractions` ((seed, fold) -> fraction) reads the reference at my fraction: equal budget.
    """
    seeds = sorted({s for s, _ in mine})
    theirs_seeds = partner.seeds()
    rows = [(s, seeds[0]) for s in theirs_seeds] if len(seeds) == 1 and len(theirs_seeds) > 1 \
        else [(s, s) for s in seeds]
    out = {"metric": ([], []), "nll": ([], [])}
    for ref_seed, my_seed in rows:
        if not all((my_seed, k) in mine for k in folds):
            continue  # a seed missing a fold: not every example tested
        theirs = [partner(ref_seed, k, fractions[my_seed, k] if fractions else None) for k in folds]
        if any(t is None for t in theirs):
            return None
        for i, name in enumerate(("metric", "nll")):
            a = np.concatenate([mine[my_seed, k][i] for k in folds])
            b = np.concatenate([t[i] for t in theirs])
            if len(a) != len(b):
                return None
            out[name][0].append(a)
            out[name][1].append(b)
    if not out["metric"][0]:
        return None
    return tuple(np.stack(out[name][j]) for name in ("metric", "nll") for j in (0, 1))


class Partner:
    """A reference's outcomes by (seed, fold), or by (seed, fold, fraction) for equal budget."""

    def __init__(self, cells: dict) -> None:
        self.cells = cells

    def seeds(self) -> list[int]:
        return sorted({key[0] for key in self.cells})

    def __call__(self, seed: int, fold: int, fraction: float | None = None):
        key = (seed, fold) if fraction is None else (seed, fold, fraction)
        if key in self.cells:
            return self.cells[key]
        same = [v for k, v in self.cells.items() if k[1:] == key[1:]]
        return _mean(same) if same else None


def _cells(rows, cache: dict, with_fraction: bool = False) -> dict:
    """{(seed, fold[, fraction]): (metric, nll)} of test rows, files read once per board."""
    from harness import per_example

    out = {}
    for r in rows.itertuples():
        key = (r.source, r.config_hash)
        if key not in cache:
            data = per_example.load(r.source, r.config_hash, "test")
            cache[key] = None if data is None else (data["metric"], data["nll"])
        if cache[key] is not None:
            cell = (int(r.seed), int(r.fold)) + ((float(r.fraction),) if with_fraction else ())
            out[cell] = cache[key]
    return out


@dataclass
class _Unit:
    """What a comparison needs to know about the strategy being compared."""

    strategy: str
    mine: dict  # (seed, fold) -> (metric, nll)
    folds: list[int]
    flags: dict  # strategy -> (is a baseline, is seeded)
    seeds_of: dict  # strategy -> how many seeds it has on this (model, task, design)
    resamples: int

    def seeded(self, name: str) -> bool:
        return self.flags.get(name, (False, True))[1]

    def short(self, reference: str) -> str:
        """'' when each seeded side has MIN_SEEDS seeds or more (its seed variance can be
        estimated), else which side has how many."""
        for x in (self.strategy, reference):
            n = self.seeds_of.get(x, 1)
            if self.seeded(x) and n < MIN_SEEDS:
                return f"{x} has {n} seed{'s' * (n != 1)}"
        return ""


def _best(unit: _Unit, partners: dict[str, Partner], fractions: dict | None = None):
    """(the reference's mean, the comparison) against the reference with the highest mean on
    the same cells (picked on test, which can only favour the reference); (nan, None) when
    none ran on them. Only that one is bootstrapped."""
    found = {}
    for name, partner in partners.items():
        matrices = pair(unit.mine, partner, unit.folds, fractions)
        if matrices is not None:
            found[name] = matrices
    if not found:
        return math.nan, None
    name = max(found, key=lambda b: found[b][1].mean())
    m, b, m_nll, b_nll = found[name]
    seeded = unit.seeded(unit.strategy) or unit.seeded(name)
    return float(b.mean()), compare(name, m - b, seeded, m_nll - b_nll, unit.resamples, unit.short(name))


def board(df, chosen, flags: dict[str, tuple[bool, bool]], resamples: int = stats.RESAMPLES):
    """(table, verdicts): one row per (model, task, design, strategy, setting) with its value's
    interval and its comparisons, and one verdict per (model, task, design).

    `chosen` holds one test row per (model, task, design, strategy, seed, fold), at the
    fraction validation chose within that fold (or each fixed fraction: `setting`);
    `flags[strategy] = (is a baseline, is seeded)`.
    """
    import pandas as pd

    cache: dict = {}
    test = df[df.split == "test"]
    rows, verdicts = [], []
    for (model, task, design), group in chosen.groupby(["model", "task", "design"], sort=True):
        here = test[(test.model == model) & (test.task == task) & (test.design == design)]
        folds = sorted(set(here.fold.astype(int)))
        baselines = [s for s in sorted(set(group.strategy)) if flags.get(s, (False, True))[0]]
        at_fraction = {b: Partner(_cells(here[(here.strategy == b) & (here.fraction > 0)], cache, True))
                       for b in baselines}
        units = {key: g for key, g in group.groupby(["strategy", "setting"], sort=True)}
        as_tuned = {s: Partner(_cells(g, cache)) for (s, setting), g in units.items()
                    if s in baselines and (setting == "chosen" or (g.fraction == 0).all())}
        seeds_of = group.groupby("strategy").seed.nunique().to_dict()

        table_rows, candidates = [], []
        for (strategy, setting), g in units.items():
            baseline, seeded = flags.get(strategy, (False, True))
            mine = _cells(g, cache)
            fractions = {(int(r.seed), int(r.fold)): float(r.fraction) for r in g.itertuples()}
            stacked = stack({k: v[0] for k, v in mine.items()}, folds)
            low = high = math.nan
            if stacked is not None:
                low, high, _, _ = stats.two_way_bootstrap(stacked[1], seeded, resamples=resamples)
            unit = _Unit(strategy, mine, folds, flags, seeds_of, resamples)
            others = {b: p for b, p in at_fraction.items() if b != strategy}
            equal = _best(unit, others if (g.fraction > 0).all() else {}, fractions)
            tuned = _best(unit, {} if baseline else {b: p for b, p in as_tuned.items() if b != strategy})
            eigen = (math.nan, None)
            if strategy != "eigen" and not (g.fraction == 0).all():
                ref = units.get(("eigen", "chosen")) if setting == "chosen" else None
                same = here[(here.strategy == "eigen") & (here.fraction.isin(set(g.fraction)))]
                partner = {"eigen": Partner(_cells(ref, cache))} if ref is not None else \
                    {"eigen": Partner(_cells(same, cache, True))} if len(same) else {}
                eigen = _best(unit, partner, None if ref is not None else fractions)
            n_examples = int(stacked[1].shape[1]) if stacked is not None else int(g.n.max())
            value_mean, value_std, seeds, partial = _seed_summary(g, stacked, folds)
            row = {
                "model": model, "task": task, "design": design, "strategy": strategy,
                "role": "baseline" if baseline else "method",
                "fraction": ", ".join(f"{f:g}" for f in sorted(set(g.fraction))),
                "chosen_on": "-" if (g.fraction == 0).all() else g.chosen_on.iloc[0],
                "metric": g.metric.iloc[0], "split": "test",
                "value_mean": value_mean, "value_std": value_std,
                "value_low": low, "value_high": high,
                "delta_mean": g.delta.mean(), "p_value_median": g.p_value.median(),
                "nll_mean": g.nll.mean(), "nll_delta_mean": g.nll_delta.mean(),
                "general_nll_delta_mean": g.general_nll_delta.mean() if "general_nll_delta" in g
                else math.nan,
                "seeds": seeds, "seeds_partial": partial, "folds": int(g.folds.max()), "n": n_examples,
                "n_pruned": int(g.n_pruned.median()), "unit": g.unit.iloc[0] if "unit" in g else "",
                "verdict": "", "p_holm": math.nan,
            }
            for prefix, (ref_mean, c) in (("best", equal), ("tuned", tuned), ("eigen", eigen)):
                row.update(_comparison_columns(prefix, ref_mean, c))
            table_rows.append(row)
            judged = not baseline and (setting == "chosen" or not ((group.strategy == strategy)
                                                                   & (group.setting == "chosen")).any())
            fixed_settings = {st for s, st in units if s == strategy}
            if judged and (setting == "chosen" or len(fixed_settings) == 1):
                candidates.append((len(table_rows) - 1, Candidate(
                    strategy, float(value_mean), equal[1], tuned[1], int(g.folds.max()))))
        verdict = judge([c for _, c in candidates])
        for index, c in candidates:
            table_rows[index]["p_holm"] = c.p_adjusted
            table_rows[index]["verdict"] = "WIN" if c in verdict.winners else ""
        rows += table_rows
        verdicts.append(_verdict_row(model, task, design, verdict, table_rows, candidates))
    t = pd.DataFrame(rows)
    if not t.empty:
        t = t.sort_values(["model", "task", "design", "value_mean"], ascending=[True, True, True, False])
    return t.reset_index(drop=True), pd.DataFrame(verdicts)


def _seed_summary(g, stacked, folds: list[int]) -> tuple[float, float, int, int]:
    """(mean, spread across seeds, seeds, partial seeds) of one table row's value.

    With folds, a seed's value is its accuracy over every fold laid end to end, and only seeds
    that have every fold count: the same seeds the comparisons use (`stack`), so a sweep in
    progress cannot show a mean the verdict does not stand on, and the spread is between seeds,
    not between folds. Without folds (or without per-example files) it is the rows' own values.
    """
    if folds != [-1]:
        complete = complete_seeds(set(zip(g.seed, g.fold, strict=True)), folds)
        partial = int(g.seed.nunique()) - len(complete)
        if stacked is not None:
            per_seed = stacked[1].mean(1)
        elif complete:  # no per-example files: the complete seeds' mean over their fold rows
            per_seed = g[g.seed.isin(complete)].groupby("seed").value.mean().to_numpy()
        else:  # no seed has every fold yet: the rows so far, all of them partial
            return float(g.value.mean()), math.nan, 0, partial
        spread = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else math.nan
        return float(per_seed.mean()), spread, len(complete), partial
    spread = float(g.value.std(ddof=1)) if len(g) > 1 else math.nan
    return float(g.value.mean()), spread, int(g.seed.nunique()), 0


def _comparison_columns(prefix: str, ref_mean: float, c: Comparison | None) -> dict:
    name = {"best": "best_baseline", "tuned": "tuned_baseline", "eigen": "eigen"}[prefix]
    out = {f"delta_vs_{prefix}_mean": c.delta if c else math.nan,
           f"delta_vs_{prefix}_low": c.low if c else math.nan,
           f"delta_vs_{prefix}_high": c.high if c else math.nan,
           f"p_vs_{prefix}": c.p if c else math.nan,
           f"nll_delta_vs_{prefix}": c.nll_delta if c else math.nan}
    if prefix == "eigen":
        out["eigen_value"] = ref_mean
    else:
        out[name] = c.reference if c else ""
        out[f"{name}_value"] = ref_mean
    return out


def _points(x: float) -> str:
    return "-" if x != x else f"{100 * x:+.2f}"


def _effect(c: Comparison | None, where: str) -> str:
    if c is None:
        return f"no baseline {where} on the same examples"
    return (f"{_points(c.delta)} points [{_points(c.low)}, {_points(c.high)}] vs {c.reference} {where} "
            f"(p = {c.p:.2g})")


def _verdict_row(model, task, design, v: Verdict, table_rows: list[dict], candidates) -> dict:
    """One (model, task, design)'s verdict as columns and as one sentence."""
    best = v.best
    row = next((table_rows[i] for i, c in candidates if c is best), None)
    head = f"{model} / {task} [{design}]: {v.status}"
    if best is None:
        line = f"{head}: no method (non-baseline strategy) was run."
    else:
        sample = f"{row['seeds']} seed{'s' * (row['seeds'] != 1)} x {row['n']} examples"
        line = (f"{head}: {'best' if v.status != 'WIN' else 'winner'} {best.name} at {row['fraction']} "
                f"({row['chosen_on']}): {_effect(best.equal, 'at equal budget')}; "
                f"{_effect(best.tuned, 'as tuned')}; {sample}; decided by {v.decided_by}"
                + (f"; detectable effect {100 * v.mde:.2f} points" if v.mde == v.mde else "")
                + (f"; would need {v.needed}" if v.needed else "") + ".")
        if len(v.winners) > 1:
            line += " Also winning: " + ", ".join(c.name for c in v.winners if c is not best) + "."
    out = {"model": model, "task": task, "design": design, "method": best.name if best else "",
           "status": v.status, "decided_by": v.decided_by, "seeds": row["seeds"] if row else 0,
           "folds": row["folds"] if row else 0, "n": row["n"] if row else 0, "mde": v.mde,
           "needed": v.needed, "tests": v.tests, "line": line}
    for prefix, c in (("equal", best.equal if best else None), ("tuned", best.tuned if best else None)):
        out[f"{prefix}_baseline"] = c.reference if c else ""
        for column in ("delta", "low", "high", "p"):
            out[f"{prefix}_{column}"] = getattr(c, column) if c else math.nan
    return out

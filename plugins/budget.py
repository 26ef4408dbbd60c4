"""`eigen-budget`: the fraction is searched on held-out data inside the run, not guessed.

The best fraction varies by task and seed, and a sweep that picks it from the validation rows
afterwards costs one full cell per fraction. Scores do not depend on the fraction, so here
they are computed once and every fraction of a grid is tried: prune, evaluate on the search
split (at most `search_limit` examples, default 64), restore. The best is applied and only
that one is evaluated on the reported splits; ties go to the smaller fraction, and 0 (prune
nothing) is always a candidate, so the search can decline to prune.

`eigen-budget-kinds` also searches where to prune: each matrix kind of the selection alone
(q, k, v, o, mlp_in, mlp_out), every fraction of the grid of that kind's singular values, one
evaluation each; the row's details name the kind chosen (`chosen_matrices`).

`random-sv-budget-kinds` is its control, a baseline: the same search over random directions.

The requested fraction is the cap: the grid is 0, the values of `budget_grid` below it
(default 0.01, 0.02, 0.05, 0.1, 0.2, 0.3) and the cap itself. The search split is validation,
unless the task reports on its validation split (SuperGLUE here; the bench passes the
reported split as option `eval_split`): then it is the first `search_limit` training
documents, which may overlap the calibration sample. The cost (evaluations, seconds) and every
value tried are in the row's details.
"""

from __future__ import annotations

import time

import torch

from harness import hookimpl, spectral
from harness import progress as notes
from harness.edits import Edit
from harness.errors import HarnessError
from harness.strategy import PruneRequest, Strategy

DEFAULT_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
OPTIONS = {"search_limit": 64, "budget_grid": DEFAULT_GRID}  # --option search_limit=32


def search_grid(cap: float, grid=DEFAULT_GRID) -> list[float]:
    return sorted({0.0, cap, *(g for g in grid if g < cap)})


def _groups(request: PruneRequest, by_kind: bool) -> dict[str, list]:
    """The matrix sets searched: the strategy's whole selection, or each matrix kind alone."""
    if not by_kind:
        return {request.strategy.matrices: list(request.matrices)}
    groups: dict[str, list] = {}
    for m in request.matrices:
        groups.setdefault(m.kind, []).append(m)
    return groups


def budget_apply(request: PruneRequest, by_kind: bool = False) -> Edit:
    if request.evaluate is None:
        raise HarnessError("eigen-budget searches the fraction on held-out data and needs an evaluator")
    strategy = request.strategy
    limit = request.options.get("search_limit") or OPTIONS["search_limit"]
    split = request.search_split()
    grid = search_grid(request.fraction, request.options.get("budget_grid") or DEFAULT_GRID)
    scores, seconds = request.scores(strategy.scorer)  # once: a matrix's scores ignore the others'
    factors = request.factors()
    means = request.input_means() if strategy.compensate else None
    groups = _groups(request, by_kind)

    def prune(group: str, fraction: float) -> Edit:
        ids = [m.id for m in groups[group]]
        keep = {i: torch.ones_like(s, dtype=torch.bool) for i, s in scores.items()}
        keep.update(request.prune({i: scores[i] for i in ids}, fraction))
        return spectral.prune(request.matrices, factors, keep, means)

    first = next(iter(groups))
    trials = [(first, 0.0)] + [(g, f) for g in groups for f in grid if f > 0]  # 0 prunes nothing

    def label(group: str, fraction: float) -> str:
        return f"{group}@{fraction:g}" if by_kind and fraction > 0 else f"{fraction:g}"

    what = "kinds x fractions" if by_kind else "fractions"
    notes.announce(f"{strategy.name} cap={request.fraction:g} seed={request.seed}: searching "
                   f"{len(trials)} {what} on at most {limit} {split} examples each (up to "
                   f"{len(trials) * limit:,} examples evaluated; --limit does not bound it)")
    start = time.perf_counter()
    values = {}
    for k, (group, fraction) in enumerate(trials, 1):  # one evaluation each; scores are shared
        edit = prune(group, fraction)
        try:
            shown = label(group, fraction) if by_kind and fraction > 0 else f"fraction {fraction:g}"
            with notes.stage(f"searching {shown} ({k}/{len(trials)})"):
                values[(group, fraction)] = request.evaluate(split, limit)
        finally:
            edit.restore()
    search_seconds = time.perf_counter() - start
    order = {t: k for k, t in enumerate(trials)}  # ties: the smaller fraction, then the earlier kind
    group, fraction = max(trials, key=lambda t: (values[t], -t[1], -order[t]))
    edit = prune(group, fraction)
    edit.scores = scores
    edit.scoring_seconds = seconds
    edit.details = {"chosen_fraction": fraction, "search_split": split, "search_limit": limit,
                    "search_values": {label(*t): v for t, v in values.items()},
                    "search_evaluations": len(trials), "search_seconds": round(search_seconds, 3)}
    if by_kind:
        edit.details["chosen_matrices"] = group if fraction > 0 else ""
    return edit


@hookimpl
def register_strategies(register):
    register(Strategy("eigen-budget", "eigen with the fraction searched per run on 64 held-out examples "
                      "(0 up to the given fraction, which is the cap); test only at the choice",
                      matrices="k", scorer="attribution", fraction=0.3, apply=budget_apply,
                      spectral_options=True, options=dict(OPTIONS)))
    register(Strategy("eigen-budget-kinds", "eigen-budget over every matrix kind: which kind "
                      "(q, k, v, o, mlp_in, mlp_out) and what fraction of it, both searched on 64 "
                      "held-out examples; scores over all matrices computed once",
                      matrices="all", scorer="attribution", fraction=0.3,
                      apply=lambda request: budget_apply(request, by_kind=True), spectral_options=True,
                      options=dict(OPTIONS)))
    # Its control: the same search over kinds and fractions with random directions. Choosing
    # the best of 37 edits on held-out data can gain by itself (and the K-only baselines never
    # touch the MLP it may pick): this baseline says what the search gets without attribution.
    register(Strategy("random-sv-budget-kinds", "control for eigen-budget-kinds: the same search "
                      "(each kind alone, every fraction up to the cap, 64 held-out examples) over "
                      "random singular values", matrices="all", scorer="random", fraction=0.3,
                      apply=lambda request: budget_apply(request, by_kind=True), spectral_options=True,
                      options=dict(OPTIONS), baseline=True))

"""`PruneRequest` (one cell of the grid, as a strategy sees it) and the default spectral path.

A spectral strategy is selector + scorer + pruner + compensation; the core runs
SVD -> score -> mask -> prune for it. A strategy that does not remove singular values
(magnitude pruning, LASER, the unpruned baseline) supplies `apply` instead, and a reference
that needs no model at all (the majority answer) supplies `answerer`.

The recipe itself (`Strategy`) and its name helpers live in harness/recipes.py; they are
re-exported here because plugins import them from `harness.strategy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness import decompositions, spectral
from harness import progress as notes
from harness.calibration import Batch
from harness.edits import Edit
from harness.matrices import Matrix
from harness.plugins import check_tensors, plugin_call, registry
from harness.recipes import (  # noqa: F401  (re-exported: plugins import them from here)
    Strategy,
    option_text,
    option_value,
    recipe_name,
    variant_name,
    variant_settings,
)
from harness.scoring import ScoringContext


@dataclass
class PruneRequest:
    """Everything a strategy may use for one cell of the grid.

    `cache` lives as long as the (task, matrix selection) does, so scores and input means are
    computed once and reused across fractions; `spectrum` lives as long as the model.
    """

    model: nn.Module
    matrices: list[Matrix]
    fraction: float
    seed: int
    strategy: Strategy
    batches: list[Batch]
    spectrum: spectral.SpectrumCache
    options: dict[str, Any] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)
    # evaluate(split, limit) -> metric value of the model as it is now (LASER's search uses it)
    evaluate: Callable[[str, int | None], float] | None = None

    def factors(self) -> dict[str, spectral.Factors]:
        """The selected matrices' factors in the strategy's basis (cached per model, basis and
        calibration set)."""
        return decompositions.factors(self.spectrum, self.matrices, self.strategy.decomposition,
                                      self.model, self.batches, self.options)

    def search_split(self) -> str:
        """Where a strategy may search (a fraction, a matrix) without touching the reported
        split: validation, unless the task reports on its validation split (SuperGLUE here);
        then train."""
        return "train" if self.options.get("eval_split") == "validation" else "validation"

    @property
    def objective(self) -> str:
        return self.strategy.objective

    @property
    def basis(self) -> tuple:
        """() in the plain basis, else the decomposition and its settings (in cache keys)."""
        return decompositions.basis_key(self.strategy.decomposition, self.options)

    def context(self) -> ScoringContext:
        key = ("context", self.seed, self.objective, *self.basis)
        if key not in self.cache:
            self.cache[key] = ScoringContext(
                self.model, self.matrices, self.factors(), self.batches, self.seed,
                objective=self.objective,
            )
        return self.cache[key]

    def scores(self, scorer_name: str) -> tuple[dict[str, torch.Tensor], float]:
        """(scores, seconds it took to compute them), computed once per scorer, seed and
        objective (the strategy's)."""
        key = ("scores", scorer_name, self.seed, self.objective, *self.basis)
        if key not in self.cache:
            self.factors()  # the SVDs first: their time is the row's svd_seconds, not scoring's
            shown = f"scoring ({scorer_name}, {sum(b.n_examples for b in self.batches)} calibration examples)"
            with notes.stage(shown):
                self.cache[key] = self.score(self.context(), scorer_name)
        return self.cache[key]

    # Every scorer and pruner call of the core and of searching strategies goes through `score`
    # and `prune` (or the functions below), so a plugin's exception or wrong shape is named the
    # same way everywhere.
    def score(self, ctx: ScoringContext,
              scorer_name: str | None = None) -> tuple[dict[str, torch.Tensor], float]:
        """(scores, seconds) of a scorer (the strategy's by default) on `ctx`, not cached: a
        search that rescored a changed model (eigen-iterative's rounds) passes its own context."""
        return run_scorer(scorer_name or self.strategy.scorer, ctx)

    def prune(self, scores: dict[str, torch.Tensor],
              fraction: float | None = None) -> dict[str, torch.Tensor]:
        """The strategy's pruner's keep-masks for `scores` (any subset of the matrices) at
        `fraction` (the cell's by default)."""
        return run_pruner(self.strategy.pruner, scores, self.fraction if fraction is None else fraction,
                          self.options)

    def input_means(self) -> dict[str, torch.Tensor]:
        return self.context().input_means()


def run_scorer(name: str, ctx: ScoringContext) -> tuple[dict[str, torch.Tensor], float]:
    """(scores, seconds) of the scorer `name` on `ctx`; its failure or a wrong shape is one line
    naming the scorer, its plugin and the hook."""
    scorer = registry().get("scorers", name)
    start = time.perf_counter()
    with plugin_call("scorers", name):
        scores = scorer(ctx)
    check_tensors("scorers", name, scores, {k: tuple(f.S.shape) for k, f in ctx.factors.items()},
                  floating=True)
    return scores, time.perf_counter() - start


def run_pruner(name: str, scores: dict[str, torch.Tensor], fraction: float,
               options: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The pruner `name`'s keep-masks for `scores`, checked like `run_scorer`'s scores."""
    pruner = registry().get("pruners", name)
    with plugin_call("pruners", name):
        keep = pruner(scores, fraction, options)
    check_tensors("pruners", name, keep, {k: tuple(v.shape) for k, v in scores.items()}, floating=False)
    return keep


def spectral_apply(request: PruneRequest) -> Edit:
    """The default path: score -> keep-mask -> prune (with bias compensation if asked)."""
    strategy = request.strategy
    scores, seconds = request.scores(strategy.scorer)
    keep = request.prune(scores)
    means = request.input_means() if strategy.compensate else None
    edit = spectral.prune(request.matrices, request.factors(), keep, means)
    edit.scores = scores
    edit.scoring_seconds = seconds
    return edit

"""`Strategy`: a named recipe (`--strategy eigen`), and the default spectral path it runs.

A spectral strategy is selector + scorer + pruner + compensation; the core runs
SVD -> score -> mask -> prune for it. A strategy that does not remove singular values
(magnitude pruning, LASER, the unpruned baseline) supplies `apply` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harness import spectral
from harness.calibration import Batch
from harness.edits import Edit
from harness.matrices import Matrix
from harness.scoring import ScoringContext


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    matrices: str = "k"  # selector names, comma-separated (a union)
    scorer: str | None = None
    pruner: str = "global-fraction"
    compensate: bool = True
    fraction: float = 0.2  # the default budget
    uses_fraction: bool = True  # False for the unpruned baseline
    needs_calibration: bool = True
    seeded: bool = True  # False: the seed changes nothing, so a sweep runs one seed only
    apply: Callable[[PruneRequest], Edit] | None = None
    # True: `apply` is a variant of the spectral path that honours scorer, pruner and
    # compensate (and their CLI overrides), so rows report them as for a plain spectral one.
    spectral_options: bool = False


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
        return self.spectrum.get(self.matrices)

    def context(self) -> ScoringContext:
        key = ("context", self.seed)
        if key not in self.cache:
            self.cache[key] = ScoringContext(
                self.model, self.matrices, self.factors(), self.batches, self.seed
            )
        return self.cache[key]

    def scores(self, scorer_name: str) -> tuple[dict[str, torch.Tensor], float]:
        """(scores, seconds it took to compute them), computed once per scorer and seed."""
        from harness.plugins import registry

        key = ("scores", scorer_name, self.seed)
        if key not in self.cache:
            scorer = registry().get("scorers", scorer_name)
            start = time.perf_counter()
            scores = scorer(self.context())
            self.cache[key] = (scores, time.perf_counter() - start)
        return self.cache[key]

    def input_means(self) -> dict[str, torch.Tensor]:
        return self.context().input_means()


def spectral_apply(request: PruneRequest) -> Edit:
    """The default path: score -> keep-mask -> prune (with bias compensation if asked)."""
    from harness.plugins import registry

    strategy = request.strategy
    scores, seconds = request.scores(strategy.scorer)
    pruner = registry().get("pruners", strategy.pruner)
    keep = pruner(scores, request.fraction, request.options)
    means = request.input_means() if strategy.compensate else None
    edit = spectral.prune(request.matrices, request.factors(), keep, means)
    edit.scores = scores
    edit.scoring_seconds = seconds
    return edit

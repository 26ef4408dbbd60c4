"""`Strategy`: a named recipe (`--strategy eigen`), and the default spectral path it runs.

A spectral strategy is selector + scorer + pruner + compensation; the core runs
SVD -> score -> mask -> prune for it. A strategy that does not remove singular values
(magnitude pruning, LASER, the unpruned baseline) supplies `apply` instead, and a reference
that needs no model at all (the majority answer) supplies `answerer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    objective: str = "ce"  # what the scores estimate (hook register_objectives; --objective)
    decomposition: str = "plain"  # the basis of the singular values (hook register_decompositions)
    pruner: str = "global-fraction"
    compensate: bool = True
    fraction: float = 0.2  # the default budget
    uses_fraction: bool = True  # False for the unpruned baseline
    needs_calibration: bool = True
    seeded: bool = True  # False: the seed changes nothing, so a sweep runs one seed only
    # True for the comparisons a method must beat (the leaderboard tests every method against
    # the best of them at the same budget); controls of a method's own parts stay False
    baseline: bool = False
    apply: Callable[[PruneRequest], Edit] | None = None
    # True: `apply` is a variant of the spectral path that honours scorer, pruner and
    # compensate (and their CLI overrides), so rows report them as for a plain spectral one.
    spectral_options: bool = False
    # The recipe's own knobs and their defaults ({"rounds": 4}); `apply` reads them from
    # request.options, and `--option rounds=2` sets one for a run (the row is then labelled
    # `eigen-iterative[rounds=2]`). Numbers must be > 0; a tuple default takes a comma list.
    options: dict[str, Any] = field(default_factory=dict)
    # A reference that needs no model (harness/majority.py): given the lm-eval Task, returns the
    # lm-eval LM that answers it instead of the model; the weights are never touched.
    answerer: Callable[[Any], Any] | None = None

    @property
    def spectral(self) -> bool:
        """It runs the spectral path (its own or a variant): scorer, objective, pruner and
        compensation mean something to it."""
        return (self.apply is None or self.spectral_options) and self.answerer is None


def option_value(strategy: Strategy, name: str, raw: str) -> Any:
    """`raw` (from `--option name=raw`) as the type of the strategy's default for `name`."""
    from harness.errors import HarnessError

    default = strategy.options[name]
    where = f"option {name} of {strategy.name}"
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise HarnessError(f"{where} is true or false, got '{raw}'")
        return raw.lower() in ("true", "1", "yes")
    cast = float if isinstance(default, float | tuple) else int if isinstance(default, int) else str
    parts = raw.split(",") if isinstance(default, tuple) else [raw]
    try:
        values = [cast(part.strip()) for part in parts]
    except ValueError:
        kind = {float: "a number", int: "a whole number"}.get(cast, "text")
        if isinstance(default, tuple):
            kind = f"a comma list of {kind.split(' ', 1)[1]}s"
        raise HarnessError(f"{where} must be {kind}, got '{raw}'") from None
    if cast is not str and any(not v > 0 for v in values):
        raise HarnessError(f"{where} must be > 0, got '{raw}'")
    return tuple(values) if isinstance(default, tuple) else values[0]


def variant_name(recipe: str, changed: dict[str, Any]) -> str:
    """The name of a recipe some options changed: `eigen[objective=margin;scorer=gradient]`."""
    return f"{recipe}[{';'.join(f'{k}={option_text(v)}' for k, v in changed.items())}]"


def option_text(value: Any) -> str:
    """A setting as a user types it: 1.5, 0.05,0.1 (a tuple), gradient."""
    if isinstance(value, tuple):
        return ",".join(option_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def recipe_name(name: str) -> str:
    """The registered recipe behind a name `variant_name` made (the name itself otherwise)."""
    return name.split("[", 1)[0]


def variant_settings(name: str) -> dict[str, str]:
    """What `variant_name` put in the brackets, as text: `{"objective": "margin"}`."""
    inside = name[len(recipe_name(name)) + 1 : -1] if name.endswith("]") and "[" in name else ""
    return dict(part.split("=", 1) for part in inside.split(";") if "=" in part)


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
        return self.spectrum.get(self.matrices, self.strategy.decomposition, self.model,
                                 self.batches, self.options)

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
        from harness.decompositions import basis_key

        return basis_key(self.strategy.decomposition, self.options)

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
        from harness.plugins import registry

        key = ("scores", scorer_name, self.seed, self.objective, *self.basis)
        if key not in self.cache:
            scorer = registry().get("scorers", scorer_name)
            self.factors()  # the SVDs first: their time is the row's svd_seconds, not scoring's
            start = time.perf_counter()
            with plugin_call("scorers", scorer_name):
                scores = scorer(self.context())
            expected = {k: tuple(f.S.shape) for k, f in self.factors().items()}
            check_tensors("scorers", scorer_name, scores, expected, floating=True)
            self.cache[key] = (scores, time.perf_counter() - start)
        return self.cache[key]

    def input_means(self) -> dict[str, torch.Tensor]:
        return self.context().input_means()


SINGULAR = {"scorers": "scorer", "pruners": "pruner", "strategies": "strategy",
            "objectives": "objective", "decompositions": "decomposition"}


@contextmanager
def plugin_call(kind: str, name: str) -> Iterator[None]:
    """A plugin component's own failure becomes one line naming it, its plugin and its hook.

    HarnessError (a message the plugin wrote for the user) and out-of-memory errors (the
    sweep runner suggests a smaller option for those) pass through unchanged.
    """
    from harness.errors import HarnessError
    from harness.plugins import owner

    try:
        yield
    except (HarnessError, MemoryError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        raise HarnessError(
            f"{SINGULAR[kind]} '{name}' of plugin '{owner(kind, name)}' (hook register_{kind}) "
            f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc


def check_tensors(kind: str, name: str, got: Any, expected: dict[str, tuple], floating: bool) -> None:
    """What a scorer or pruner returned has one tensor per matrix id, of the promised shape
    and dtype (float scores, bool keep-masks); else one line naming the plugin and the hook."""
    from harness.errors import HarnessError
    from harness.plugins import owner

    where = f"{SINGULAR[kind]} '{name}' of plugin '{owner(kind, name)}' (hook register_{kind})"
    what = "a float tensor (heads, rank)" if floating else "a bool keep-mask shaped like its scores"
    if not isinstance(got, dict) or set(got) != set(expected):
        given = sorted(got)[:3] if isinstance(got, dict) else type(got).__name__
        raise HarnessError(f"{where} must return {{matrix id: {what}}} for ids {sorted(expected)[:3]}"
                           f"{'...' if len(expected) > 3 else ''}; got {given}")
    for key, shape in expected.items():
        t = got[key]
        if not isinstance(t, torch.Tensor):
            raise HarnessError(f"{where} returned {type(t).__name__} for {key}; expected {what}")
        ok = t.dtype.is_floating_point if floating else t.dtype == torch.bool
        if tuple(t.shape) != shape or not ok:
            raise HarnessError(f"{where} returned {t.dtype} {tuple(t.shape)} for {key}; expected "
                               f"{what}: {'float' if floating else 'torch.bool'} {shape}")


def spectral_apply(request: PruneRequest) -> Edit:
    """The default path: score -> keep-mask -> prune (with bias compensation if asked)."""
    from harness.plugins import registry

    strategy = request.strategy
    scores, seconds = request.scores(strategy.scorer)
    pruner = registry().get("pruners", strategy.pruner)
    with plugin_call("pruners", strategy.pruner):
        keep = pruner(scores, request.fraction, request.options)
    check_tensors("pruners", strategy.pruner, keep, {k: tuple(v.shape) for k, v in scores.items()},
                  floating=False)
    means = request.input_means() if strategy.compensate else None
    edit = spectral.prune(request.matrices, request.factors(), keep, means)
    edit.scores = scores
    edit.scoring_seconds = seconds
    return edit

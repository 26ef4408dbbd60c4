"""`Strategy`: a named recipe (`--strategy eigen`), and the names its variants go by.

A recipe is plain data: which selector, scorer, objective and pruner, the default budget and
the recipe's own options. It lives apart from the code that runs it (harness/strategy.py) so
that the registry (harness/plugins.py), the report and the CLI can read recipes and their
names without importing the spectral path. Plugins import it from `harness.strategy`, which
re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:  # only for the annotation: a recipe module stays torch-free
    from harness.edits import Edit


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
    # (harness.strategy.PruneRequest) -> Edit; typed Any here so a recipe stays plain data
    apply: Callable[[Any], Edit] | None = None
    # True: `apply` is a variant of the spectral path that honours scorer, pruner and
    # compensate (and their CLI overrides), so rows report them as for a plain spectral one.
    spectral_options: bool = False
    # The recipe's own knobs and their defaults ({"rounds": 4}); `apply` reads them from
    # request.options, and `--option rounds=2` sets one for a run (the row is then labelled
    # `eigen-iterative[rounds=2]`). Numbers must be > 0; a tuple default takes a comma list.
    options: dict[str, Any] = field(default_factory=dict)
    # A reference that needs no model (harness/majority_answer.py): given the lm-eval Task, returns the
    # lm-eval LM that answers it instead of the model; the weights are never touched.
    answerer: Callable[[Any], Any] | None = None

    @property
    def spectral(self) -> bool:
        """It runs the spectral path (its own or a variant): scorer, objective, pruner and
        compensation mean something to it."""
        return (self.apply is None or self.spectral_options) and self.answerer is None


def option_value(strategy: Strategy, name: str, raw: str) -> Any:
    """`raw` (from `--option name=raw`) as the type of the strategy's default for `name`."""
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

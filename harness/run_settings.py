"""The settings of a `harness bench` run, each declared once, in one table (`RunSettings`).

Why: a setting such as `--calibration-batch-size` used to be spelt out apart in the click
option, `BenchConfig`'s field, the config hash, the row's columns and the board's reproduce
command, and each new setting had to be added to all of them by hand (the command forgot
some, so a board row's command could rerun other cells than the row's). Here each setting is
one row: its flag, type, default and help (the click options and `BenchConfig`'s fields are
made from them), how it enters a cell's config hash (`hashed`, read by harness/grid.py), the
results-CSV column that records it, and how the board's reproduce command gives it back
(harness/board_rows.py). A new setting is one row here, plus the code that uses it.

The grid's axes (--model, --task, --strategy, --fraction, --seed) are not settings of a cell
but lists that make cells: they stay in harness/cli.py and harness/grid.py. Where a setting's
value is allowed is checked in harness/preflight.py only; what here turns the command line's
text into values refuses only text that cannot become one (`--option rounds`, no `=`).

The order of the table is the order of `harness bench --help`.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.errors import HarnessError

if TYPE_CHECKING:  # only for annotations: this table stays a leaf
    from harness.recipes import Strategy

# How a setting enters a cell's config hash (harness/grid.py cell_config); "": it does not.
RUN = "run"  # the run's value
RECIPE = "recipe"  # the resolved strategy's field of the same name: its recipe's, or the override
PRUNING = "pruning"  # the run's value, sorted, in pruning cells only
SLOT = "slot"  # through the task slot: `folds` and `fold`, in a folded run only
NAME = "name"  # through the strategy's name: an override renames it, eigen[objective=margin]

# How the board's reproduce command gives it back (harness/board_rows.py); "": it does not.
RECORDED = "recorded"  # `--flag value` wherever the row's column holds a value
WITH_PRUNER = "with pruner"  # --compensate or --no-compensate, beside a recorded pruner
WITH_SCORER = "with scorer"  # `--flag value` where the row has a scorer (only scorers read it)
LABEL = "label"  # from the strategy's label: eigen[objective=margin] -> --objective margin
SPLITS = "splits"  # --select-on none where no row is of the validation split
FOLDED = "folded"  # `--folds K` where the row's column holds K > 0 (0: the task's own split)
TRANSFER = "transfer"  # `--also-eval a,b`: the tasks named in the row's transfer column

_ALWAYS = object()


@dataclass(frozen=True)
class Setting:
    """One row of the table (made by `setting`; `name` is the field's)."""

    flag: str  # as click declares it: "--limit", "--compensate/--no-compensate"
    default: Any
    help: str | None
    hashed: str  # RUN, RECIPE, PRUNING, SLOT, NAME or ""
    column: str | None  # the results-CSV column that records it (None: not recorded)
    rebuilt: str  # RECORDED, WITH_PRUNER, WITH_SCORER, LABEL, SPLITS, FOLDED, TRANSFER or ""
    recipe: bool  # overrides the strategy's field of the same name (harness/grid.py)
    choices: tuple[str, ...] | None
    hash_omits: Any  # hashed only away from this value, so rows older than the setting keep their hash
    parse: Callable[[Any], Any] | None  # click's value -> the setting's (None: click's as it is)
    click_args: dict  # further click.option arguments: show_default, metavar, envvar, type...
    name: str = ""

    @property
    def option(self) -> str:
        """The flag as a message names it: --compensate, not --compensate/--no-compensate."""
        return self.flag.split("/")[0]


def setting(flag: str, default: Any = None, help: str | None = None, *, hashed: str = "",
            column: str | None = None, rebuilt: str = "", recipe: bool = False,
            choices: tuple[str, ...] | None = None, hash_omits: Any = _ALWAYS,
            parse: Callable[[Any], Any] | None = None, **click_args: Any) -> Any:
    """A field of `RunSettings` that carries its row of the table."""
    spec = Setting(flag, default, help, hashed, column, rebuilt, recipe, choices, hash_omits, parse,
                   click_args)
    if isinstance(default, list | dict):
        return field(default_factory=lambda: copy.copy(default), metadata={"setting": spec})
    return field(default=default, metadata={"setting": spec})


def split_list(values, cast=str, option: str = "value") -> list:
    """Repeatable options that also take comma lists: --task a,b --task c -> [a, b, c]."""
    out = []
    for value in values or ():
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(cast(part))
            except ValueError:
                kind = {"int": "an integer", "float": "a number"}.get(cast.__name__, cast.__name__)
                raise HarnessError(f"{option} '{part}' is not {kind}") from None
    return out


def _name_values(items: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise HarnessError(f"--option '{item}' is not NAME=VALUE (e.g. --option rounds=2)")
        options[name.strip()] = value.strip()
    return options


def _count_or_text(text: str) -> int | str:
    """"8" -> 8; anything else stays text ("auto", or what preflight refuses)."""
    return int(text) if text.isascii() and text.isdigit() else text


DEFAULT_OUTPUT = Path("leaderboard") / "results.csv"


@dataclass
class RunSettings:
    """Every `harness bench` setting but the grid's axes; `BenchConfig` (harness/grid.py) adds those."""

    limit: int | None = setting(
        "--limit", None, "Evaluate at most N examples per split (for quick runs).",
        hashed=RUN, column="limit", rebuilt=RECORDED)
    output: Path = setting(
        "--output", DEFAULT_OUTPUT, "Results CSV; rows are appended, finished cells are skipped on re-run.",
        type=click.Path(dir_okay=False, path_type=Path), show_default=True)
    force: bool = setting("--force", False, "Re-run cells already in the results CSV.", is_flag=True)
    # validation, none, or auto: validation only where there is a choice (grid.select_on)
    select_on: str = setting(
        "--select-on", "auto", "Also evaluate the validation split, so the fraction can be chosen there "
        "(auto: only when a strategy runs at two fractions or more).",
        choices=("auto", "validation", "none"), rebuilt=SPLITS, show_default=True)
    # K: cross-fitted evaluation, every labelled document tested once
    folds: int | None = setting(
        "--folds", None, "Cross-fitted evaluation: split the task's labelled documents into K folds "
        "and test each once, calibrating and choosing on the others.", hashed=SLOT, column="folds",
        rebuilt=FOLDED)
    # chosen: test only the fraction validation picks per (strategy, seed)
    test_on: str = setting(
        "--test-on", "all", "chosen: evaluate test only for the fraction validation picks per strategy "
        "and seed.", choices=("all", "chosen"), show_default=True)
    matrices: str | None = setting(
        "--matrices", None, "Override the strategy's matrices: q,k,v,o,mlp_in,mlp_out,attn,mlp,all.",
        hashed=RECIPE, column="matrices", rebuilt=RECORDED, recipe=True)
    layers: str | None = setting(
        "--layers", None, "Restrict to layers: 0,3,5-7 or -4: (the last four).",
        hashed=RUN, column="layers", rebuilt=RECORDED)
    scorer: str | None = setting(
        "--scorer", None, "Override the strategy's scorer (see `harness plugins`).",
        hashed=RECIPE, column="scorer", rebuilt=RECORDED, recipe=True)
    objective: str | None = setting(
        "--objective", None, "What the scores estimate: ce (default), margin, first-token, or "
        "a plugin's (see `harness plugins`).", hashed=NAME, column="objective", rebuilt=LABEL, recipe=True)
    pruner: str | None = setting(
        "--pruner", None, "Override the strategy's pruner: global-fraction, per-matrix, threshold.",
        hashed=RECIPE, column="pruner", rebuilt=RECORDED, recipe=True)
    decomposition: str | None = setting(
        "--decomposition", None, "The basis of the singular values: plain (default), scaled "
        "(ASVD), whitened (SVD-LLM), or a plugin's (see `harness plugins`).",
        hashed=RECIPE, hash_omits="plain", column="decomposition", rebuilt=LABEL, recipe=True)
    # tasks each pruned cell is measured on too (the row's `transfer` column holds the results)
    also_eval: list[str] = setting(
        "--also-eval", [], "Also measure every pruned cell on these tasks (comma list): the board's "
        "transfer table, pruned for one task and measured on another.",
        hashed=PRUNING, hash_omits=[], column="transfer", rebuilt=TRANSFER, parse=split_list, multiple=True,
        metavar="TASKS")
    compensate: bool | None = setting(
        "--compensate/--no-compensate", None, "Move the pruned directions' mean effect into the bias "
        "(default: per strategy).", hashed=RECIPE, column="compensate", rebuilt=WITH_PRUNER, recipe=True)
    threshold: float | None = setting(
        "--threshold", None, "Score threshold for --pruner threshold.",
        hashed=RUN, column="threshold", rebuilt=RECORDED)
    # --option name=value: the strategies' own knobs
    options: dict[str, str] = setting(
        "--option", {}, "Set a strategy's own option, repeatable: --option verify_multiple=1.5 "
        "(`harness plugins` lists each strategy's options).",
        hashed=NAME, rebuilt=LABEL, parse=_name_values, multiple=True, metavar="NAME=VALUE")
    calibration_size: int = setting(
        "--calibration-size", 64, "Training examples used to score singular values.",
        hashed=RUN, column="calibration_size", rebuilt=WITH_SCORER, show_default=True)
    calibration_batch_size: int = setting(
        "--calibration-batch-size", 16, hashed=RUN, column="calibration_batch_size", rebuilt=RECORDED,
        show_default=True)
    # lm-eval's; "auto": see evaluate.resolve_batch_size
    batch_size: int | str = setting(
        "--batch-size", "auto", "lm-eval batch size, or auto (largest that fits on CUDA; on CPU 32, "
        "fewer where long prompts' logits would pass 2 GiB, and each multiple-choice context run once).",
        parse=_count_or_text, show_default=True)
    device: str = setting("--device", "auto", "auto, cpu, cuda or mps.", show_default=True)
    dtype: str = setting("--dtype", "auto", "auto, float32, bfloat16 or float16.",
                         hashed=RUN, column="dtype", rebuilt=RECORDED, show_default=True)
    tasks_dir: str | None = setting("--tasks-dir", None, "A directory of your own lm-eval task YAMLs.")
    data_dir: str | None = setting(
        "--data-dir", None, "Local data for the shipped tasks that need it (SuperGLUE jsonl files).",
        envvar="EIGENHARNESS_DATA_DIR")
    save: Path | None = setting(
        "--save", None, "Write the pruned model (one cell only) as a transformers directory.",
        type=click.Path(file_okay=False, path_type=Path))
    # an executor plugin: local (this process) or ray
    executor: str = setting("--executor", "local", "Where cells run: local (this process) or ray "
                            "(see `harness plugins`).", show_default=True)


SETTINGS: tuple[Setting, ...] = tuple(replace(f.metadata["setting"], name=f.name)
                                      for f in fields(RunSettings))
SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}


def _click_type(name: str) -> Any:
    """int or float where the field's annotation says so (`int | None` too); else click's str."""
    kinds = [t for t in typing.get_args(_HINTS[name]) or (_HINTS[name],) if t is not type(None)]
    return kinds[0] if len(kinds) == 1 and kinds[0] in (int, float) else None


_HINTS = typing.get_type_hints(RunSettings)


def click_options(command: Callable) -> Callable:
    """Decorator: the table's settings as click options of `command`, in the table's order."""
    for s in reversed(SETTINGS):
        args = {"help": s.help, **s.click_args}
        if s.choices:
            args["type"] = click.Choice(list(s.choices))
        elif "type" not in args and _click_type(s.name) is not None:
            args["type"] = _click_type(s.name)
        # click's own default where it means the same (nothing given: None, (), an unset flag);
        # a --x/--no-x pair's None ("the strategy's own") must be given, or click makes it False
        if not (args.get("multiple") or args.get("is_flag") or (s.default is None and "/" not in s.flag)):
            args["default"] = s.default
        command = click.option(s.flag, s.name, **args)(command)
    return command


def from_cli(params: dict[str, Any]) -> dict[str, Any]:
    """`RunSettings` keyword arguments from click's parsed values (harness/cli.py bench)."""
    return {s.name: s.parse(params[s.name]) if s.parse else params[s.name] for s in SETTINGS}


def hashed(run: RunSettings, strategy: Strategy) -> dict[str, Any]:
    """The settings that define a cell, keyed as its config hash has always read them (the grid's
    axes and the fold are added by harness/grid.py cell_config)."""
    out = {}
    for s in SETTINGS:
        if s.hashed == RUN:
            value = getattr(run, s.name)
        elif s.hashed == RECIPE:
            value = getattr(strategy, s.name)
        elif s.hashed == PRUNING and strategy.uses_fraction:
            value = sorted(getattr(run, s.name))
        else:
            continue
        if s.hash_omits is _ALWAYS or value != s.hash_omits:
            out[s.name] = value
    return out


def recipe_overrides(run: RunSettings) -> dict[str, Any]:
    """The recipe fields the run overrides ({"scorer": "gradient"}), in the order a variant's
    label lists them (`eigen[scorer=gradient;compensate=False]`)."""
    return {s.name: getattr(run, s.name) for s in SETTINGS if s.recipe and getattr(run, s.name) is not None}

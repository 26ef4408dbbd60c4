"""Every `harness bench` option checked before anything slow (model load, task data, baseline).

A typo found after a two-minute model load and a baseline evaluation costs the user the two
minutes; found here it costs a second. Each check raises `HarnessError` with one line naming
the problem and the valid choices; nothing is written until every check has passed.

Components declare what they need of the run's settings with `needs` where they are defined
(a scorer that compares examples within a batch, a pruner that needs `--threshold`), so a
plugin's requirements are checked here too, without the core knowing the plugin:

    from harness.preflight import needs

    @needs(min_batch_examples=2)
    def my_scorer(ctx): ...
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import grid, models
from harness import tasks as task_lib
from harness.atomic import replacing
from harness.errors import HarnessError, warn
from harness.grid import BenchConfig
from harness.leaderboard import scan, set_aside_torn
from harness.matrices import parse_layers
from harness.plugins import registry
from harness.recipes import Strategy, recipe_name
from harness.run_settings import SETTING, SETTINGS

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


@dataclass(frozen=True)
class Needs:
    """What a scorer or pruner requires of the run's settings."""

    options: tuple[str, ...] = ()  # bench options that must be given, e.g. ("threshold",)
    min_batch_examples: int = 1  # every calibration batch must hold at least this many examples


def needs(*, options: tuple[str, ...] = (), min_batch_examples: int = 1) -> Callable:
    """Decorator: declare a scorer's or pruner's needs, checked before the model loads."""

    def mark(fn: Callable) -> Callable:
        fn.needs = Needs(tuple(options), min_batch_examples)
        return fn

    return mark


def needs_of(component: Any) -> Needs:
    return getattr(component, "needs", None) or Needs()


def check(cfg: BenchConfig) -> list[Strategy]:
    """Raise on the first bad option; return the resolved strategies. Then repair what can be
    repaired without loss (a truncated last line of the results CSV is set aside)."""
    _check_settings(cfg)  # first: the cheapest checks
    _check_output(cfg.output)
    _check_save(cfg.save)
    device = models.resolve_device(cfg.device)
    models.resolve_dtype(cfg.dtype, device)
    strategies = grid.resolve_strategies(cfg)  # every strategy, scorer, pruner, selector name
    if cfg.test_on == "chosen" and grid.select_on(cfg, strategies) == "none":  # (auto: one fraction each)
        raise HarnessError("--test-on chosen needs --select-on validation (the choice is made there)")
    _check_needs(cfg, strategies)
    registry().get("executors", cfg.executor)  # the name only: its engine (Ray) is imported by bench
    if cfg.save is not None and cfg.executor != "local":
        raise HarnessError("--save writes one cell's model on this machine; use --executor local")
    check_saved_cells(cfg, strategies, len(cfg.tasks))
    config = check_model(cfg.model)
    _check_layers(cfg.layers, config)
    if cfg.data_dir is not None and not Path(cfg.data_dir).expanduser().is_dir():
        raise HarnessError(f"--data-dir '{cfg.data_dir}' is not a directory")
    if cfg.tasks_dir is not None:
        check_tasks_dir(cfg.tasks_dir)
    check_task_names(cfg.tasks, cfg.tasks_dir)
    if cfg.also_eval:  # the same fast check: else found after the model and lm-eval's full index load
        check_task_names(cfg.also_eval, cfg.tasks_dir)
    note = set_aside_torn(cfg.output)
    if note:
        warn(note)
    return strategies


# -- run settings ----------------------------------------------------------------------------
def _check_settings(cfg: BenchConfig) -> None:
    """The values click parsed but cannot bound, and settings that exclude each other."""
    if cfg.batch_size != "auto" and not (isinstance(cfg.batch_size, int) and cfg.batch_size >= 1):
        raise HarnessError(f"--batch-size '{cfg.batch_size}' is not a whole number >= 1 or auto")
    if cfg.calibration_size < 1 or cfg.calibration_batch_size < 1:
        raise HarnessError("--calibration-size and --calibration-batch-size must be >= 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise HarnessError("--limit must be >= 1")
    if cfg.executor_options.max_retries < 0:
        raise HarnessError("--max-retries must be >= 0")
    if cfg.folds is not None and cfg.folds < 2:
        raise HarnessError(f"--folds {cfg.folds} must be at least 2 (or leave it out: the task's own split)")
    for s in SETTINGS:  # click checks them on the command line; a caller of bench.run may not
        value = getattr(cfg, s.name)
        if s.choices and value not in s.choices:
            raise HarnessError(f"unknown {s.option} '{value}'; choose from: {', '.join(s.choices)}")


# -- files -----------------------------------------------------------------------------------
def _check_output(output: Path) -> None:
    output = Path(output)
    if output.is_dir():
        raise HarnessError(f"--output '{output}' is a directory; give a .csv file path")
    parent = _existing_parent(output)
    if not parent.is_dir():
        raise HarnessError(f"--output '{output}': '{parent}' is a file, not a directory")
    if not os.access(parent, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise HarnessError(f"--output '{output}' is not writable")
    scan(output)  # an error, naming the file, when it exists and is not a results CSV


def check_saved_cells(cfg: BenchConfig, strategies: list[Strategy], n_tasks: int) -> None:
    """--save writes one model: one pruned cell. Checked here on the task names given, and again by
    the driver on the tasks they loaded as (a group or tag is several)."""
    if cfg.save is None:
        return
    pruning = [c for c in grid.cells(cfg, strategies) if c[0].uses_fraction]
    if len(pruning) * n_tasks != 1:
        raise HarnessError("--save needs exactly one pruned cell (one task, strategy, fraction, seed)")


def _check_save(save: Path | None) -> None:
    if save is None:
        return
    save = Path(save)
    if save.exists() and not save.is_dir():
        raise HarnessError(f"--save '{save}' is a file; give a directory path (it is created)")
    parent = _existing_parent(save)
    if not parent.is_dir():
        raise HarnessError(f"--save '{save}': '{parent}' is a file, not a directory")


def _existing_parent(path: Path) -> Path:
    """The nearest ancestor of `path` that exists (what mkdir -p would have to write into)."""
    parent = path.expanduser().absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


# -- components' needs -----------------------------------------------------------------------
def _check_needs(cfg: BenchConfig, strategies: list[Strategy]) -> None:
    reg = registry()
    for s in strategies:
        if s.apply is not None or not s.uses_fraction:
            continue
        parts = [("pruner", s.pruner, reg.get("pruners", s.pruner))]
        if s.scorer is not None:
            parts.append(("scorer", s.scorer, reg.get("scorers", s.scorer)))
        recipe = recipe_name(s.name)  # as the user typed it, not the override's label
        for kind, name, component in parts:
            need = needs_of(component)
            for option in need.options:
                if getattr(cfg, option, None) is None:
                    flag = SETTING[option].option if option in SETTING else "--" + option.replace("_", "-")
                    raise HarnessError(f"the {kind} '{name}' (strategy '{recipe}') needs {flag} VALUE")
            if s.needs_calibration and need.min_batch_examples > 1:
                smallest = smallest_batch(cfg.calibration_size, cfg.calibration_batch_size)
                if smallest < need.min_batch_examples:
                    raise HarnessError(
                        f"the {kind} '{name}' (strategy '{recipe}') compares examples within a "
                        f"calibration batch and needs {need.min_batch_examples} per batch; "
                        f"--calibration-size {cfg.calibration_size} with --calibration-batch-size "
                        f"{cfg.calibration_batch_size} makes a batch of {smallest}; use sizes whose "
                        f"batches all hold >= {need.min_batch_examples} (e.g. a multiple of the batch size)")


def smallest_batch(size: int, batch_size: int) -> int:
    """The fewest examples any calibration batch gets (the last batch takes the remainder)."""
    if size <= batch_size:
        return size
    return size % batch_size or batch_size


# -- model -----------------------------------------------------------------------------------
def check_model(spec: str) -> dict | None:
    """That `spec` names a model the loader can find; the config.json of a model directory."""
    choices = f"give {', '.join(models.EMBEDDED)} (embedded), a model directory, a .gguf file or a hub id"
    if spec in models.EMBEDDED:
        models.embedded_gguf(spec)
        return None
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise HarnessError(f"model path '{spec}' does not exist; {choices}")
        return None
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise HarnessError(f"model directory '{spec}' has no config.json")
        try:
            return json.loads(config.read_text())
        except (ValueError, OSError) as exc:
            raise HarnessError(f"model directory '{spec}': config.json is not valid JSON ({exc})") from None
    if path.exists():
        raise HarnessError(f"model '{spec}' is a file but not a .gguf; {choices}")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or not HUB_ID.fullmatch(spec):
        raise HarnessError(f"model path '{spec}' does not exist; {choices}")
    _check_hub_id(spec, choices)
    return None


def _check_hub_id(spec: str, choices: str) -> None:
    """A hub id is accepted when cached locally or known to the hub; offline, only if cached."""
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(spec, local_files_only=True, allow_patterns=["config.json"])
        return
    except Exception:
        pass
    close = difflib.get_close_matches(spec, list(models.EMBEDDED), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if not models.hub_reachable():
        raise HarnessError(
            f"unknown model '{spec}'{hint}: not embedded, not a local path, not in the Hugging Face "
            f"cache, and the hub is unreachable (offline); {choices}")
    try:
        from huggingface_hub import model_info
        from huggingface_hub.utils import RepositoryNotFoundError

        model_info(spec, timeout=5)
    except RepositoryNotFoundError:
        raise HarnessError(f"unknown model '{spec}'{hint}: the hub has no such model; {choices}") from None
    except Exception:  # a flaky network is the loader's problem, with its own message
        pass


def _check_layers(spec: str | None, config: dict | None) -> None:
    """--layers syntax always; its range too when the model's config.json says how many layers."""
    if spec is None:
        return
    configs = [config, (config or {}).get("text_config")]  # multimodal configs nest the text model
    keys = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
    counts = [c[k] for c in configs if isinstance(c, dict) for k in keys if isinstance(c.get(k), int)]
    parse_layers(spec, counts[0] if counts else 1 << 16)


# -- tasks -----------------------------------------------------------------------------------
def check_tasks_dir(tasks_dir: str) -> None:
    """The directory exists and every YAML in it parses the way lm-eval will read it.

    lm-eval skips a YAML it cannot parse without a word, so a typo in a user's task file
    would otherwise surface as `unknown task` with no hint of the real cause.
    """
    root = Path(tasks_dir).expanduser()
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise HarnessError(f"--tasks-dir '{tasks_dir}' {what}; give a directory of lm-eval task YAMLs")
    files = sorted(p for p in root.rglob("*.yaml")
                   if p.is_file() and not {"__pycache__", ".ipynb_checkpoints"} & set(p.parts))
    if not files:
        raise HarnessError(f"--tasks-dir '{tasks_dir}' holds no .yaml task files")
    for path in files:  # plain YAML first: a syntax error fails without importing lm-eval (seconds)
        _parse(path, _plain_yaml)
    from lm_eval.tasks._yaml_loader import load_yaml  # the very loader lm-eval's index uses

    for path in files:  # then as lm-eval reads them: include: files, !function imports
        _parse(path, lambda p: load_yaml(p, resolve_func=True, recursive=True))


def _parse(path: Path, load: Callable[[Path], Any]) -> None:
    try:
        load(path)
    except Exception as exc:  # yaml errors, a missing include:, a !function that does not import
        detail = " ".join(str(exc).split())
        raise HarnessError(
            f"--tasks-dir: lm-eval cannot parse {path}: {type(exc).__name__}: {detail}"[:400]
        ) from None


def _plain_yaml(path: Path) -> None:
    with open(path, "rb") as f:  # a file object, so errors name the file and line
        yaml.load(f, Loader=_TaggedLoader)  # noqa: S506  (a SafeLoader subclass)


class _TaggedLoader(yaml.SafeLoader):
    """Safe YAML that accepts lm-eval's `!function` tag without resolving it."""


_TaggedLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def check_task_names(names: list[str], tasks_dir: str | None) -> None:
    """Each name is a shipped task, one of --tasks-dir, or an lm-eval task, group or tag.

    Without importing lm-eval's task machinery (datasets, pandas: seconds) or building its full
    index (~14 s): a name that appears nowhere in the text of the task YAMLs, as a word,
    cannot be a task and fails now; one that does is left to lm-eval's own loader.
    """
    if not names:
        raise HarnessError("no --task given; `harness tasks` lists them")
    dirs = [task_lib.shipped_dir(), task_lib.lmeval_prompt_dir()]
    if tasks_dir is not None:
        dirs.append(Path(tasks_dir).expanduser())
    local_files = [p for d in dirs for p in sorted(Path(d).rglob("*.yaml"))]
    listed = sorted({m.group(1).decode() for p in local_files
                     for m in TASK_LINE.finditer(p.read_bytes())})
    local_words = set().union(*(_words(p.read_bytes()) for p in local_files))
    for name in names:
        if name in local_words or name in _lm_eval_words():
            continue
        close = difflib.get_close_matches(name, listed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise HarnessError(
            f"unknown task '{name}'{hint}; choose from: {', '.join(listed)} "
            "(or any lm-eval task name; `harness tasks --all` lists them)")


TASK_LINE = re.compile(rb"^task:[ \t]*['\"]?([\w.\-]+)", re.MULTILINE)
WORD_SEPARATORS = re.compile(rb"[\s:,\[\]'\"{}]+")


def _words(text: bytes) -> set[str]:
    return {w.decode(errors="replace") for w in WORD_SEPARATORS.split(text) if w}


def _lm_eval_words() -> set[str]:
    """Every word of lm-eval's own task YAMLs, cached per lm-eval version under
    $EIGENHARNESS_HOME (a second to build once, milliseconds after)."""
    import lm_eval

    cache = models.home() / "tasks" / f"lm_eval-{lm_eval.__version__}-words.json"
    try:
        return set(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    root = Path(lm_eval.__file__).parent / "tasks"
    words: set[str] = set()
    for path in root.rglob("*.yaml"):
        try:
            words |= _words(path.read_bytes())
        except OSError:
            continue
    with replacing(cache) as f:
        f.write(json.dumps(sorted(words)).encode())
    return words

"""Task names -> lm-eval Task objects, with one TaskManager per run.

The project's own tasks (this repo's `tasks/` folder) and a user's `--tasks-dir` are indexed
without lm-eval's built-in index, which is instant; only when a name is not found there is the
full index (about 14 s) built, so `--task hellaswag` still works for an online user.
"""

from __future__ import annotations

import copy
from pathlib import Path

from eigenharness_tasks import TASKS_DIR

from harness.atomic import replacing
from harness.errors import HarnessError


def shipped_dir() -> Path:
    return TASKS_DIR


# lm-eval's own prompts for SuperGLUE, reused by `include:` of the installed lm-eval files;
# they only swap in the project's data (local jsonl or hub, with a held-out validation part).
LMEVAL_PROMPTS = {
    "cb_lmeval": ("super_glue/cb/default.yaml", "cb"),
    "copa_lmeval": ("super_glue/copa/default.yaml", "copa"),
    "rte_lmeval": ("super_glue/rte/default.yaml", "rte"),
}


def lmeval_prompt_dir() -> Path:
    """Task YAMLs that `include:` the installed lm-eval files, generated once per lm-eval version.

    An include must be a path, and where lm-eval is installed is only known at run time, so
    these few lines are written under $EIGENHARNESS_HOME/tasks rather than shipped.
    """
    import lm_eval

    from harness.models import home  # deferred: models imports torch; `harness tasks` is torch-free

    root = Path(lm_eval.__file__).parent / "tasks"
    data_module = shipped_dir() / "superglue" / "superglue"
    out = home() / "tasks" / f"lm_eval-{lm_eval.__version__}"
    out.mkdir(parents=True, exist_ok=True)
    for name, (rel, loader) in LMEVAL_PROMPTS.items():
        text = (f"include: {root / rel}\ntask: {name}\ntag: superglue_lmeval\n"
                f"custom_dataset: !function {data_module}.{loader}\n"
                "training_split: train\nvalidation_split: validation\ntest_split: test\n")
        target = out / f"{name}.yaml"
        if (root / rel).is_file() and (not target.is_file() or target.read_text() != text):
            with replacing(target) as f:
                f.write(text.encode())
    return out


def _include(tasks_dir: str | None) -> list[str]:
    include = [str(shipped_dir()), str(lmeval_prompt_dir())]
    if tasks_dir is not None:
        path = Path(tasks_dir).expanduser()
        if not path.is_dir():
            raise HarnessError(f"--tasks-dir '{tasks_dir}' is not a directory")
        include.append(str(path.resolve()))
    return include


def task_manager(names: list[str], tasks_dir: str | None = None, data_dir: str | None = None):
    """One TaskManager that knows every name in `names`, or a clear error."""
    from lm_eval.tasks import TaskManager

    metadata = None
    if data_dir is not None:  # reaches the tasks' custom_dataset functions as a keyword
        if not Path(data_dir).expanduser().is_dir():
            raise HarnessError(f"--data-dir '{data_dir}' is not a directory")
        metadata = {"data_dir": str(Path(data_dir).expanduser().resolve())}
    include = _include(tasks_dir)
    manager = TaskManager(include_path=include, include_defaults=False, metadata=metadata)
    if all(n in manager.all_tasks for n in names):
        return manager
    full = TaskManager(include_path=include, include_defaults=True, metadata=metadata)
    missing = [n for n in names if n not in full.all_tasks]
    if missing:
        local = [t for t in manager.all_subtasks]
        raise HarnessError(
            f"unknown task '{missing[0]}'; choose from: {', '.join(local)} "
            "(or any lm-eval task name; `harness tasks --all` lists them)"
        )
    return full


def load(names: list[str], tasks_dir: str | None = None, data_dir: str | None = None):
    """(the run's TaskManager, {name: Task}); a group or tag expands to its tasks.

    Pass the manager on to `evaluate.run`: without one, lm-eval builds its full index again
    on every evaluation (14 s each).
    """
    manager = task_manager(names, tasks_dir, data_dir)
    try:
        return manager, dict(manager.load(names)["tasks"])
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"cannot load task(s) {', '.join(names)}: {exc}".splitlines()[0]) from exc


def splits(task) -> list[str]:
    return [s for s, has in (("train", task.has_training_docs()),
                             ("validation", task.has_validation_docs()),
                             ("test", task.has_test_docs())) if has]


def gold_index(task, doc: dict) -> int:
    """The gold choice of a multiple-choice document as an index into its choices.

    lm-eval's targets are an index, a choice's text, or a list of golds (the first counts);
    in a multiple-input task (Winogrande: one context per choice, one shared continuation)
    the target is that continuation and `doc_to_text` gives the gold context's index.
    """
    if getattr(task, "multiple_input", 0):
        return int(task.doc_to_text(doc))
    gold = task.doc_to_target(doc)
    gold = gold[0] if isinstance(gold, list) else gold
    if isinstance(gold, str):
        choices = task.doc_to_choice(doc)
        if gold not in choices:
            raise HarnessError(f"task '{task.config.task}': target '{gold}' is not one of its choices")
        return choices.index(gold)
    return int(gold)


def eval_split(task) -> str:
    """The split lm-eval evaluates by default: test when the task has one, else validation."""
    return "test" if task.has_test_docs() else "validation"


def for_split(task, split: str):
    """A shallow view of `task` whose evaluation documents are `split`.

    lm-eval always evaluates test when a task has it; the view hides the later splits so the
    same Task object (same dataset, no reload) can be evaluated on validation too.
    """
    if split == eval_split(task):
        return task
    if split not in splits(task):
        raise HarnessError(
            f"task '{task.config.task}' has no {split} split; it has: {', '.join(splits(task))}"
        )
    config = copy.copy(task.config)
    if split == "validation":
        config.test_split = None
    elif split == "train":
        config.test_split = None
        config.validation_split = config.training_split
    else:
        raise HarnessError(f"unknown split '{split}'; choose from: train, validation, test")
    view = copy.copy(task)
    view._config = config
    return view


def shipped(tasks_dir: str | None = None, include_defaults: bool = False) -> list[str]:
    include = _include(tasks_dir)  # a bad --tasks-dir fails before lm-eval's slow import
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include, include_defaults=include_defaults)
    return manager.all_subtasks


# Folds: fixed assignment, whatever the run's seeds, so every strategy and seed meets the same
# test examples in the same fold (paired tests need that).
FOLD_SEED = 0
DEFAULT_VALIDATION_SHARE = 0.2  # of the non-test folds, where the task has no split to copy


def _docs(task, split: str) -> list[dict]:
    return list({"train": task.training_docs, "validation": task.validation_docs,
                 "test": task.test_docs}[split]())


def labelled_docs(task) -> list[dict]:
    """Every document of every split, in split order, less those without a gold answer.

    For the shipped arithmetic tasks that is all of them; for SuperGLUE train + validation
    (the harness's test split is SuperGLUE validation); for an lm-eval task whose test split
    is unlabelled (a hub SuperGLUE's gold is -1), that split drops out here.
    """
    docs = [doc for split in splits(task) for doc in _docs(task, split)]
    if task.OUTPUT_TYPE != "multiple_choice":
        return docs
    kept = []
    for doc in docs:
        try:
            if gold_index(task, doc) >= 0:
                kept.append(doc)
        except (HarnessError, ValueError, TypeError, IndexError):
            continue
    return kept


def fold_of(task, docs: list[dict], folds: int):
    """Each document's fold, 0..folds-1: a seeded shuffle dealt round-robin, so folds differ in
    size by one at most; for multiple-choice tasks dealt class by class, so each fold keeps
    the classes' shares (CB's 'neither' is 5 of 56: an unstratified fold could lack it)."""
    import numpy as np

    order = np.random.default_rng(FOLD_SEED).permutation(len(docs))
    if task.OUTPUT_TYPE == "multiple_choice":
        gold = np.array([gold_index(task, docs[i]) for i in order])
        order = order[np.argsort(gold, kind="stable")]
    assignment = np.empty(len(docs), dtype=int)
    assignment[order] = np.arange(len(docs)) % folds
    return assignment


def validation_share(task) -> float:
    """The share of the non-test documents the task itself holds out for validation."""
    has = splits(task)
    if "train" in has and "validation" in has:
        n_train, n_val = len(_docs(task, "train")), len(_docs(task, "validation"))
        return n_val / (n_train + n_val)
    return DEFAULT_VALIDATION_SHARE


def slot(name: str, fold: int | None = None, folds: int | None = None) -> str:
    """A task slot: the task, or one fold of it (`int_mult@2/5`). Jobs, cells and the
    per-(task, seed) caches are keyed by slot, so a fold travels everywhere a task does."""
    return name if fold is None else f"{name}@{fold}/{folds}"


def parse_slot(value: str) -> tuple[str, int | None, int | None]:
    """(task name, fold, folds) of a slot; fold and folds are None for a whole task."""
    name, at, rest = value.rpartition("@")
    if not at:
        return value, None, None
    fold, _, folds = rest.partition("/")
    return name, int(fold), int(folds)


def folded(task, folds: int, fold: int):
    """A view of `task` for cross-fitted evaluation: fold `fold` of `folds` is its test split;
    the other folds give validation (the task's own validation share of them) and train
    (calibration and scoring). Every labelled document is tested exactly once over the folds,
    which is what lets a comparison use all of them instead of the paper's one test split.

    The view holds its documents itself (lm-eval reads `dataset[split]`), already processed,
    so the task's `process_docs` is not applied twice; the fold is written into the config's
    metadata, which the baseline cache's key includes.
    """
    import datasets
    import numpy as np

    if folds < 2:
        raise HarnessError(f"--folds {folds} must be at least 2 (or leave it out: the task's own split)")
    if not 0 <= fold < folds:
        raise HarnessError(f"fold {fold} is outside 0..{folds - 1}")
    docs = labelled_docs(task)
    if len(docs) < folds:
        raise HarnessError(f"task '{task.config.task}' has {len(docs)} labelled documents, "
                           f"fewer than --folds {folds}")
    assignment = fold_of(task, docs, folds)
    order = np.random.default_rng(FOLD_SEED + 1).permutation(len(docs))  # who goes to validation
    rest = [i for i in order if assignment[i] != fold]
    n_val = round(validation_share(task) * len(rest))
    parts = {"test": [docs[i] for i in np.flatnonzero(assignment == fold)],
             "validation": [docs[i] for i in sorted(rest[:n_val])],
             "train": [docs[i] for i in sorted(rest[n_val:])]}
    config = copy.copy(task.config)
    config.training_split, config.test_split = "train", "test"
    config.validation_split = "validation" if parts["validation"] else None
    config.process_docs = None
    config.metadata = {**(config.metadata or {}), "fold": f"{fold}/{folds}"}
    view = copy.copy(task)
    view._config = config
    view.dataset = datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in parts.items() if rows})
    view._training_docs = None
    return view

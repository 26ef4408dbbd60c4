"""`--folds K`: cross-fitted evaluation, every labelled document tested exactly once."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness import baseline_cache, per_example
from harness import tasks as task_lib
from harness.cli import cli

SUPERGLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "superglue"


def key(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True)


def views(task, k: int) -> list:
    return [task_lib.folded(task, k, f) for f in range(k)]


def test_every_document_of_a_shipped_task_is_tested_once():
    _, tasks = task_lib.load(["int_mult"])
    task = tasks["int_mult"]
    folds = views(task, 5)
    tested = Counter(key(d) for v in folds for d in v.test_docs())
    assert len(tested) == 400 and set(tested.values()) == {1}  # train + validation + test, once each
    for v in folds:
        parts = {name: {key(d) for d in getattr(v, f"{name}_docs")()}
                 for name in ("training", "validation", "test")}
        assert not (parts["training"] & parts["test"]) and not (parts["validation"] & parts["test"])
        assert not (parts["training"] & parts["validation"])
        # the paper's shape inside every fold: 80 tested, 64 to choose on, 256 to calibrate on
        assert [len(parts[n]) for n in ("training", "validation", "test")] == [256, 64, 80]
        assert task_lib.eval_split(v) == "test" and task_lib.splits(v) == ["train", "validation", "test"]
    # deterministic: the same fold twice is the same documents, in the same order
    assert [key(d) for d in task_lib.folded(task, 5, 2).test_docs()] == \
        [key(d) for d in folds[2].test_docs()]
    # each fold is its own baseline-cache entry
    assert len({baseline_cache.task_fingerprint(v) for v in folds}) == 5


def test_bad_fold_counts_are_one_line_errors():
    _, tasks = task_lib.load(["int_mult"])
    with pytest.raises(task_lib.HarnessError, match="at least 2"):
        task_lib.folded(tasks["int_mult"], 1, 0)
    with pytest.raises(task_lib.HarnessError, match="fewer than --folds"):
        task_lib.folded(tasks["int_mult"], 401, 0)
    result = CliRunner().invoke(cli, ["bench", "--folds", "1", "--task", "int_mult"])
    assert result.exit_code == 2 and "--folds 1 must be at least 2" in result.output


@pytest.mark.skipif(not (SUPERGLUE / "cb").is_dir(), reason="needs ../shared/data/superglue (CB)")
def test_superglue_folds_pool_train_and_validation_and_keep_the_classes():
    _, tasks = task_lib.load(["cb_eigen"], data_dir=str(SUPERGLUE))
    task = tasks["cb_eigen"]
    folds = views(task, 5)
    assert sum(len(v.test_docs()) for v in folds) == 250 + 56  # SuperGLUE CB train + validation
    overall = Counter(task_lib.gold_index(task, d) for v in folds for d in v.test_docs())
    for v in folds:
        labels = Counter(task_lib.gold_index(task, d) for d in v.test_docs())
        assert set(labels) == set(overall)  # stratified: even the rare class is in every fold
        for label, count in labels.items():
            assert abs(count - overall[label] / 5) <= 1


def write_test_only_task(folder: Path, n: int = 20) -> str:
    """A user's task with only a test split: with --folds the harness makes train and
    validation from the other folds."""
    folder.mkdir(parents=True)
    with open(folder / "test.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"a": i % 7, "b": i // 7, "answer": str(i % 7 + i // 7)}) + "\n")
    (folder / "mine.yaml").write_text(textwrap.dedent(f"""\
        task: my_sums
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {folder / 'test.jsonl'}
        output_type: loglikelihood
        test_split: test
        doc_to_text: "{{{{a}}}} + {{{{b}}}} ="
        doc_to_target: " {{{{answer}}}}"
        metric_list:
          - metric: acc
        """))
    return "my_sums"


def test_folds_on_a_users_own_task_cover_every_example(tiny_dir, tmp_path):
    name = write_test_only_task(tmp_path / "tasks")
    out = tmp_path / "r.csv"
    args = ["bench", "--model", str(tiny_dir), "--tasks-dir", str(tmp_path / "tasks"), "--task", name,
            "--strategy", "none,eigen,random-sv", "--fraction", "0.1,0.3", "--seed", "0,1",
            "--folds", "4", "--calibration-size", "4", "--calibration-batch-size", "4",
            "--device", "cpu", "--output", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    test = df[df.split == "test"]
    assert set(df.folds) == {4} and set(df.fold) == {0, 1, 2, 3}
    # validation carved from the other folds (two fractions: something to choose)
    assert set(df.split) == {"validation", "test"}
    for (strategy, seed, fraction), g in test.groupby(["strategy", "seed", "fraction"]):
        assert sorted(g.fold) == [0, 1, 2, 3] and g.n.sum() == 20, (strategy, seed, fraction)
        examples = [per_example.load(out, r.config_hash, "test")["metric"] for r in g.itertuples()]
        assert sum(len(e) for e in examples) == 20
    assert df.config_hash.nunique() == len(df) / 2
    # seed by seed: every fold of seed 0 is written before seed 1 starts, so a sweep cut short
    # leaves whole seeds (the only ones a folded comparison reads)
    seeds = df[df.strategy != "none"].seed.tolist()
    assert seeds == sorted(seeds)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_without_folds_the_cell_hashes_are_the_papers_split_ones():
    """Rows written before --folds existed must still resume: no fold keys in their hash."""
    from harness import bench
    from harness.plugins import registry

    cfg = bench.BenchConfig(tasks=["int_mult"], strategies=["eigen"])
    s = registry().get("strategies", "eigen")
    config = bench.cell_config(cfg, "int_mult", s, 0, 0.2)
    assert "fold" not in config and "folds" not in config
    folded = bench.cell_config(bench.BenchConfig(folds=5), task_lib.slot("int_mult", 3, 5), s, 0, 0.2)
    assert folded["task"] == "int_mult" and (folded["fold"], folded["folds"]) == (3, 5)
    assert {k: v for k, v in folded.items() if k not in ("fold", "folds")} == config


def test_one_fraction_evaluates_no_validation_split(tiny_dir, tmp_path):
    """Nothing reads a validation row when there is one fraction to 'choose' from."""
    out = tmp_path / "r.csv"
    common = ["bench", "--model", str(tiny_dir), "--task", "int_mult", "--strategy", "none,eigen",
              "--limit", "4", "--calibration-size", "4", "--calibration-batch-size", "4",
              "--device", "cpu", "--output", str(out)]
    assert CliRunner().invoke(cli, [*common, "--fraction", "0.2"]).exit_code == 0
    assert set(pd.read_csv(out).split) == {"test"}
    asked = CliRunner().invoke(cli, [*common, "--fraction", "0.2", "--select-on", "validation", "--force"])
    assert asked.exit_code == 0 and set(pd.read_csv(out).split) == {"validation", "test"}
    assert np.isin(pd.read_csv(out).strategy, ["none", "eigen"]).all()

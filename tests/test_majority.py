"""`majority`: the training split's most common answer given to every example, through lm-eval,
as a row of the board and as a baseline the verdict holds methods to."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_comparisons import N, cell

from harness import evaluate, majority_answer, per_example, report
from harness import tasks as task_lib
from harness.cli import cli
from harness.errors import HarnessError
from harness.leaderboard import append

TRAIN = [0, 1, 1, 2, 1, 0, 2, 1]  # majority: 1 (four of eight)
TEST = [1, 0, 2, 1, 1, 0, 2, 2, 1, 0]  # 4 of 10 are label 1


def write_task(folder, kind: str = "multiple_choice", train=TRAIN, test=TEST):
    """A task in a --tasks-dir of its own, over local jsonl files (absolute paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, labels in (("train", train), ("validation", test[:4]), ("test", test)):
        with open(folder / f"{split}.jsonl", "w") as f:
            for i, label in enumerate(labels):
                f.write(json.dumps({"q": f"q{i} {label}", "label": label, "word": "abc"[label]}) + "\n")
    body = {
        "multiple_choice": 'doc_to_choice: ["a", "b", "c"]\ndoc_to_target: label\n'
                           "metric_list:\n  - metric: acc\n",
        # Winogrande's shape: one context per choice, the gold one's index from doc_to_text
        "multiple_input": "doc_to_text: label\ndoc_to_choice: \"{{[q ~ ' a', q ~ ' b', q ~ ' c']}}\"\n"
                          'doc_to_target: "ok"\nmetric_list:\n  - metric: acc\n',
        "loglikelihood": 'doc_to_target: "{{word}}"\ntarget_delimiter: " "\n'
                         "metric_list:\n  - metric: acc\n",
        "generate_until": 'doc_to_target: "{{word}}"\ngeneration_kwargs:\n  until: ["\\n"]\n'
                          "metric_list:\n  - metric: exact_match\n",
    }[kind]
    (folder / f"toy_{kind}.yaml").write_text(textwrap.dedent(f"""\
        task: toy_{kind}
        dataset_path: json
        dataset_kwargs:
          data_files:
            train: {folder / 'train.jsonl'}
            validation: {folder / 'validation.jsonl'}
            test: {folder / 'test.jsonl'}
        output_type: {kind.replace("multiple_input", "multiple_choice")}
        training_split: train
        validation_split: validation
        test_split: test
        """) + ("" if kind == "multiple_input" else 'doc_to_text: "{{q}} ="\n') + body)
    return f"toy_{kind}"


def load_task(tmp_path, kind: str, **data):
    name = write_task(tmp_path / "tasks", kind, **data)
    manager, tasks = task_lib.load([name], str(tmp_path / "tasks"))
    return manager, tasks[name]


@pytest.mark.parametrize("kind", ["multiple_choice", "multiple_input", "loglikelihood", "generate_until"])
def test_every_example_gets_the_training_majority(tmp_path, kind):
    manager, task = load_task(tmp_path, kind)
    lm = majority_answer.majority_lm(task)
    assert lm.answer == (1 if kind.startswith("multiple") else "b")
    result = evaluate.run(lm, task, "test", task_manager=manager)
    expected = (np.array(TEST) == 1).astype(float)  # right exactly where the gold is label 1
    np.testing.assert_array_equal(result.per_example, expected)
    assert result.value == pytest.approx(0.4) and result.n == len(TEST)
    if kind.startswith("multiple"):  # the gold choice's NLL: 0 where it is the majority's
        np.testing.assert_array_equal(result.nll_per_example,
                                      np.where(expected == 1, 0, -majority_answer.UNLIKELY))


def test_ties_go_to_the_smallest_answer(tmp_path):
    _, task = load_task(tmp_path, "multiple_choice", train=[2, 2, 0, 1, 0, 1])
    assert majority_answer.answer(task) == 0
    _, task = load_task(tmp_path / "b", "loglikelihood", train=[2, 2, 1, 1])
    assert majority_answer.answer(task) == "b"


def test_a_task_without_a_training_split_is_refused(tmp_path):
    name = write_task(tmp_path / "tasks", "multiple_choice")
    yaml = tmp_path / "tasks" / f"{name}.yaml"
    yaml.write_text(yaml.read_text().replace("training_split: train\n", ""))
    _, tasks = task_lib.load([name], str(tmp_path / "tasks"))
    with pytest.raises(HarnessError, match=f"task '{name}' has no train split; it has: validation, test"):
        majority_answer.answer(tasks[name])


def test_bench_writes_majority_rows_with_examples_and_no_made_up_loss(tmp_path, tiny_dir):
    name = write_task(tmp_path / "tasks", "multiple_choice")
    out = tmp_path / "r.csv"
    args = ["bench", "--model", str(tiny_dir), "--tasks-dir", str(tmp_path / "tasks"), "--task", name,
            "--strategy", "none,majority,eigen", "--fraction", "0.2", "--seed", "0,1", "--output", str(out),
            "--select-on", "validation"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    rows = df[df.strategy == "majority"]
    assert sorted(rows.split) == ["test", "validation"] and set(rows.seed) == {0}  # seed-free: once
    test = rows[rows.split == "test"].iloc[0]
    assert test.value == pytest.approx(0.4) and test.fraction == 0 and test.n_pruned == 0
    assert np.isnan(test.nll) and np.isnan(test.nll_delta)
    assert pd.isna(test.pruner) and not test.compensate  # nothing spectral about it
    examples = per_example.load(out, test.config_hash, "test")
    np.testing.assert_array_equal(examples["metric"], (np.array(TEST) == 1).astype(float))
    unpruned = df[(df.strategy == "none") & (df.split == "test")].iloc[0]
    assert test.delta == pytest.approx(0.4 - unpruned.value)
    # the board: majority is a baseline, and every method is set against it as tuned
    t = report.table(report.load([out]))
    assert t.set_index("strategy").loc["majority", "role"] == "baseline"
    eigen = t[t.strategy == "eigen"].iloc[0]
    assert unpruned.value < 0.4  # (the tiny random model is below the constant answer)
    assert eigen.tuned_baseline == "majority"
    assert eigen.delta_vs_tuned_mean == pytest.approx(eigen.value_mean - 0.4)
    again = CliRunner().invoke(cli, args)  # a re-run finds the cell done
    assert again.exit_code == 0 and len(pd.read_csv(out)) == len(df)


def test_a_method_below_the_majority_answer_is_no_win(tmp_path):
    """A method that beats every pruning baseline (by leaning to the common label, say) but
    not the constant answer is not a win: the majority row is the tuned baseline it fails."""
    csv = tmp_path / "results.csv"
    gold_common = np.arange(N) < 120  # 60% of examples carry the common label
    rows = cell(csv, "none", 0.0, 0, 20, 20, "none")
    rows += cell(csv, "majority", 0.0, 0, 120, gold_common, "maj")
    for seed in range(4):
        rows += cell(csv, "eigen-x", 0.2, seed, 90, 100 + seed, f"e{seed}")
        rows += cell(csv, "random-sv", 0.2, seed, 60, 20 + seed, f"r{seed}")
    append(csv, rows)
    t = report.table(report.load([csv]))
    method = t[t.strategy == "eigen-x"].iloc[0]
    assert method.best_baseline == "random-sv" and method.p_vs_best < 0.05
    assert method.tuned_baseline == "majority" and method.delta_vs_tuned_mean < 0
    words = report.verdicts(t)[0]
    assert ": NO WIN: best eigen-x" in words and "vs majority as tuned" in words


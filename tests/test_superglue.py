"""SuperGLUE CB, COPA and RTE against the real files in ../shared/data/superglue."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness import calibration
from harness import tasks as task_lib
from harness.cli import cli

DATA = Path(os.environ.get("EIGENHARNESS_TEST_SUPERGLUE",
                           Path(__file__).resolve().parents[2] / "shared" / "data" / "superglue"))
pytestmark = pytest.mark.skipif(not (DATA / "cb" / "train.jsonl").is_file(),
                                reason=f"SuperGLUE jsonl files not found at {DATA} (the ../shared "
                                "checkout beside this one; or set EIGENHARNESS_TEST_SUPERGLUE)")

COUNTS = {"cb": (250, 56), "copa": (400, 100), "rte": (2490, 277)}


@pytest.fixture(scope="module")
def loaded():
    names = [f"{t}_{style}" for t in COUNTS for style in ("eigen", "lmeval")]
    return task_lib.load(names, data_dir=str(DATA))[1]


@pytest.mark.parametrize("style", ["eigen", "lmeval"])
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_split_counts(loaded, name, style):
    task = loaded[f"{name}_{style}"]
    train, val = COUNTS[name]
    assert len(task.training_docs()) + len(task.validation_docs()) == train
    assert len(task.validation_docs()) == int(train * 0.2)
    assert len(task.test_docs()) == val
    train_idx = {d["idx"] for d in task.training_docs()}
    assert train_idx.isdisjoint({d["idx"] for d in task.validation_docs()})


def test_label_mapping_and_prompts(loaded):
    cb = loaded["cb_eigen"].test_docs()
    assert {d["label"] for d in cb} == {0, 1, 2}
    assert sum(d["label"] == 2 for d in cb) == 5  # neutral: 5 in CB val
    rte = loaded["rte_eigen"].test_docs()
    assert sum(d["label"] == 0 for d in rte) == 146  # entailment: 146 in RTE val
    prompt, target = calibration.example(loaded["copa_eigen"], loaded["copa_eigen"].test_docs()[0])
    assert prompt == ("The man turned on the faucet. What was the effect?\n1: The toilet filled with "
                      "water.\n2: Water flowed from the spout.\nAnswer:") and target == " 2"
    prompt, target = calibration.example(loaded["rte_eigen"], rte[0])
    assert prompt.startswith("Dana Reeve, the widow") and target == " no"
    prompt, target = calibration.example(loaded["cb_lmeval"], loaded["cb_lmeval"].test_docs()[0])
    assert prompt.endswith("True, False, or Neither?\nAnswer:")  # lm-eval's own prompt


def test_offline_without_data_dir_names_the_option(monkeypatch):
    monkeypatch.delenv("EIGENHARNESS_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = CliRunner().invoke(cli, ["bench", "--task", "cb_eigen"])
    assert result.exit_code == 2 and "--data-dir" in result.output


def test_tiny_model_bench_on_superglue(tiny_dir, tmp_path):
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(cli, [
        "bench", "--model", str(tiny_dir), "--task", "cb_eigen,copa_eigen,rte_eigen",
        "--strategy", "none,eigen", "--fraction", "0.2", "--limit", "4", "--calibration-size", "4",
        "--data-dir", str(DATA), "--output", str(out)])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    # one fraction: nothing to choose on validation, so each cell is tested only
    assert set(df.task) == {"cb_eigen", "copa_eigen", "rte_eigen"} and len(df) == 3 * 2


def test_long_prompts_batch_within_the_logits_budget(loaded, monkeypatch):
    """On CPU, `--batch-size auto` lowers the rows of a log-likelihood call so its logits and
    their log-softmax fit LOGITS_BUDGET (CB's premises at a 152k vocabulary took 32 rows to
    11.7 GB), and the answers are those of a fixed batch of 32."""
    import numpy as np

    from harness import evaluate
    from harness.testing import char_tokenizer, tiny_model

    assert evaluate.rows_within(300, 151936) == 5 and evaluate.rows_within(10, 100) == 32  # 2 GiB
    model, tokenizer = tiny_model("llama"), char_tokenizer()
    capped, fixed = evaluate.wrap(model, tokenizer), evaluate.wrap(model, tokenizer, 32)
    capped.keep_continuations = False  # lm-eval's logits at every position, as with a forward
    # that cannot keep a continuation's only (harness/continuation_logits.py)
    longest = capped.max_length  # CB's premises, one character a token, are cut to the context
    vocab = model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(evaluate, "LOGITS_BUDGET", 2 * 4 * longest * vocab * 3)  # room for 3 rows
    rows: list[int] = []
    hook = model.register_forward_pre_hook(
        lambda m, args, kwargs: rows.append((args[0] if args else kwargs["input_ids"]).shape[0]),
        with_kwargs=True)
    try:
        a = evaluate.run(capped, loaded["cb_eigen"], "test", limit=8)
        seen, rows[:] = list(rows), []
        b = evaluate.run(fixed, loaded["cb_eigen"], "test", limit=8)
    finally:
        hook.remove()
    assert max(seen) == 3 and max(rows) > 3  # 8 examples x 3 choices: capped, and not
    assert capped.batch_size == evaluate.CPU_BATCH_SIZE  # the cap lasts one call
    assert (a.per_example == b.per_example).all()
    np.testing.assert_allclose(a.nll_per_example, b.nll_per_example, rtol=1e-9)

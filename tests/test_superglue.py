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
                                reason=f"SuperGLUE jsonl files not found at {DATA}")

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
    assert set(df.task) == {"cb_eigen", "copa_eigen", "rte_eigen"} and len(df) == 3 * 2 * 2

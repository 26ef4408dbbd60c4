"""End to end on the embedded SmolLM2-135M: GGUF conversion cached once, then a real bench."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from harness import models
from harness.cli import cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh cache: the first load converts, every later one must not."""
    return tmp_path_factory.mktemp("eigenharness-home")


def test_embedded_model_is_converted_once_and_cached(home, monkeypatch):
    monkeypatch.setenv("EIGENHARNESS_HOME", str(home))
    calls = []
    real = models.convert_gguf
    monkeypatch.setattr(models, "convert_gguf", lambda *a: (calls.append(a), real(*a)))
    model, tok = models.load("smollm2-135m", device="cpu")
    assert calls and model.config.model_type == "llama" and model.config.num_key_value_heads == 3
    assert tok(" 123")["input_ids"] == tok.convert_tokens_to_ids(["Ġ", "1", "2", "3"])
    models.load("smollm2-135m", device="cpu")
    assert len(calls) == 1  # the second load read the safetensors cache
    assert list(home.glob("models/*/model.safetensors"))


def test_bench_none_and_eigen_on_the_embedded_model(home, monkeypatch, tmp_path):
    monkeypatch.setenv("EIGENHARNESS_HOME", str(home))
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(cli, ["bench", "--task", "int_mult", "--strategy", "none,eigen",
                                      "--fraction", "0.2", "--limit", "16", "--output", str(out),
                                      "--calibration-size", "16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert len(df) == 2 and set(df.n) == {16} and set(df.split) == {"test"}  # one fraction: test only
    eigen = df[df.strategy == "eigen"].iloc[0]
    assert eigen.n_pruned == int(0.2 * 30 * 3 * 64) and eigen.scoring_seconds > 0
    assert "int_mult" in result.output

"""Fixtures over `harness.testing`: tiny random models of each supported family and a
character tokenizer (the same helpers a plugin's own tests use).

Everything here is built in memory in well under a second, so unit tests need no download.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("EIGENHARNESS_PLUGINS", "")  # a developer's installed plugins stay out
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from harness.testing import (  # noqa: E402  (after the environment is set)
    FAMILIES,
    VOCAB,
    char_tokenizer,
    random_batches,
    tiny_config,
    tiny_model,
    tiny_model_dir,
)

__all__ = ["FAMILIES", "VOCAB", "char_tokenizer", "random_batches", "tiny_config", "tiny_model"]


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture
def tiny_dir(tmp_path):
    """A tiny Llama saved as a model directory with the character tokenizer."""
    return tiny_model_dir(tmp_path / "tiny-llama", "llama")


@pytest.fixture(autouse=True)
def private_baseline_cache(tmp_path_factory, monkeypatch):
    """Each test starts with an empty baseline cache of its own (never the user's)."""
    monkeypatch.setenv("EIGENHARNESS_BASELINES", str(tmp_path_factory.mktemp("baselines")))

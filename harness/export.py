"""Write a pruned model as an ordinary transformers directory, plus its mask file.

Bias compensation can give a layer a bias its architecture's config says it lacks (Llama's
k_proj). Plain `from_pretrained` would drop such weights, so the config's bias flags are
switched on (`attention_bias`, `mlp_bias`, ...) and zero biases are written for every other
matrix the flag adds. The directory is reloaded and checked before this returns.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from harness.errors import HarnessError

BIAS_FLAGS = ("attention_bias", "mlp_bias", "bias", "use_bias")


def _expected_keys(config) -> dict[str, torch.Size]:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    return {k: v.shape for k, v in skeleton.state_dict().items()}


def storable_config(model, state: dict[str, torch.Tensor]):
    """A copy of the model's config under which every key of `state` is a real parameter."""
    config = copy.deepcopy(model.config)
    expected = _expected_keys(config)
    for flag in BIAS_FLAGS:
        if all(k in expected for k in state):
            break
        if getattr(config, flag, None) is False:
            setattr(config, flag, True)
            expected = _expected_keys(config)
    missing = [k for k in state if k not in expected]
    if missing:
        raise HarnessError(
            f"this architecture cannot store {missing[0]} (added by bias compensation); "
            "re-run with --no-compensate to save a loadable model"
        )
    return config, expected


def mask_report(edit, matrices, meta: dict | None = None) -> dict:
    """Which singular values of which matrix were pruned, with their scores (JSON-ready)."""
    by_id = {m.id: m for m in matrices}
    report = {"meta": meta or {}, "n_pruned": edit.n_pruned, "unit": edit.unit, "matrices": {}}
    for mid, keep in (edit.masks or {}).items():
        m = by_id[mid]
        scores = None
        if edit.scores is not None:
            scores = [[float(f"{v:.4g}") for v in head] for head in edit.scores[mid].float().tolist()]
        report["matrices"][mid] = {
            "layer": m.layer, "kind": m.kind, "module": m.module_name, "heads": int(keep.shape[0]),
            "rank": int(keep.shape[1]), "keep": keep.int().tolist(), "scores": scores}
    return report


def write_json(path: Path, payload: dict) -> None:
    """Write under a temporary name and rename: an interrupted run leaves no torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)


def save_pruned(model, tokenizer, matrices, edit, directory: Path, meta: dict | None = None) -> None:
    from transformers import AutoModelForCausalLM

    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config, expected = storable_config(model, state)
    for key, shape in expected.items():  # zero biases the switched-on flags add elsewhere
        if key not in state and key.endswith(".bias"):
            state[key] = torch.zeros(shape, dtype=model.dtype)
    original = model.config
    try:
        model.config = config
        model.save_pretrained(directory, state_dict=state)
    finally:
        model.config = original
    tokenizer.save_pretrained(directory)
    write_json(directory / "eigenharness_masks.json", mask_report(edit, matrices, meta))
    reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=model.dtype)
    stored = reloaded.state_dict()
    for key, value in model.state_dict().items():
        if key not in stored or not torch.equal(stored[key].cpu(), value.detach().cpu()):
            raise HarnessError(f"saved model at {directory} does not reload {key} exactly")

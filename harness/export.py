"""Write a pruned model as an ordinary transformers directory, plus its mask file.

Bias compensation can give a layer a bias its architecture's config says it lacks (Llama's
k_proj). Plain `from_pretrained` would drop such weights, so the config's bias switches are
turned on (`attention_bias`, `mlp_bias`, `bias`, `qkv_bias`, MPT's `no_bias` off, ...) and
zero biases are written for every other matrix a switch adds. Where no switch adds the bias
(Qwen2's o_proj), saving is refused in one line naming --no-compensate. The directory is
reloaded and checked before this returns.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch

from harness import atomic
from harness.errors import HarnessError


def _expected_keys(config) -> dict[str, torch.Size]:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    return {k: v.shape for k, v in skeleton.state_dict().items()}


def bias_switches(config) -> list[tuple[str, bool]]:
    """(flag, value that adds biases) for each boolean bias switch of the config that is off:
    `attention_bias`, `mlp_bias`, `bias`, `use_bias`, `qkv_bias`, ... set True, `no_bias` set False."""
    switches = []
    for name, value in config.to_dict().items():
        if not isinstance(value, bool) or "bias" not in name.lower():
            continue
        adds = not name.lower().startswith("no_")
        if value != adds:
            switches.append((name, adds))
    return switches


def storable_config(model, state: dict[str, torch.Tensor]):
    """A copy of the model's config under which every key of `state` is a real parameter.

    Switches are tried one at a time and kept only when they make a missing key storable and
    add nothing but biases (zero-filled by the caller, so the model computes the same)."""
    config = copy.deepcopy(model.config)
    expected = _expected_keys(config)
    for flag, value in bias_switches(config):
        missing = {k for k in state if k not in expected}
        if not missing:
            break
        trial = copy.deepcopy(config)
        setattr(trial, flag, value)
        try:
            keys = _expected_keys(trial)
        except Exception:  # a switch the family cannot build with is not the one we want
            continue
        added = set(keys) - set(expected)
        if missing & added and all(k.endswith(".bias") for k in added):
            config, expected = trial, keys
    missing = [k for k in state if k not in expected]
    if missing:
        model_type = getattr(model.config, "model_type", type(model).__name__)
        raise HarnessError(
            f"{model_type} cannot store {missing[0]} (added by bias compensation): no switch of "
            "its config adds that bias; re-run with --no-compensate to save a loadable model"
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
    with atomic.replacing(path) as f:
        f.write(json.dumps(payload).encode())


def readable_weights(directory: Path) -> None:
    """Give the weight files the mode the umask gives any new file (0644 under umask 022).

    transformers writes `model.safetensors` through a temporary file, which is created 0600:
    the config beside it is readable by others, the weights are not, so another user (or a
    service account) cannot load the saved model."""
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.iterdir():
        if path.is_file() and (path.suffix in (".safetensors", ".bin") or path.name.endswith(".index.json")):
            path.chmod(0o666 & ~umask)


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
    readable_weights(directory)
    reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=model.dtype)
    stored = reloaded.state_dict()
    for key, value in model.state_dict().items():
        if key not in stored or not torch.equal(stored[key].cpu(), value.detach().cpu()):
            raise HarnessError(f"saved model at {directory} does not reload {key} exactly")

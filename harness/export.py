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
    masks = {}
    if edit.masks is not None:
        by_id = {m.id: m for m in matrices}
        for mid, keep in edit.masks.items():
            m = by_id[mid]
            pruned = (~keep).nonzero().tolist()
            masks[mid] = {
                "module": m.module_name, "kind": m.kind, "layer": m.layer, "heads": m.heads,
                "rank": int(keep.shape[-1]), "pruned": pruned,
                "scores": None if edit.scores is None
                else [edit.scores[mid][h, i].item() for h, i in pruned],
            }
    (directory / "eigenharness_masks.json").write_text(
        json.dumps({"meta": meta or {}, "n_pruned": edit.n_pruned, "unit": edit.unit,
                    "matrices": masks}, indent=1))
    reloaded = AutoModelForCausalLM.from_pretrained(directory, dtype=model.dtype)
    stored = reloaded.state_dict()
    for key, value in model.state_dict().items():
        if key not in stored or not torch.equal(stored[key].cpu(), value.detach().cpu()):
            raise HarnessError(f"saved model at {directory} does not reload {key} exactly")

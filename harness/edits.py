"""`Edit`: a change to a model's weights that can always be undone, bit for bit.

Every strategy returns one. The bench loop evaluates the edited model, then calls
`restore()`; no strategy ever reloads the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class Edit:
    restore: Callable[[], None] = lambda: None
    n_pruned: int = 0  # singular values (or weights, see `unit`) removed
    n_total: int = 0  # out of how many candidates
    unit: str = "singular values"
    masks: dict[str, torch.Tensor] | None = None  # keep-masks by matrix id, for --save/heat maps
    scores: dict[str, torch.Tensor] | None = None
    scoring_seconds: float = 0.0
    svd_seconds: float = 0.0  # SVDs computed for this cell (0 when earlier cells' are reused)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. LASER's chosen layer and rank
    # storage and spectrum of what a spectral edit keeps, named as the Row fields they fill
    spectrum: dict[str, float] = field(default_factory=dict)
    # the general-text probe's loss with this edit applied and without (harness/general.py)
    general_nll: float = float("nan")
    general_nll_base: float = float("nan")
    transfer: dict[str, dict] = field(default_factory=dict)  # --also-eval: task -> its result


def snapshot(modules: Iterable[nn.Module]) -> Callable[[], None]:
    """Copy the weight and bias of each module; the returned function puts them back exactly.

    A bias that did not exist (created by bias compensation) is removed again on restore.
    """
    saved = []
    for module in {id(m): m for m in modules}.values():
        bias = getattr(module, "bias", None)
        saved.append((module, module.weight.data.clone(), None if bias is None else bias.data.clone()))

    def restore() -> None:
        with torch.no_grad():
            for module, weight, bias in saved:
                module.weight.data.copy_(weight)
                if bias is None:
                    if getattr(module, "bias", None) is not None:
                        module.bias = None
                else:
                    module.bias.data.copy_(bias)

    return restore

"""The quantity scores estimate and measurements measure: pluggable (hook
`register_objectives`), since loss and exact answers disagree (on SmolLM2 INT-MULT, pruning
lowered the target loss 1.73 -> 1.50 while exact-answer accuracy fell).

An objective is a loss (lower is better) given per row as (sum, count), so a batch's value is
sum(sums) / sum(counts) and stacked copies of a batch (harness/removal.py) reduce apart. The
built-ins (plugins/objectives.py): `ce` (mean target cross-entropy, the paper's and the
default), `margin` (minus the answer's weakest-token margin over the best wrong token) and
`first-token` (minus the first target token's log-probability).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from harness.calibration import target_loss
from harness.plugins import registry

RowObjective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def get(name: str) -> RowObjective:
    """The registered objective called `name` (an error naming the choices otherwise)."""
    return registry().get("objectives", name)


def batch_loss(name: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The batch's objective as a differentiable scalar (ce is exactly `target_loss`)."""
    if name == "ce":
        return target_loss(logits, labels)
    sums, counts = get(name)(logits, labels)
    return sums.sum() / counts.sum().clamp_min(1)

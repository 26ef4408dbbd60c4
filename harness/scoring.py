"""What a scorer gets: `ScoringContext`, with one shared capture of inputs and gradients.

`ctx.passes()` runs one forward (+ backward) pass per calibration batch and yields, for
every selected matrix, its actual input x (after any norm, as the matrix sees it) and the
gradient of the target loss at its output. Scorers reduce these on the fly, so memory stays
at one batch. Parameters are frozen while it runs: gradients flow to activations only,
starting from the input embeddings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from harness import objective_loss
from harness.calibration import Batch, target_logits
from harness.errors import HarnessError
from harness.matrices import Matrix
from harness.spectral import Factors, working_dtype


class NonFiniteLoss(HarnessError):
    """The calibration loss is NaN or inf: every score from it would be meaningless."""


@dataclass
class Capture:
    batch: Batch
    valid: torch.Tensor  # (B, T) bool: real tokens
    inputs: dict[str, torch.Tensor]  # matrix id -> (B, T, in)
    grads: dict[str, torch.Tensor] | None  # matrix id -> (B, T, out), dL/d(output)
    loss: float | None


@contextmanager
def frozen(model: nn.Module):
    """Parameters stop requiring grad for the duration (restored after), model in eval mode."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@dataclass
class ScoringContext:
    model: nn.Module
    matrices: list[Matrix]
    factors: dict[str, Factors]
    batches: list[Batch]
    seed: int = 0
    _means: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    objective: str = "ce"  # the loss scores estimate (harness/objective_loss.py)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def passes(self, backward: bool = True) -> Iterator[Capture]:
        """One forward(+backward) pass per batch; the input means come for free on the way."""
        by_module: dict[int, nn.Module] = {id(m.module): m.module for m in self.matrices}
        inputs: dict[int, torch.Tensor] = {}
        grads: dict[int, torch.Tensor] = {}

        def hook(module, args, output):
            key = id(module)
            inputs[key] = args[0].detach()
            if backward:
                output.register_hook(lambda g: grads.__setitem__(key, g.detach()))

        handles = [mod.register_forward_hook(hook) for mod in by_module.values()]
        dtype = working_dtype(next(self.model.parameters()))
        sums = {m.id: torch.zeros(m.shape[1], device=self.device, dtype=dtype) for m in self.matrices}
        count = 0
        try:
            with frozen(self.model):
                for index, batch in enumerate(self.batches):
                    batch = batch.to(self.device)
                    inputs.clear()
                    grads.clear()
                    with torch.set_grad_enabled(backward):
                        embeds = self.model.get_input_embeddings()(batch.input_ids)
                        if backward:
                            # a copy of the leaf: a family may scale its embeddings in place (CTRL)
                            embeds = embeds.detach().requires_grad_(True).clone()
                        logits, labels = target_logits(
                            self.model, batch.labels, inputs_embeds=embeds,
                            attention_mask=batch.attention_mask, use_cache=False)
                        loss = objective_loss.batch_loss(self.objective, logits, labels)
                        if not bool(torch.isfinite(loss)):
                            raise NonFiniteLoss(
                                f"calibration loss is {loss.item()} on batch {index + 1} of "
                                f"{len(self.batches)}; the cell is skipped (try --dtype float32)")
                        if backward:
                            loss.backward()
                    valid = batch.attention_mask.bool()

                    def tokens(t, _shape=valid.shape):  # (B*T, d) where a family flattens (OPT's MLP)
                        return t.reshape(*_shape, t.shape[-1])

                    xs = {m.id: tokens(inputs[id(m.module)]).to(dtype) for m in self.matrices}
                    gs = (
                        {m.id: tokens(m.select_output(grads[id(m.module)])).to(dtype) for m in self.matrices}
                        if backward
                        else None
                    )
                    for m in self.matrices:
                        sums[m.id] += xs[m.id][valid].sum(0)
                    count += int(valid.sum())
                    yield Capture(batch, valid, xs, gs, loss.item())
        finally:
            for h in handles:
                h.remove()
        self._means = {k: v / max(count, 1) for k, v in sums.items()}

    def input_means(self) -> dict[str, torch.Tensor]:
        """Mean input (in,) of each matrix over all calibration tokens (for bias compensation)."""
        if self._means is None:
            for _ in self.passes(backward=False):
                pass
        return self._means

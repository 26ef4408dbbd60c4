"""`Matrix`: one prunable projection of one layer, and how to read and write it.

Whatever the layer stores (`nn.Linear` is out x in, GPT-2's `Conv1D` is in x out, GPT-2's
`c_attn` fuses Q, K and V), a Matrix presents the weight as an (out, in) tensor and splits
it into `heads` blocks so all heads of a layer go through one batched SVD:

    block_axis "out"  (Q, K, V per head):  W (H*o, in)  -> blocks (H, o, in)
    block_axis "in"   (O per head):        W (out, H*i) -> blocks (H, out, i)
    block_axis None   (MLP matrices):      W (out, in)  -> blocks (1, out, in)

A fused module's share is `rows`: a slice where it is contiguous (GPT-2's `c_attn`), or an
index tensor where heads interleave (GPT-NeoX's per-head [q, k, v]); reads then return a copy
and writes go through indexing, so callers use `write_weight`/`add_to_bias`, never the view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from harness.errors import HarnessError

KINDS = ("q", "k", "v", "o", "mlp_in", "mlp_out")


@dataclass(eq=False)
class Matrix:
    id: str  # stable and human readable: "layer.3.k"
    layer: int
    kind: str  # one of KINDS (a plugin may add its own)
    module: nn.Module  # holds .weight and .bias
    module_name: str  # its name in model.named_modules(), for saving and reports
    heads: int = 1
    block_axis: str | None = None  # "out", "in" or None
    transposed: bool = False  # True when the module stores (in, out), as GPT-2's Conv1D
    # output rows this matrix owns in a fused module: a slice, or a LongTensor of row indices
    rows: slice | torch.Tensor = field(default_factory=lambda: slice(None))

    # -- weights ---------------------------------------------------------------------------
    def _full(self) -> torch.Tensor:
        w = self.module.weight.data
        return w.T if self.transposed else w

    def weight(self) -> torch.Tensor:
        """The (out, in) weight: a view of the parameter, a copy where `rows` is an index tensor."""
        return self._full()[self.rows]

    def write_weight(self, new: torch.Tensor) -> None:
        self._full()[self.rows] = new.to(self.module.weight.dtype)

    def bias(self) -> torch.Tensor | None:
        b = getattr(self.module, "bias", None)
        return None if b is None else b.data[self.rows]

    def add_to_bias(self, delta: torch.Tensor) -> None:
        """Add `delta` (out,) to the bias, creating a zero bias where the layer had none."""
        if getattr(self.module, "bias", None) is None:
            w = self.module.weight
            out_features = w.shape[1] if self.transposed else w.shape[0]
            self.module.bias = nn.Parameter(
                torch.zeros(out_features, dtype=w.dtype, device=w.device),
                requires_grad=w.requires_grad,
            )
        b = self.module.bias.data
        b[self.rows] = b[self.rows] + delta.to(b.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight().shape)

    # -- the head split --------------------------------------------------------------------
    def to_blocks(self, w: torch.Tensor) -> torch.Tensor:
        """(out, in) -> (heads, out_h, in_h)."""
        if self.block_axis == "out":
            return w.unflatten(0, (self.heads, -1))
        if self.block_axis == "in":
            return w.unflatten(1, (self.heads, -1)).transpose(0, 1)
        return w.unsqueeze(0)

    def from_blocks(self, blocks: torch.Tensor) -> torch.Tensor:
        """(heads, out_h, in_h) -> (out, in); the inverse of `to_blocks`."""
        if self.block_axis == "out":
            return blocks.flatten(0, 1)
        if self.block_axis == "in":
            return blocks.transpose(0, 1).flatten(1)
        return blocks.squeeze(0)

    def input_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Layer input (..., in) -> what each head's block sees (..., heads, in_h)."""
        if self.block_axis == "in":
            return x.unflatten(-1, (self.heads, -1))
        return x.unsqueeze(-2).expand(*x.shape[:-1], self.heads, x.shape[-1])

    def output_blocks(self, y: torch.Tensor) -> torch.Tensor:
        """Layer output (..., out) -> each head block's share (..., heads, out_h)."""
        if self.block_axis == "out":
            return y.unflatten(-1, (self.heads, -1))
        return y.unsqueeze(-2).expand(*y.shape[:-1], self.heads, y.shape[-1])

    def select_output(self, y: torch.Tensor) -> torch.Tensor:
        """The part of the module's output (..., module_out) that this matrix produces."""
        return y[..., self.rows]


def parse_layers(spec: str | None, n_layers: int) -> set[int] | None:
    """`--layers` syntax: "0,3,5-7" or "-4:" (python-slice style, e.g. the last four)."""
    if spec is None or spec.strip() == "":
        return None
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        try:
            if ":" in part:
                start, _, stop = part.partition(":")
                chosen.update(
                    range(n_layers)[slice(int(start) if start else None, int(stop) if stop else None)]
                )
            elif "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, part)
                chosen.update(range(int(lo), int(hi) + 1))
            else:
                chosen.add(int(part) % n_layers if int(part) < 0 else int(part))
        except ValueError:
            raise HarnessError(
                f"bad --layers '{spec}'; use indices, ranges or slices such as 0,3,5-7 or -4:"
            ) from None
    bad = sorted(i for i in chosen if not 0 <= i < n_layers)
    if bad:
        raise HarnessError(f"--layers names layer {bad[0]}; the model has layers 0-{n_layers - 1}")
    return chosen

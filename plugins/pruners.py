"""Built-in pruning rules: scores -> keep-masks (True = keep). Lowest scores go first."""

from __future__ import annotations

import torch

from harness import hookimpl
from harness.errors import HarnessError
from harness.preflight import needs


def _lowest(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keep-mask over a flat score vector that drops the floor(fraction * n) lowest."""
    k = int(fraction * scores.numel())
    keep = torch.ones(scores.numel(), dtype=torch.bool)
    if k:
        keep[torch.topk(scores.flatten(), k, largest=False).indices] = False
    return keep


def global_fraction(scores, fraction, options):
    """Rank every singular value of every matrix together (the paper's rule)."""
    ids = list(scores)
    flat = torch.cat([scores[i].flatten().float().cpu() for i in ids])
    keep = _lowest(torch.nan_to_num(flat, nan=torch.inf), fraction)
    out, start = {}, 0
    for i in ids:
        n = scores[i].numel()
        out[i] = keep[start : start + n].view(scores[i].shape)
        start += n
    return out


def per_matrix(scores, fraction, options):
    """The same fraction from each matrix: scores of matrices of different scale never compete."""
    return {
        i: _lowest(torch.nan_to_num(s.float().cpu(), nan=torch.inf), fraction).view(s.shape)
        for i, s in scores.items()
    }


@needs(options=("threshold",))  # checked before the model loads (harness/preflight.py)
def threshold(scores, fraction, options):
    """Prune every singular value scoring below `threshold` (fraction is ignored)."""
    if options.get("threshold") is None:
        raise HarnessError("the threshold pruner needs --threshold VALUE")
    t = float(options["threshold"])
    return {i: ~(s.float().cpu() < t) for i, s in scores.items()}


@hookimpl
def register_pruners(register):
    register("global-fraction", global_fraction)
    register("per-matrix", per_matrix)
    register("threshold", threshold)

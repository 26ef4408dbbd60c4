"""Unstructured magnitude pruning (Han et al.; Wanda's `--prune_method magnitude`).

Zeroes the smallest-|w| weights of the same matrices eigen would touch, the same fraction of
each matrix (layer-wise, as Wanda and SparseGPT's magnitude baselines do). It works in
weight space, so it brings its own `apply` and never touches an SVD.
"""

from __future__ import annotations

import torch

from harness import hookimpl
from harness.edits import Edit, snapshot
from harness.strategy import PruneRequest, Strategy


def magnitude_apply(request: PruneRequest) -> Edit:
    restore = snapshot(m.module for m in request.matrices)
    n_pruned = n_total = 0
    with torch.no_grad():
        for m in request.matrices:
            w = m.weight()
            k = int(request.fraction * w.numel())
            n_total += w.numel()
            keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
            if k:
                keep[torch.topk(w.abs().flatten(), k, largest=False).indices] = False
                m.write_weight(w * keep.view(w.shape))
            n_pruned += k
    return Edit(restore=restore, n_pruned=n_pruned, n_total=n_total, unit="weights")


@hookimpl
def register_strategies(register):
    register(Strategy("magnitude", "zero the smallest-|w| weights of the K matrices, same fraction "
                      "of weights per matrix", matrices="k", needs_calibration=False, seeded=False,
                      apply=magnitude_apply, baseline=True))

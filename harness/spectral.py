"""SVD per head, and pruning singular directions out of the weights.

For a Matrix split into H head blocks W[h] (o x i) = U[h] diag(S[h]) Vh[h]:

    pruned[h]  = U[h] diag(S[h] * ~keep[h]) Vh[h]             the removed directions
    W'[h]      = W[h] - pruned[h]                              (exact where nothing is pruned)
    b'         = b + pruned @ mean(x)       with compensation: their mean effect moves to the bias

Subtracting the pruned part, instead of rebuilding U S' Vh, leaves every weight untouched
where a head loses nothing and keeps rounding error to the removed directions alone.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from harness import progress as notes
from harness.edits import Edit, snapshot
from harness.matrices import Matrix


@dataclass
class Factors:
    U: torch.Tensor  # (H, o, r)
    S: torch.Tensor  # (H, r), descending per head
    Vh: torch.Tensor  # (H, r, i)

    @property
    def rank(self) -> int:
        return self.S.shape[-1]

    def reconstruct(self, keep: torch.Tensor | None = None) -> torch.Tensor:
        """U diag(S * keep) Vh as (H, o, i)."""
        s = self.S if keep is None else self.S * keep
        return torch.einsum("hor,hr,hri->hoi", self.U, s, self.Vh)


def working_dtype(t: torch.Tensor) -> torch.dtype:
    """float32 for half-precision weights (SVD and scores need it), float64 stays float64."""
    return torch.promote_types(t.dtype, torch.float32)


def decompose(matrix: Matrix) -> Factors:
    """One batched SVD (float32 or better) over all head blocks of `matrix`."""
    w = matrix.weight()
    blocks = matrix.to_blocks(w.to(working_dtype(w)))
    U, S, Vh = torch.linalg.svd(blocks, full_matrices=False)
    return Factors(U, S, Vh)


class SpectrumCache:
    """Factors computed once per model and reused across tasks, fractions and strategies.

    Plain SVDs are keyed by matrix id alone; a data-aware decomposition's also by its name,
    its options and the calibration set they came from (harness/decompositions.py). Entries
    stay valid because every Edit is restored before the next cell reads them.
    """

    def __init__(self) -> None:
        self._factors: dict = {}
        self.seconds = 0.0  # spent in SVDs so far: rows report it apart from scoring

    def get(self, matrices: list[Matrix]) -> dict[str, Factors]:
        """The plain SVD of each matrix, computed once."""
        todo = [m for m in matrices if m.id not in self._factors]
        with notes.stage(f"SVDs of {len(todo)} matrices") if todo else nullcontext():
            for m in todo:
                start = time.perf_counter()
                self._factors[m.id] = decompose(m)
                self.seconds += time.perf_counter() - start
        return {m.id: self._factors[m.id] for m in matrices}

    def keyed(self, key: tuple, matrices: list[Matrix], compute) -> dict[str, Factors]:
        """Factors of another basis, kept under `key` (harness/decompositions.py: its name,
        settings and calibration set); `compute(missing)` makes the missing ones at once (one
        activation pass for all of them), timed into `seconds` like an SVD."""
        missing = [m for m in matrices if (key, m.id) not in self._factors]
        if missing:
            start = time.perf_counter()
            self._factors.update({(key, i): f for i, f in compute(missing).items()})
            self.seconds += time.perf_counter() - start
        return {m.id: self._factors[key, m.id] for m in matrices}


def prune(
    matrices: list[Matrix],
    factors: dict[str, Factors],
    keep: dict[str, torch.Tensor],
    input_means: dict[str, torch.Tensor] | None = None,
) -> Edit:
    """Remove the singular directions where `keep` is False; undo with `edit.restore()`.

    With `input_means` (the mean input of each matrix over the calibration tokens) the mean
    contribution of the removed directions is added to the bias (mean ablation), creating a
    bias where the layer had none.
    """
    # only what changes is copied: a search's trials prune one kind of matrix at a time, and
    # a copy of all of Qwen-0.5B's 168 is 1.4 GB and about 1.5 s a trial
    changed = [m for m in matrices if not bool(keep[m.id].all())]
    restore = snapshot(m.module for m in changed)
    n_pruned = 0
    try:
        with torch.no_grad():
            for m in changed:
                k = keep[m.id]
                n_pruned += int((~k).sum())
                drop = (~k).to(factors[m.id].S.device)  # pruners return CPU masks
                removed = m.from_blocks(factors[m.id].reconstruct(drop))  # (out, in)
                w = m.weight()
                m.write_weight(w.to(removed.dtype) - removed)
                if input_means is not None:
                    m.add_to_bias(removed @ input_means[m.id].to(removed.dtype))
    except BaseException:  # out of memory half-way: the caller never gets an Edit to undo
        restore()
        raise
    total = sum(int(keep[m.id].numel()) for m in matrices)
    return Edit(restore=restore, n_pruned=n_pruned, n_total=total, masks=keep,
                spectrum=spectrum_stats(matrices, factors, keep))


def spectrum_stats(
    matrices: list[Matrix], factors: dict[str, Factors], keep: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Storage and spectrum of what the kept directions make up, so equal budgets can be set
    side by side on more than the count of singular values.

    params_factored: what a factored store would hold, k (o + i) per head block of o x i
    with k kept singular values (σ folded into U), next to params_dense, the o x i of every
    block; energy_kept: kept Σσ² over all Σσ² (the share of the squared Frobenius norm);
    effective_rank: exp of the entropy of each block's kept σ / Σ kept σ (Roy and Vetterli),
    averaged over blocks (0 for a block with nothing kept).
    """
    factored = dense = 0
    energy = total = 0.0
    eranks = []
    for m in matrices:
        f = factors[m.id]
        k = keep[m.id].to(f.S.device)
        s = f.S.double() * k
        o, i = f.U.shape[1], f.Vh.shape[2]
        factored += int(k.sum()) * (o + i)
        dense += f.S.shape[0] * o * i
        energy += float((s**2).sum())
        total += float((f.S.double() ** 2).sum())
        p = s / s.sum(-1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
        entropy = -(p * p.clamp_min(torch.finfo(s.dtype).tiny).log()).sum(-1)
        eranks.append(torch.where(k.any(-1), entropy.exp(), torch.zeros_like(entropy)))
    erank = torch.cat(eranks).mean() if eranks else torch.tensor(float("nan"))
    return {"params_factored": factored, "params_dense": dense,
            "energy_kept": round(energy / total, 6) if total else float("nan"),
            "effective_rank": round(float(erank), 4)}

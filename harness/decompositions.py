"""Which basis the singular values live in (``--decomposition``): plain SVD or data-aware ones.

A decomposition factors each head block W (o x i) through an invertible input transform T
(i x i) built from the calibration activations:

    W T = U diag(S) Vh          one batched SVD of the transformed blocks
    W   = U diag(S) (Vh T⁻¹)    the factors the rest of the harness sees: Factors(U, S, Vh T⁻¹)

Direction j still writes S[j] U[:, j] ((Vh T⁻¹)[j] . x) into the output, so scorers, pruners,
`spectral.prune` (and its bias compensation) and `removal.measure` work unchanged: they only
ever read U, S and the row of `Factors.Vh` that multiplies x. What changes is which directions
are small: with T = I (plain) the ones of least weight norm, with T the Cholesky factor of the
inputs' Gram matrix (SVD-LLM) the ones whose removal costs the least output error on the
data. Restoring stays exact whatever T is: the Edit keeps a copy of the weights.

A decomposition plugin registers ``factor(blocks, activations, options) -> Factors`` (see
hookspecs.register_decompositions), declaring with `uses` what it reads of the activations
(the Gram matrix costs i² per block, so it is collected only when asked for) and its options'
defaults. Factors are cached per (decomposition, its options, calibration set) for as long as
the model lives (spectral.SpectrumCache).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.calibration import Batch
from harness.errors import HarnessError
from harness.matrices import Matrix
from harness.plugins import plugin_call, registry
from harness.scoring import frozen
from harness.spectral import Factors, SpectrumCache, working_dtype

PLAIN = "plain"
STATISTICS = ("abs_mean", "gram")


@dataclass
class Activations:
    """What one matrix's head blocks saw over the calibration tokens (float64).

    abs_mean (H, i): mean |x| per input channel (ASVD's scale); gram (H, i, i): mean x xᵀ
    (SVD-LLM's whitening), None unless the decomposition `uses` it; tokens: how many.
    """

    tokens: int
    abs_mean: torch.Tensor
    gram: torch.Tensor | None = None


Factor = Callable[[torch.Tensor, Activations | None, dict[str, Any]], Any]


def uses(*statistics: str, **defaults: Any) -> Callable[[Factor], Factor]:
    """Declare what a decomposition reads of the activations and its options' defaults:
    ``@uses("gram")`` or ``@uses("abs_mean", alpha=0.5)``. A decomposition without it is
    data-free (the plain SVD's kind): it is computed once per model, for every task."""
    bad = [s for s in statistics if s not in STATISTICS]
    if bad:
        raise ValueError(f"unknown statistic '{bad[0]}'; choose from: {', '.join(STATISTICS)}")

    def mark(fn: Factor) -> Factor:
        fn.statistics = tuple(statistics)
        fn.defaults = dict(defaults)
        return fn

    return mark


def statistics_of(fn: Factor) -> tuple[str, ...]:
    return tuple(getattr(fn, "statistics", ()))


def settings(fn: Factor, options: dict[str, Any]) -> dict[str, Any]:
    """The decomposition's options: its defaults, overridden by the strategy's (--option)."""
    return {k: options.get(k, v) for k, v in getattr(fn, "defaults", {}).items()}


def basis_key(name: str, options: dict[str, Any]) -> tuple:
    """What sets a basis apart in cache keys: () for the plain SVD (keys stay as they were),
    else the name and its settings. Scores, input captures and measurements made in one basis
    must never be reused in another: same shapes, other directions."""
    if name == PLAIN:
        return ()
    fn = registry().get("decompositions", name)
    return (name, tuple(sorted(settings(fn, options).items())))


def calibration_key(batches: list[Batch]) -> str:
    """A digest of the calibration tokens: the factors of a data-aware basis belong to it."""
    h = hashlib.sha256()
    for b in batches:
        for t in (b.input_ids, b.attention_mask):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def collect(model: nn.Module, matrices: list[Matrix], batches: list[Batch],
            gram: bool) -> dict[str, Activations]:
    """One forward pass per calibration batch (no backward), with every matrix's input
    statistics accumulated in float64 over the real tokens.

    Blocks that share their input (heads split along the output) share one Gram matrix,
    computed once and expanded, never copied per head."""
    if not batches:
        raise HarnessError("a data-aware decomposition needs calibration batches; this strategy "
                           "has none (use --decomposition plain)")
    device = next(model.parameters()).device
    seen: dict[int, torch.Tensor] = {}
    by_module = {id(m.module): m.module for m in matrices}

    def hook(module, args, output):
        seen[id(module)] = args[0].detach()

    sums = {m.id: torch.zeros(m.heads, m.input_blocks(torch.zeros(1, m.shape[1])).shape[-1],
                              dtype=torch.float64, device=device) for m in matrices}
    grams: dict[str, torch.Tensor] = {}
    tokens = 0
    handles = [mod.register_forward_hook(hook) for mod in by_module.values()]
    try:
        with frozen(model), torch.no_grad():
            for batch in batches:
                batch = batch.to(device)
                seen.clear()
                model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
                valid = batch.attention_mask.bool().reshape(-1)
                tokens += int(valid.sum())
                for m in matrices:
                    x = seen[id(m.module)].reshape(valid.shape[0], -1)[valid].double()  # (N, in)
                    sums[m.id] += m.input_blocks(x.abs()).sum(0)  # (H, i)
                    if gram:
                        if m.block_axis == "in":  # each head sees its own slice: (H, i, i)
                            xh = m.input_blocks(x)
                            g = torch.einsum("nhi,nhj->hij", xh, xh)
                        else:  # every block sees all of x: one (i, i), shared
                            g = (x.T @ x)[None]
                        grams[m.id] = grams[m.id] + g if m.id in grams else g
    finally:
        for h in handles:
            h.remove()
    n = max(tokens, 1)
    return {m.id: Activations(tokens, sums[m.id] / n,
                              (grams[m.id] / n).expand(m.heads, -1, -1) if gram else None)
            for m in matrices}


def factorize(name: str, fn: Factor, matrices: list[Matrix], model: nn.Module,
              batches: list[Batch], options: dict[str, Any]) -> dict[str, Any]:
    """Every matrix's Factors in the basis `name`, checked: a plugin's factors must multiply
    back to the weight (a wrong one would prune something else than it reports)."""
    stats = statistics_of(fn)
    acts = collect(model, matrices, batches, gram="gram" in stats) if stats else {}
    opts = settings(fn, options)
    out = {}
    for m in matrices:
        w = m.weight()
        blocks = m.to_blocks(w.to(working_dtype(w)))
        with plugin_call("decompositions", name):
            f = fn(blocks, acts.get(m.id), opts)
        if not isinstance(f, Factors):
            raise HarnessError(f"decomposition '{name}' returned {type(f).__name__} for {m.id}; "
                               "expected a harness.spectral.Factors")
        f = Factors(*(t.to(blocks.dtype) for t in (f.U, f.S, f.Vh)))
        error = (f.reconstruct() - blocks).norm() / blocks.norm().clamp_min(1e-30)
        if not bool(error < 1e-3):
            raise HarnessError(f"decomposition '{name}' does not reproduce {m.id}: U S Vh differs "
                               f"from the weight by {float(error):.2g} (relative); its factors "
                               "must satisfy W = U diag(S) Vh")
        out[m.id] = f
    return out


def factors(cache: SpectrumCache, matrices: list[Matrix], name: str, model: nn.Module,
            batches: list[Batch], options: dict[str, Any]) -> dict[str, Factors]:
    """The matrices' factors in the basis `name`, kept in `cache` (per model) under the basis,
    its settings and, for a data-aware one, the calibration set they came from."""
    if name == PLAIN:
        return cache.get(matrices)
    fn = registry().get("decompositions", name)
    calibration = calibration_key(batches) if statistics_of(fn) else ""
    key = (name, tuple(sorted(settings(fn, options).items())), calibration)
    return cache.keyed(key, matrices, lambda missing: factorize(name, fn, missing, model, batches, options))

"""`eigen-verified`: trust a measurement over a linear estimate, on the scorer's shortlist.

First-order scores are local: on SmolLM2 they ranked a few large-σ directions lowest and
pruning those destroyed the model. Measuring every direction's real effect is too dear, but
measuring a shortlist is not: the scorer proposes `verify_multiple` times the budget (its
lowest candidates under the strategy's pruner), each candidate is removed alone on a held-in
subset of the calibration data (the first `verify_examples` examples, many candidates per
forward pass, see harness/removal.py), and the pruner then picks the budget from the
candidates by their measured loss change. Directions are measured one at a time, so
interactions between them are not seen (eigen-iterative addresses those).

Cost: shortlist x verify_examples sequences forwarded, `verify_rows` at a time, each pass
from the first layer its candidates edit and each batch's rows in length groups, so copies do
not multiply padding (harness/removal.py: on SmolLM2's CB, seed 1, 908 real tokens in 2,272
padded cells, 16 candidates took 192 s against 421 s padded); a direction measured for one
fraction is not measured again for the next (the request's cache holds every measurement of
the seed), so a sweep over fractions costs what its largest shortlist does. Measured on
SmolLM2-135M, K matrices, int_mult, one CPU thread of a loaded 2-core machine: 0.59 s a
candidate at 16 examples (32 candidates spread over all layers: 18.9 s, 27.0 s with the copies
made at the input). The default budget (0.2 of 5,760 K values, shortlist 3,456) is then over
half an hour a seed on a CPU; `--option verify_multiple=1.5 --option verify_examples=8` cuts
it by four (int_mult at fraction 0.1, `--limit 20`: 4 min 21 s in all on the same machine, 240 s
of it measuring). The defaults stay the recipe's on every device, so a row named
`eigen-verified` means one thing everywhere; before measuring, the cost is announced above the
bar, and on a CPU with these defaults the line says how to size them; the bar then counts the
candidates with the time left.

Options (`--option name=value`): verify_multiple (3), verify_examples (16), verify_rows (128
sequences per forward pass). What is measured is the strategy's objective (`--objective`,
default ce), the one its scores estimate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from harness import hookimpl, objective_loss, removal, spectral
from harness import progress as notes
from harness.edits import Edit
from harness.errors import HarnessError
from harness.strategy import PruneRequest, Strategy

DEFAULTS = {"verify_multiple": 3.0, "verify_examples": 16, "verify_rows": 128}
CPU_SIZED = "--option verify_multiple=1.5 --option verify_examples=8"


def _option(request: PruneRequest, name: str):
    default = DEFAULTS[name]
    value = request.options.get(name)
    value = default if value is None else type(default)(value)
    if value <= 0:
        raise HarnessError(f"option {name} must be > 0, got {value}")
    return value


@dataclass
class Measured:
    """Every direction of one seed measured so far: the request's cache keeps it across the
    fractions of a sweep, so each fraction measures only what a smaller one did not."""

    grids: dict[str, torch.Tensor]  # matrix id -> (H, r) loss change, NaN where not measured
    base_loss: float = float("nan")
    rows: int = 0  # sequences forwarded for this request's new candidates
    passes: int = 0
    new: int = 0  # candidates measured for this request


def _measured(request: PruneRequest, factors, drop: dict[str, torch.Tensor], n_examples: int,
              max_rows: int) -> Measured:
    strategy = request.strategy
    key = ("verified", request.seed, request.objective, strategy.compensate, n_examples)
    known = request.cache.setdefault(key, Measured({}))
    for i, d in drop.items():
        known.grids.setdefault(i, torch.full(d.shape, torch.nan, dtype=torch.float64))
    new = {i: d & known.grids[i].isnan() for i, d in drop.items()}
    known.new = sum(int(n.sum()) for n in new.values())
    known.rows = known.passes = 0
    if known.new:
        announce_cost(request, known.new, n_examples)
        means = request.input_means() if strategy.compensate else None
        m = removal.measure(
            request.model, request.matrices, factors, removal.subset(request.batches, n_examples),
            removal.candidates_from_mask(new), means, max_rows, objective_loss.get(request.objective))
        for i, delta in m.delta.items():
            known.grids[i][new[i]] = delta.double()
        known.base_loss, known.rows, known.passes = m.base_loss, m.rows, m.passes
    return known


def announce_cost(request: PruneRequest, candidates: int, n_examples: int) -> None:
    """Say what the measurement costs before it starts: `--limit` does not bound it. On a CPU
    with the GPU-sized defaults, also say how to size it (README: a quarter of the cost)."""
    strategy, device = request.strategy, next(request.model.parameters()).device.type
    line = (f"{strategy.name} f={request.fraction:g} seed={request.seed}: measuring {candidates:,} "
            f"candidates on {n_examples} calibration examples each ({candidates * n_examples:,} "
            "sequences forwarded; --limit does not bound it)")
    sized = {k: request.options.get(k, v) for k, v in DEFAULTS.items()}
    if device == "cpu" and float(sized["verify_multiple"]) >= 3 and int(sized["verify_examples"]) >= 16:
        line += f"; on a CPU, {CPU_SIZED} costs a quarter of that"
    notes.announce(line)


def verified_apply(request: PruneRequest) -> Edit:
    strategy = request.strategy
    multiple = _option(request, "verify_multiple")
    n_examples = _option(request, "verify_examples")
    max_rows = _option(request, "verify_rows")
    scores, seconds = request.scores(strategy.scorer)
    factors = request.factors()

    shortlist = request.prune(scores, min(1.0, multiple * request.fraction))
    drop = {i: ~k.cpu() for i, k in shortlist.items()}
    start = time.perf_counter()
    measured = _measured(request, factors, drop, n_examples, max_rows)
    measure_seconds = time.perf_counter() - start

    # Not shortlisted: +inf, so a fraction pruner takes the budget from the shortlist only.
    grid = {i: torch.where(drop[i], measured.grids[i], torch.inf) for i in drop}
    keep = request.prune(grid)
    keep = {i: k.cpu() | ~drop[i] for i, k in keep.items()}  # never outside the shortlist
    one_shot = request.prune(scores)

    means = request.input_means() if strategy.compensate else None
    edit = spectral.prune(request.matrices, factors, keep, means)
    edit.scores = scores
    edit.scoring_seconds = seconds + measure_seconds
    pruned = sum(int((~k).sum()) for k in keep.values())
    shared = sum(int((~k & ~one_shot[i].cpu()).sum()) for i, k in keep.items())
    edit.details = {
        "shortlist": sum(int(d.sum()) for d in drop.values()),
        "measured_now": measured.new,  # the rest was measured for a smaller fraction
        "verify_examples": sum(b.n_examples for b in removal.subset(request.batches, n_examples)),
        "measure_seconds": round(measure_seconds, 3),
        "measure_rows": measured.rows,
        "measure_passes": measured.passes,
        "objective": request.objective,
        "base_loss": round(measured.base_loss, 6),
        "pruned_measured_delta_sum": round(float(sum(
            grid[i][~keep[i]].sum() for i in keep)), 6),
        "same_as_scorer_alone": round(shared / pruned, 4) if pruned else 1.0,
    }
    return edit


@hookimpl
def register_strategies(register):
    register(Strategy("eigen-verified", "eigen's scorer shortlists 3x the budget; each candidate's real "
                      "loss change is measured on 16 calibration examples; the best measured are pruned",
                      matrices="k", scorer="attribution", apply=verified_apply,
                      spectral_options=True, options=dict(DEFAULTS)))

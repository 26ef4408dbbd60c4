"""`eigen-verified`: trust a measurement over a linear estimate, on the scorer's shortlist.

First-order scores are local: on SmolLM2 they ranked a few large-σ directions lowest and
pruning those destroyed the model. Measuring every direction's real effect is too dear, but
measuring a shortlist is not: the scorer proposes `verify_multiple` times the budget (its
lowest candidates under the strategy's pruner), each candidate is removed alone on a held-in
subset of the calibration data (the first `verify_examples` examples, many candidates per
forward pass, see harness/removal.py), and the pruner then picks the budget from the
candidates by their measured loss change. Directions are measured one at a time, so
interactions between them are not seen (eigen-iterative addresses those).

Cost: shortlist x verify_examples sequences forwarded, `verify_rows` at a time (recorded in
the row's details). Measured on SmolLM2-135M, K matrices, 2 shared CPU cores: 57 candidates x
16 int_mult examples took 201 s (8 passes of up to 128 sequences); at the default budget (0.2
of 5,760 K values, shortlist 3,456) that is hours on a CPU, so run it on a GPU or lower
verify_multiple / verify_examples.

Options (request.options, from the Python API): verify_multiple (3), verify_examples (16),
verify_rows (128 sequences per forward pass). What is measured is the strategy's objective
(`--objective`, default ce), the one its scores estimate.
"""

from __future__ import annotations

import time

import torch

from harness import hookimpl, objectives, removal, spectral
from harness.edits import Edit
from harness.errors import HarnessError
from harness.plugins import registry
from harness.strategy import PruneRequest, Strategy


def _option(request: PruneRequest, name: str, default, cast=int):
    value = request.options.get(name)
    value = default if value is None else cast(value)
    if value <= 0:
        raise HarnessError(f"option {name} must be > 0, got {value}")
    return value


def verified_apply(request: PruneRequest) -> Edit:
    strategy = request.strategy
    multiple = _option(request, "verify_multiple", 3.0, float)
    n_examples = _option(request, "verify_examples", 16)
    max_rows = _option(request, "verify_rows", 128)
    objective = request.objective
    pruner = registry().get("pruners", strategy.pruner)
    scores, seconds = request.scores(strategy.scorer)
    factors = request.factors()

    shortlist = pruner(scores, min(1.0, multiple * request.fraction), request.options)
    drop = {i: ~k for i, k in shortlist.items()}
    means = request.input_means() if strategy.compensate else None
    start = time.perf_counter()
    measured = removal.measure(
        request.model, request.matrices, factors, removal.subset(request.batches, n_examples),
        removal.candidates_from_mask(drop), means, max_rows, objectives.get(objective))
    measure_seconds = time.perf_counter() - start

    # Not shortlisted: +inf, so a fraction pruner takes the budget from the shortlist only.
    grid = removal.scatter(measured.delta, drop, torch.inf, scores)
    keep = pruner(grid, request.fraction, request.options)
    keep = {i: k | ~drop[i] for i, k in keep.items()}  # never outside the shortlist
    one_shot = pruner(scores, request.fraction, request.options)

    edit = spectral.prune(request.matrices, factors, keep, means)
    edit.scores = scores
    edit.scoring_seconds = seconds + measure_seconds
    pruned = sum(int((~k).sum()) for k in keep.values())
    shared = sum(int((~k & ~one_shot[i]).sum()) for i, k in keep.items())
    edit.details = {
        "shortlist": sum(int(d.sum()) for d in drop.values()),
        "verify_examples": sum(b.n_examples for b in removal.subset(request.batches, n_examples)),
        "measure_seconds": round(measure_seconds, 3),
        "measure_rows": measured.rows,
        "measure_passes": measured.passes,
        "objective": objective,
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
                      spectral_options=True))

"""`eigen-iterative`: prune in rounds, re-scoring where the model now is.

A first-order score is the slope of the loss at the unpruned model; after removing a share of
directions the slope of the others has moved. Here the budget is spent in `rounds` equal
steps (option, default 4): round r prunes up to r/rounds of the budget, ranking the remaining
directions by scores taken on the model as rounds 1..r-1 left it.

Details that matter: each round uses a fresh ScoringContext (the request's cache holds the
unpruned model's scores and input means; round 1 reuses them, being taken at the same point);
the factors a round sees are the original U and Vh with the pruned σ set to 0, which is an
exact SVD of the pruned weight; directions already pruned score -inf, so any fraction pruner
keeps them pruned and counts them in the budget; bias compensation uses the input means of
the round's own model. The Edit restores every round in reverse order, bit for bit.
"""

from __future__ import annotations

import torch

from harness import hookimpl, spectral
from harness import progress as notes
from harness.edits import Edit
from harness.errors import HarnessError
from harness.scoring import ScoringContext
from harness.strategy import PruneRequest, Strategy

ROUNDS = 4  # the default; --option rounds=N


def _undo_all(edits: list[Edit]):
    def restore() -> None:
        for e in reversed(edits):
            e.restore()

    return restore


def iterative_apply(request: PruneRequest) -> Edit:
    strategy = request.strategy
    rounds = request.options.get("rounds")
    rounds = ROUNDS if rounds is None else int(rounds)
    if rounds < 1:
        raise HarnessError(f"option rounds must be >= 1, got {rounds}")
    factors = request.factors()
    keep = {m.id: torch.ones(factors[m.id].S.shape, dtype=torch.bool) for m in request.matrices}
    edits: list[Edit] = []
    history = []
    scoring_seconds = 0.0
    first_scores = scores = None
    if rounds > 1:
        notes.announce(f"{strategy.name} f={request.fraction:g} seed={request.seed}: {rounds} rounds, "
                       f"{rounds - 1} more scoring pass(es) on the calibration sample than eigen "
                       "(--limit does not bound them)")
    try:
        for r in range(1, rounds + 1):
            if r == 1:  # the unpruned model: the request's cached scores are exactly these
                scores, seconds = request.scores(strategy.scorer)
                means = request.input_means() if strategy.compensate else None
                first_scores = scores
            else:
                current = {i: spectral.Factors(f.U, f.S * keep[i].to(f.S.device, f.S.dtype), f.Vh)
                           for i, f in factors.items()}
                ctx = ScoringContext(request.model, request.matrices, current, request.batches,
                                     request.seed, objective=request.objective)
                with notes.stage(f"round {r}/{rounds}: scoring the pruned model"):
                    scores, seconds = request.score(ctx)
                means = ctx.input_means() if strategy.compensate else None
            scoring_seconds += seconds
            ranked = {i: s.masked_fill(~keep[i].to(s.device), -torch.inf) for i, s in scores.items()}
            step = request.prune(ranked, request.fraction * r / rounds)
            new_keep = {i: keep[i] & step[i].cpu() for i in keep}  # never un-prune
            drop = {i: keep[i] & ~new_keep[i] for i in keep}
            edits.append(spectral.prune(request.matrices, factors, {i: ~d for i, d in drop.items()},
                                        means))
            history.append({"round": r, "pruned": sum(int(d.sum()) for d in drop.values()),
                            "scoring_seconds": round(seconds, 3)})
            keep = new_keep
    except BaseException:
        _undo_all(edits)()
        raise

    one_shot = request.prune(first_scores)
    pruned = sum(int((~k).sum()) for k in keep.values())
    shared = sum(int((~k & ~one_shot[i].cpu()).sum()) for i, k in keep.items())
    edit = Edit(restore=_undo_all(edits), n_pruned=pruned,
                n_total=sum(int(k.numel()) for k in keep.values()), masks=keep, scores=scores,
                scoring_seconds=scoring_seconds)
    edit.details = {"rounds": history, "same_as_one_shot": round(shared / pruned, 4) if pruned else 1.0}
    edit.spectrum = spectral.spectrum_stats(request.matrices, factors, keep)
    return edit


@hookimpl
def register_strategies(register):
    register(Strategy("eigen-iterative", "eigen in 4 rounds of equal budget, re-scoring the pruned model "
                      "before each round", matrices="k", scorer="attribution", apply=iterative_apply,
                      spectral_options=True, options={"rounds": ROUNDS}))

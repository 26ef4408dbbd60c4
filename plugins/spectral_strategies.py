"""Eigenpruning, its spectral baselines and the unpruned baseline."""

from __future__ import annotations

from harness import hookimpl
from harness.edits import Edit
from harness.strategy import Strategy


def unpruned(request) -> Edit:
    return Edit(n_total=0)


@hookimpl
def register_strategies(register):
    register(Strategy("none", "the unpruned model", uses_fraction=False, fraction=0.0,
                      needs_calibration=False, apply=unpruned))
    register(Strategy("eigen", "eigenpruning (paper defaults): K matrices, attribution scores, "
                      "global fraction, bias compensation", matrices="k", scorer="attribution"))
    register(Strategy("random-sv", "random singular values of the same matrices, same budget",
                      matrices="k", scorer="random"))
    register(Strategy("smallest-sv", "smallest singular values first (rank truncation)",
                      matrices="k", scorer="sigma", compensate=False, seeded=False))

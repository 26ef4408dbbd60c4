"""Eigenpruning, its spectral baselines, their controls and the unpruned baseline.

The controls separate *which* directions are removed from *that* K directions are
mean-ablated at all: eigen and random-sv each with and without bias compensation, and
smallest-sv with it. If eigen-nocomp loses what eigen gains, the gain came from the bias
carrying the mean; if random-sv matches eigen, the attribution ranking adds nothing.
"""

from __future__ import annotations

from harness import hookimpl
from harness.edits import Edit
from harness.strategy import Strategy


def unpruned(request) -> Edit:
    return Edit(n_total=0)


@hookimpl
def register_strategies(register):
    register(Strategy("none", "the unpruned model", uses_fraction=False, fraction=0.0,
                      needs_calibration=False, apply=unpruned, baseline=True))
    register(Strategy("eigen", "eigenpruning (paper defaults): K matrices, attribution scores, "
                      "global fraction, bias compensation", matrices="k", scorer="attribution"))
    register(Strategy("eigen-nocomp", "control: eigen without bias compensation (directions "
                      "zeroed, not mean-ablated)", matrices="k", scorer="attribution",
                      compensate=False))
    register(Strategy("random-sv", "random singular values of the same matrices, same budget",
                      matrices="k", scorer="random", baseline=True))
    register(Strategy("random-sv-nocomp", "control: random-sv without bias compensation",
                      matrices="k", scorer="random", compensate=False, baseline=True))
    register(Strategy("smallest-sv", "smallest singular values first (rank truncation)",
                      matrices="k", scorer="sigma", compensate=False, seeded=False, baseline=True))
    # seed-free by choice: its compensation means come from seed 0's calibration sample
    register(Strategy("smallest-sv-comp", "control: smallest-sv with bias compensation",
                      matrices="k", scorer="sigma", seeded=False, baseline=True))

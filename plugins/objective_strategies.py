"""Eigenpruning aimed at another quantity than the target cross-entropy.

On SmolLM2 INT-MULT, pruning lowered the target loss while exact answers got fewer: the loss
rewards probability mass on the right tokens, accuracy only the argmax. These strategies are
eigen with the scores taken on another objective (hook register_objectives): the answer's
margin over the best wrong token (`eigen-margin`), or the first target token's
log-probability (`eigen-first-token`). Any spectral strategy takes another objective with
`harness bench --objective NAME`.
"""

from __future__ import annotations

from harness import hookimpl
from harness.strategy import Strategy


@hookimpl
def register_strategies(register):
    register(Strategy("eigen-margin", "eigen with scores of the answer's margin over the best wrong "
                      "token (not the cross-entropy)", matrices="k", scorer="attribution",
                      objective="margin"))
    register(Strategy("eigen-first-token", "eigen with scores of the first answer token's "
                      "log-probability", matrices="k", scorer="attribution", objective="first-token"))

"""`majority`: every example answered with the training split's most common answer, no model.

A baseline a pruned model must beat as much as the unpruned one: on CB, a model pushed to
prefer "contradiction" climbs towards the 50% this gets without reading a word (see
harness/majority_answer.py). Seed-free and budget-free, it runs once per task like `none`, and the
leaderboard sets every method against it as one of the baselines "as tuned".
"""

from __future__ import annotations

from harness import hookimpl
from harness.majority_answer import majority_lm
from harness.strategy import Strategy


@hookimpl
def register_strategies(register):
    register(Strategy("majority", "no model: every example gets the training split's most common "
                      "answer (what a pure label preference scores)", uses_fraction=False,
                      fraction=0.0, needs_calibration=False, seeded=False, baseline=True,
                      answerer=majority_lm))

"""Plugins that fail on purpose, importable by Ray workers (tests put this folder on their path).

`Faults(flag_dir)` registers strategies a test names with --strategy:
  die-once      magnitude pruning, but the first call anywhere kills its worker process
  explode-0.2   magnitude pruning, except at fraction 0.2 where it raises (a plugin bug)
  half-edit     zeroes layer 0's K weights, then raises (a strategy that cannot undo)
  poison        spectral, with a scorer that writes NaN into the weights and then scores:
                the calibration loss is NaN
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from eigenharness_plugins.magnitude import magnitude_apply

from harness import hookimpl
from harness.strategy import Strategy


class Faults:
    def __init__(self, flag_dir: str | Path) -> None:
        self.flag = Path(flag_dir) / "died-once"

    def die_once(self, request):
        if not self.flag.exists():
            self.flag.write_text("the worker died here once")
            os._exit(1)
        return magnitude_apply(request)

    @staticmethod
    def explode(request):
        if abs(request.fraction - 0.2) < 1e-9:
            raise ValueError("boom at 0.2")
        return magnitude_apply(request)

    @staticmethod
    def half_edit(request):
        with torch.no_grad():
            request.matrices[0].module.weight.zero_()
        raise RuntimeError("half-way")

    @hookimpl
    def register_scorers(self, register):
        def poison(ctx):
            with torch.no_grad():
                for m in ctx.matrices:
                    m.module.weight.fill_(float("nan"))
            for _ in ctx.passes():
                pass
            return {}

        register("poison", poison)

    @hookimpl
    def register_strategies(self, register):
        seed_free = dict(matrices="k", needs_calibration=False, seeded=False)
        register(Strategy("die-once", "dies once", apply=self.die_once, **seed_free))
        register(Strategy("explode-0.2", "raises at 0.2", apply=self.explode, **seed_free))
        register(Strategy("half-edit", "half an edit, then raises", apply=self.half_edit, **seed_free))
        register(Strategy("poison", "NaN loss", matrices="k", scorer="poison"))

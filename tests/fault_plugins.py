"""Plugins that fail on purpose, importable by Ray workers (tests put this folder on their path).

`Faults(flag_dir)` registers strategies a test names with --strategy:
  die-once      magnitude pruning, but the first call anywhere kills its worker process
  explode-0.2   magnitude pruning, except at fraction 0.2 where it raises (a plugin bug)
  half-edit     zeroes layer 0's K weights, then raises (a strategy that cannot undo)
  poison        spectral, with a scorer that writes NaN into the weights and then scores:
                the calibration loss is NaN

`Faults(flag_dir, kill={"constructor": n, "load": m})` also kills the first n Ray workers
that build their plugins (the actor's constructor) and the first m that load the model, each
kill claimed once across processes through a file in `flag_dir`; with `kill_after="died-once"`
only once die-once has killed its worker (so the replacement is the one that dies). Never in
the process that made the object (the driver).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from eigenharness_plugins.magnitude import magnitude_apply

from harness import hookimpl
from harness.strategy import Strategy


class Faults:
    def __init__(self, flag_dir: str | Path, kill: dict[str, int] | None = None,
                 kill_after: str | None = None) -> None:
        self.dir = Path(flag_dir)
        self.flag = self.dir / "died-once"
        self.kill = dict(kill or {})
        self.kill_after = kill_after
        self.driver = os.getpid()

    def maybe_die(self, phase: str) -> None:
        """In a worker, claim one of `phase`'s kills that no process has claimed yet, and die."""
        if os.getpid() == self.driver or (self.kill_after and not (self.dir / self.kill_after).exists()):
            return
        for i in range(self.kill.get(phase, 0)):
            try:
                os.close(os.open(self.dir / f"killed-{phase}-{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            os._exit(1)

    def killed(self, phase: str) -> int:
        return len(list(self.dir.glob(f"killed-{phase}-*")))

    def _arm_model_load(self) -> None:
        """Make this worker's model load claim a "load" kill first."""
        from harness import models

        load = models.load
        if getattr(load, "faults", None) is self:
            return

        def dying_load(*args, **kwargs):
            self.maybe_die("load")
            return load(*args, **kwargs)

        dying_load.faults = self
        models.load = dying_load

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
        # A Ray worker's constructor collects its plugins: this hook runs there
        if os.getpid() != self.driver:
            self.maybe_die("constructor")
            if self.kill.get("load"):
                self._arm_model_load()
        seed_free = dict(matrices="k", needs_calibration=False, seeded=False)
        register(Strategy("die-once", "dies once", apply=self.die_once, **seed_free))
        register(Strategy("explode-0.2", "raises at 0.2", apply=self.explode, **seed_free))
        register(Strategy("half-edit", "half an edit, then raises", apply=self.half_edit, **seed_free))
        register(Strategy("poison", "NaN loss", matrices="k", scorer="poison"))

"""The built-in executors: `local` (this process, the default) and `ray` (a Ray cluster).

Both run the same `harness.runner.CellRunner`; they differ only in where it lives and how
many there are. Ray is imported when the `ray` executor starts, never before, so `harness`
starts as fast without it.

Ray facts this relies on: a model survives between calls only inside an *actor* (GPU tasks
exit after each call), so each worker is an actor that loads the model once; a unit is an
actor *generator* method, so each finished cell streams back before the unit ends; the driver
owns retries (Ray's own would rerun whole units and send rows twice): when a worker dies, a
fresh actor replaces it and only the cells that did not come back are resubmitted.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator

import torch

from harness import hookimpl, plugins
from harness.cli import _quiet
from harness.errors import HarnessError
from harness.runner import CellRunner
from harness.work import BaselineJob, CellDone, ExecutorOptions, Job, JobFailed, WorkerLost, unfinished

INSTALL_HINT = "--executor ray needs Ray: pip install 'eigenharness[ray]'"


class LocalExecutor:
    """Every job in this process, one after the other: what `harness bench` always did."""

    description = "this process, one cell after the other (the default)"

    def __init__(self, options: ExecutorOptions) -> None:
        self.options = options
        self.workers = 1
        self.runner = None

    def setup(self, config, n_jobs: int) -> None:
        self.runner = CellRunner(config)

    def launch(self, jobs: list[Job]) -> Iterator:
        for job in jobs:
            yield from self.runner.run(job)

    def close(self) -> None:
        self.runner = None


def _extra_plugins() -> list[tuple[str, object]]:
    """Plugins registered in this process by hand (not from an entry point), for the workers."""
    loaded = {ep.name for ep in importlib.metadata.entry_points(group=plugins.GROUP)}
    loaded |= set(plugins.builtin_modules())
    return [(name, plugin) for name, plugin in plugins.registry().pm.list_name_plugin() if name not in loaded]


class _Worker:
    """The body of a Ray actor: one CellRunner, built by `start` so its errors come back as text."""

    def __init__(self, extra_plugins: list[tuple[str, object]], cpus: float) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        torch.set_num_threads(max(1, int(cpus)))
        if extra_plugins:
            pm, versions = plugins.make_plugin_manager()
            for name, plugin in extra_plugins:
                if not pm.has_plugin(name):
                    pm.register(plugin, name=name)
            plugins._registry = plugins.collect(pm, versions)
        self.runner = None

    def start(self, config) -> str | None:
        if not os.environ.get("EIGENHARNESS_DEBUG"):
            _quiet()
        try:
            self.runner = CellRunner(config)
        except HarnessError as exc:
            return str(exc)
        except Exception as exc:  # e.g. the model path does not exist on this node
            return f"{type(exc).__name__}: {exc}".splitlines()[0]
        return None

    def run(self, job: Job):
        yield from self.runner.run(job)


class RayExecutor:
    """Workers are Ray actors, one per `--gpus-per-worker` GPUs (or `--cpus-per-worker` CPUs)."""

    description = ("a Ray cluster (--address, else RAY_ADDRESS, else a local one on this "
                   "machine's cores): one model per worker, units of cells, driver-owned retries")

    def __init__(self, options: ExecutorOptions) -> None:
        try:
            import ray  # deferred: Ray is an optional extra, needed only by this executor
        except ImportError:
            raise HarnessError(INSTALL_HINT) from None
        self.ray = ray
        self.options = options
        self.workers = 0
        self.actors: list = []
        self.started_ray = False
        self.config = None

    def _init(self) -> None:
        ray = self.ray
        if ray.is_initialized():  # a notebook or a test started it: use that cluster
            return
        address = self.options.address or os.environ.get("RAY_ADDRESS")
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
            else:
                ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except Exception as exc:
            raise HarnessError(f"cannot start or reach Ray at {address or 'a local cluster'}: "
                               f"{exc}".splitlines()[0]) from exc
        self.started_ray = True

    def _resources(self, device: str) -> tuple[float, float, int]:
        """(cpus, gpus) per worker and how many workers the cluster holds."""
        total = self.ray.cluster_resources()
        cpus = self.options.cpus_per_worker
        gpus = self.options.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if total.get("GPU", 0) >= 1 and device != "cpu" else 0.0
        if cpus <= 0 or gpus < 0:
            raise HarnessError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
        fits = int(total.get("CPU", 0) // cpus)
        if gpus > 0:
            fits = min(fits, int(total.get("GPU", 0) // gpus))
        if fits < 1:
            raise HarnessError(
                f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs: "
                f"not enough for one worker of {cpus:g} CPUs and {gpus:g} GPUs; lower "
                "--cpus-per-worker or --gpus-per-worker")
        return cpus, gpus, fits

    def _actor(self):
        return self.worker_class.remote(self.extra, self.cpus)

    def setup(self, config, n_jobs: int) -> None:
        self._init()
        self.config = config
        self.cpus, self.gpus, fits = self._resources(config.device)
        limit = self.options.max_workers
        if limit is not None and limit < 1:
            raise HarnessError("--max-workers must be >= 1")
        self.workers = max(1, min(fits, limit or fits, n_jobs))
        self.extra = _extra_plugins()
        # max_restarts=0: a dead worker is replaced by the driver, which knows what it had done
        self.worker_class = self.ray.remote(_Worker).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0)
        self.actors = [self._actor() for _ in range(self.workers)]
        errors = self.ray.get([a.start.remote(config) for a in self.actors])
        failed = next((e for e in errors if e), None)
        if failed:
            raise HarnessError(f"a Ray worker could not start: {failed}")

    def _replace(self, index: int):
        """A fresh actor in place of a dead one; returns the ref of its start (a model load),
        which the driver waits on alongside the running units instead of blocking on it."""
        try:
            self.ray.kill(self.actors[index])
        except Exception:
            pass
        self.actors[index] = self._actor()
        return self.actors[index].start.remote(self.config)

    def launch(self, jobs: list[Job]) -> Iterator:
        """Stream events in completion order, one job per worker at a time."""
        ray = self.ray
        from ray.exceptions import RayError, RayTaskError

        queue = list(jobs)
        idle = list(range(len(self.actors)))
        running: dict = {}  # generator -> (worker index, job, keys of cells that came back)
        starting: dict = {}  # ref of a replacement actor's start -> worker index
        while queue or running:
            while queue and idle:
                index, job = idle.pop(0), queue.pop(0)
                running[self.actors[index].run.options(num_returns="streaming").remote(job)] = (
                    index, job, set())
            if not running:  # only replacements starting: wait for one
                ready, _ = ray.wait(list(starting), num_returns=1)
            else:
                ready, _ = ray.wait([*running, *starting], num_returns=1)
            if ready[0] in starting:
                index = starting.pop(ready[0])
                error = ray.get(ready[0])
                if error:
                    raise HarnessError(f"a Ray worker could not restart: {error}")
                idle.append(index)
                continue
            gen = ready[0]
            index, job, finished = running[gen]
            try:
                ref = next(gen)
            except StopIteration:
                del running[gen]
                idle.append(index)
                continue
            try:
                event = ray.get(ref)
            except RayTaskError:  # our code raised outside a cell's own handling: a bug, not a death
                raise
            except RayError as exc:  # the worker died (killed, node lost, out of host memory)
                del running[gen]
                retry = unfinished(job, finished) if job.attempt < self.options.max_retries else None
                reason = f"{type(exc).__name__}".strip()
                yield WorkerLost(job, reason, retry)
                if retry is not None:
                    queue.insert(0, retry)
                else:
                    yield from self._give_up(job, finished, job.attempt + 1)
                starting[self._replace(index)] = index
                continue
            if isinstance(event, CellDone | JobFailed) and event.cell is not None:
                finished.add(event.cell.key)
            yield event

    @staticmethod
    def _give_up(job: Job, finished: set[str], attempts: int) -> Iterator[JobFailed]:
        message = f"its worker died {attempts} time(s); raise --max-retries or lower memory use"
        if isinstance(job, BaselineJob):
            yield JobFailed(job.task, None, message)
            return
        for cell in job.cells:
            if cell.key not in finished:
                yield JobFailed(cell.task, cell, message)

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        self.actors = []
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False


@hookimpl
def register_executors(register):
    register("local", LocalExecutor)
    register("ray", RayExecutor)

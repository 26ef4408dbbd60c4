"""The built-in executors: `local` (this process, the default) and `ray` (a Ray cluster).

Both run the same `harness.runner.CellRunner`; they differ only in where it lives and how
many there are. Ray is imported when the `ray` executor starts, never before, so `harness`
starts as fast without it.

Ray facts this relies on: a model survives between calls only inside an *actor* (GPU tasks
exit after each call), so each worker is an actor that loads the model once; a unit is an
actor *generator* method, so each finished cell streams back before the unit ends; the driver
owns retries (Ray's own would rerun whole units and send rows twice): when a worker dies, a
fresh actor replaces it and only the cells that did not come back are resubmitted. A worker
that dies while it starts (in its constructor, loading the model) is replaced the same way.
Reaching the cluster, and keeping Ray's own lines off stdout: plugins/ray_cluster.py.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
from collections.abc import Iterator

import torch

from harness import hookimpl, plugins
from harness.cli import _quiet
from harness.errors import HarnessError, RunFailed, warn
from harness.runner import CellRunner
from harness.work import (
    BaselineJob,
    CellDone,
    ExecutorOptions,
    Job,
    JobFailed,
    Progress,
    WorkerLost,
    unfinished,
)

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
        from harness.progress import streamed

        yield from streamed(self.runner.run(job))  # with Progress events while a cell computes


def _death(exc: BaseException) -> str:
    """A dead worker in a few words: the error's type, and Ray's cause where it gives one."""
    text = str(exc)
    for marker in ("Worker exit detail: ", "The actor is dead because "):
        if marker in text:
            detail = text.split(marker, 1)[1].strip().splitlines()[0].rstrip(".")
            return f"{type(exc).__name__}: {detail[:160]}"
    return type(exc).__name__


class RayExecutor:
    """Workers are Ray actors, one per `--gpus-per-worker` GPUs (or `--cpus-per-worker` CPUs).

    Each worker slot holds one actor at a time. An actor that dies, whether running a unit
    or still starting (building its CellRunner: the model load), is replaced in its slot; a
    slot whose actors died `--max-retries` + 1 times in a row while starting is given up and
    the sweep goes on with the others. Only when no slot is left does the sweep stop
    (`RunFailed`: one line, exit 1). A worker that cannot start for a reason of its own (a
    model path missing on that node) is not retried: before any worker has started that is a
    bad input (exit 2), later that slot is given up.
    """

    description = ("a Ray cluster (--address, else RAY_ADDRESS, else the one `ray start` left on "
                   "this machine, else a local one on this machine's cores): one model per "
                   "worker, units of cells, driver-owned retries")

    def __init__(self, options: ExecutorOptions) -> None:
        try:
            import ray  # deferred: Ray is an optional extra, needed only by this executor
        except ImportError:
            raise HarnessError(INSTALL_HINT) from None
        if options.max_workers is not None and options.max_workers < 1:
            raise HarnessError("--max-workers must be >= 1")
        if options.cpus_per_worker <= 0 or (options.gpus_per_worker or 0) < 0:
            raise HarnessError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
        self.ray = ray
        self.options = options
        self.address = None if ray.is_initialized() else self._address()
        self.workers = 0
        self.actors: list = []
        self.started_ray = False
        self.config = None
        self.starting: dict = {}  # ref of an actor's start -> its slot
        self.start_deaths: dict[int, int] = {}  # slot -> deaths while starting, in a row
        self.ever_started = False
        self.last_start_failure = ""

    def _address(self) -> str | None:
        """The address to join, checked now (before the sweep's bar): None starts a local Ray."""
        from eigenharness_plugins import ray_cluster

        address = self.options.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray_cluster.check_address(address)
            return address
        joined = ray_cluster.local_cluster()
        if joined:
            try:
                ray_cluster.check_address(joined)
            except HarnessError:
                raise HarnessError(f"the Ray cluster last started on this machine (`ray start`, at "
                                   f"{joined}) does not answer; `ray stop` it, or pass --address "
                                   "local for a private one") from None
            warn(f"joining the Ray cluster already running on this machine at {joined} (the "
                 "last `ray start`); --address local starts a private one instead")
        return None

    def _init(self) -> None:
        from eigenharness_plugins import ray_cluster

        ray = self.ray
        ray_cluster.route_messages()
        if ray.is_initialized():  # a notebook or a test started it: use that cluster
            return
        address = self.address
        try:
            kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            with ray_cluster.quiet_native_stderr() as why:
                ray.init(address=address, **kwargs)  # None: the `ray start` one, else a new one
        except Exception as exc:
            detail = f" ({why[0]})" if why else ""
            raise HarnessError(f"cannot start or reach Ray at {address or 'a local cluster'}: "
                               f"{str(exc).splitlines()[0]}{detail}") from exc
        self.started_ray = True

    def _resources(self, device: str) -> tuple[float, float, int]:
        """(cpus, gpus) per worker and how many workers the cluster holds."""
        total = self.ray.cluster_resources()
        cpus = self.options.cpus_per_worker
        gpus = self.options.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if total.get("GPU", 0) >= 1 and device != "cpu" else 0.0
        fits = int(total.get("CPU", 0) // cpus)
        if gpus > 0:
            fits = min(fits, int(total.get("GPU", 0) // gpus))
        if fits < 1:
            raise HarnessError(
                f"the Ray cluster has {total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs: "
                f"not enough for one worker of {cpus:g} CPUs and {gpus:g} GPUs; lower "
                "--cpus-per-worker or --gpus-per-worker")
        return cpus, gpus, fits

    def _start(self, index: int) -> None:
        """A fresh actor in slot `index` (killing any old one); its start (a model load) is
        waited on alongside the running units, never blocked on."""
        if index < len(self.actors):
            try:
                self.ray.kill(self.actors[index])
            except Exception:
                pass
            self.actors[index] = self.worker_class.remote(self.extra, self.cpus)
        else:
            self.actors.append(self.worker_class.remote(self.extra, self.cpus))
        self.starting[self.actors[index].start.remote(self.config)] = index

    def setup(self, config, n_jobs: int) -> None:
        self._init()
        self.config = config
        self.cpus, self.gpus, fits = self._resources(config.device)
        limit = self.options.max_workers
        self.workers = max(1, min(fits, limit or fits, n_jobs))
        self.extra = _extra_plugins()
        # max_restarts=0: a dead worker is replaced by the driver, which knows what it had done
        self.worker_class = self.ray.remote(_Worker).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0)
        for index in range(self.workers):
            self._start(index)

    def _started(self, ref, index: int) -> Iterator[WorkerLost]:
        """A start came back: the slot is ready (True), or what became of it is yielded."""
        from ray.exceptions import RayError, RayTaskError

        try:
            error = self.ray.get(ref)
        except RayTaskError:  # our code raised outside start's own handling: a bug, not a death
            raise
        except RayError as exc:  # it died while starting (killed, out of host memory, node lost)
            deaths = self.start_deaths[index] = self.start_deaths.get(index, 0) + 1
            if deaths <= self.options.max_retries:
                self._start(index)
                yield WorkerLost(None, f"{_death(exc)}; starting another in its place "
                                 f"(retry {deaths} of {self.options.max_retries})", None)
            else:
                self._retire(index, f"{_death(exc)}, {deaths} time(s) in a row")
                yield WorkerLost(None, f"{_death(exc)}; no retry left for it (--max-retries "
                                 f"{self.options.max_retries}), going on without it", None)
            return False
        if error:
            if not self.ever_started:
                raise HarnessError(f"a Ray worker could not start: {error}")
            self._retire(index, error)
            yield WorkerLost(None, f"could not start: {error}; going on without it", None)
            return False
        self.start_deaths[index] = 0
        self.ever_started = True
        return True

    def _retire(self, index: int, why: str) -> None:
        self.last_start_failure = why
        try:
            self.ray.kill(self.actors[index])
        except Exception:
            pass

    def launch(self, jobs: list[Job]) -> Iterator:
        """Stream events in completion order, one job per worker at a time."""
        ray = self.ray
        from ray.exceptions import RayError, RayTaskError

        queue = list(jobs)
        idle: list[int] = []
        running: dict = {}  # generator -> (worker index, job, keys of cells that came back)
        while queue or running:
            while queue and idle:
                index, job = idle.pop(0), queue.pop(0)
                running[self.actors[index].run.options(num_returns="streaming").remote(job)] = (
                    index, job, set())
            if not running and not self.starting:  # every slot given up
                raise RunFailed(
                    f"no Ray worker could start ({self.last_start_failure}); {len(queue)} job(s) "
                    "not run, finished rows are saved: raise --max-retries, lower memory use "
                    "(--max-workers) or check the workers' logs (`ray logs`)")
            ready, _ = ray.wait([*running, *self.starting], num_returns=1)
            if ready[0] in self.starting:
                index = self.starting.pop(ready[0])
                if (yield from self._started(ready[0], index)):
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
                yield WorkerLost(job, _death(exc), retry)
                if retry is not None:
                    queue.insert(0, retry)
                else:
                    yield from self._give_up(job, finished, job.attempt + 1)
                self._start(index)
                continue
            if isinstance(event, CellDone | JobFailed) and event.cell is not None:
                finished.add(event.cell.key)
            if isinstance(event, Progress) and self.workers > 1:
                event = dataclasses.replace(event, worker=index + 1)
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
        self.starting = {}
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False


@hookimpl
def register_executors(register):
    register("local", LocalExecutor)
    register("ray", RayExecutor)

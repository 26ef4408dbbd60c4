"""What a worker is doing now, from deep inside a cell to the driver's progress bar.

A bar that counts cells says nothing during a cell that takes half an hour (eigen-verified
measuring 1,728 candidates on a CPU). Code that knows what it is doing opens a `stage`
("scoring", "evaluating test") or reports a count (`stage("measuring candidates", k, n)`);
stages nest, and the bar shows the open ones joined: `int_mult eigen-verified f=0.1 seed=0 ›
measuring candidates 128/864`.

A long step reports a count with an estimate of the time left (`Counter`), and a strategy
whose cost `--limit` does not bound says what it will cost before it starts (`announce`: a
line above the bar, "eigen-verified: measuring 1,728 candidates on 16 examples each ...").

Where the text goes depends on where the code runs. In the driver's own process (the local
executor) a listener the driver registers gets each `harness.work.Progress` at once. In a Ray
worker, `streamed` runs the job in a thread and interleaves the Progress events with the
job's events (stage texts at most every half second, announcements all), so the driver
handles them like any other event. Anywhere else (a test, a notebook calling a strategy) a
stage costs nothing and shows nothing.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

from harness.work import Event, Progress

SEPARATOR = " › "
_local = threading.local()  # this thread's open stages and, in a Ray job thread, its sink
_listener: Callable[[Progress], None] | None = None  # the driver's, in its own process


def listen(handle: Callable[[Progress], None] | None) -> None:
    """Hand every Progress of this process to `handle` (None: to nobody)."""
    global _listener
    _listener = handle


def _emit(event: Progress) -> None:
    sink = getattr(_local, "sink", None) or _listener
    if sink is not None:
        sink(event)


def _stages() -> list[str]:
    if not hasattr(_local, "stages"):
        _local.stages = []
    return _local.stages


def _publish(left: float | None = None) -> None:
    text = SEPARATOR.join(_stages())
    if text:
        _emit(Progress(text, left=left))


def announce(text: str) -> None:
    """A line above the bar, kept: what a step will cost, said before it starts."""
    _emit(Progress(text, line=True))


def say(text: str) -> None:
    """A line for the user from code that may run inside a sweep or outside one (a model
    conversion): above the sweep's bar, never on its line; on stderr when there is none."""
    if getattr(_local, "sink", None) or _listener:
        announce(text)
    else:
        tqdm.write(text, file=sys.stderr)  # above any other bar


def duration(seconds: float) -> str:
    """`42 s`, `7 min`, `2.5 h`: an estimate, so no false precision."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class Counter:
    """A count shown as a stage, with the time left estimated from the pace so far:
    `measuring candidates 128/864, about 4 min left`."""

    def __init__(self, text: str, total: int) -> None:
        self.text, self.total, self.start = text, total, time.perf_counter()
        self.update(0)

    def update(self, done: int) -> None:
        seconds = None
        if 0 < done < self.total:
            seconds = (time.perf_counter() - self.start) / done * (self.total - done)
        left = f", about {duration(seconds)} left" if seconds is not None else ""
        stages = _stages()
        stages.append(f"{self.text} {done:,}/{self.total:,}{left}")
        try:
            _publish(seconds)  # the bar's time left is at least this
        finally:
            stages.pop()


@contextmanager
def stage(text: str) -> Iterator[None]:
    """Say what runs inside the block: "loading the model", "searching k@0.05 (8/25)"."""
    stages = _stages()
    stages.append(text)
    _publish()
    try:
        yield
    finally:
        stages.pop()


def streamed(events: Iterator[Event], interval: float = 0.5) -> Iterator[Event]:
    """`events` with `Progress` events among them: what the job's stages said, the latest at
    most every `interval` seconds (a Ray worker's events cross the network one by one).

    The job runs in a thread of its own so its stages can be sent while it computes; this
    generator only waits and forwards. An exception in the job is raised here.
    """
    out: queue.SimpleQueue = queue.SimpleQueue()
    latest: list[Progress] = []  # the job thread's last stage, read by this one
    done = object()

    def sink(event: Progress) -> None:
        if event.line:
            out.put(event)
        else:
            latest.append(event)

    def body() -> None:
        _local.sink = sink
        try:
            for event in events:
                out.put(event)
        except BaseException as exc:  # handed over and raised in the caller's thread
            out.put(exc)
        else:
            out.put(done)
        finally:
            _local.sink = None

    threading.Thread(target=body, name="harness-job", daemon=True).start()
    sent = None
    while True:
        try:
            item = out.get(timeout=interval)
        except queue.Empty:
            item = None
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            yield item
        if latest and latest[-1] != sent:
            sent = latest[-1]
            del latest[:-1]
            yield sent


class CostBar(tqdm):
    """The sweep's bar: it counts cells, but its time left comes from the cells' estimated
    costs (`plan`), not from their number. The first cell of `make bench` is the unpruned
    model on int_sum (3,600 examples), the last ones int_mult's (160): a count-based ETA made
    from the first said 2:44:56 for a sweep that took under an hour. Here the time left is
    the seconds per unit of cost so far times the cost left; until a job is done, it is "?"."""

    def plan(self, costs: dict[str, float]) -> None:
        """Each job's estimated cost by key (a cell's config hash, `baseline:<task>`); the
        clock starts now (the workers are up)."""
        self.costs, self.spent, self.clock = dict(costs), 0.0, time.perf_counter()
        self.counted_left = None

    def counting(self, seconds_left: float | None) -> None:
        """A count inside a running cell expects `seconds_left` more (None: no count runs):
        the sweep has at least that left, whatever the costs say (a search or measurement a
        strategy runs is not in its cell's estimated cost)."""
        self.counted_left = seconds_left

    def spend(self, *keys: str) -> None:
        """These jobs are done (or failed): their cost is behind us."""
        costs = getattr(self, "costs", {})
        self.spent += sum(costs.pop(k, 0.0) for k in keys)

    @property
    def format_dict(self):
        d = super().format_dict
        left = sum(getattr(self, "costs", {}).values())
        counted, spent = getattr(self, "counted_left", None), getattr(self, "spent", 0.0)
        if (spent > 0 or counted) and d["total"]:
            seconds_left = (time.perf_counter() - self.clock) * left / spent if spent else 0.0
            seconds_left = max(seconds_left, counted or 0.0)
            d["rate"] = (d["total"] - d["n"]) / seconds_left if seconds_left > 0 else None
        elif d["total"] and d["n"] < d["total"]:
            d["rate"] = 0  # nothing done yet: "?" rather than a guess from setup time
        return d

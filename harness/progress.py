"""What a worker is doing now, from deep inside a cell to the driver's progress bar.

A bar that counts cells says nothing during a cell that takes half an hour (eigen-verified
measuring 1,728 candidates on a CPU). Code that knows what it is doing opens a `stage`
("scoring", "evaluating test") or reports a count (`stage("measuring candidates", k, n)`);
stages nest, and the bar shows the open ones joined: `int_mult eigen-verified f=0.1 seed=0 ›
measuring candidates 128/864`.

Where the text goes depends on where the code runs. In the driver's own process (the local
executor) a listener the driver registers shows it at once. In a Ray worker, `streamed` runs
the job in a thread and interleaves `harness.work.Progress` events with the job's events, at
most a few a second, so the driver shows them like any other event. Anywhere else (a test, a
notebook calling a strategy) a stage costs nothing and shows nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from harness.work import Event, Progress

SEPARATOR = " › "
_local = threading.local()  # this thread's open stages and, in a Ray job thread, its sink
_listener: Callable[[str], None] | None = None  # the driver's, in its own process


def listen(show: Callable[[str], None] | None) -> None:
    """Show every stage opened in this process with `show(text)` (None: stop showing)."""
    global _listener
    _listener = show


def _stages() -> list[str]:
    if not hasattr(_local, "stages"):
        _local.stages = []
    return _local.stages


def _publish() -> None:
    text = SEPARATOR.join(_stages())
    sink = getattr(_local, "sink", None) or _listener
    if sink is not None and text:
        sink(text)


@contextmanager
def stage(text: str, done: int | None = None, total: int | None = None) -> Iterator[None]:
    """Say what runs inside the block ("loading the model"; with counts, "searching 3/37")."""
    stages = _stages()
    stages.append(f"{text} {done}/{total}" if total is not None else text)
    _publish()
    try:
        yield
    finally:
        stages.pop()


def count(text: str, done: int, total: int) -> None:
    """Update a running count without opening a block: "measuring candidates 128/864"."""
    with stage(text, done, total):
        pass


def streamed(events: Iterator[Event], interval: float = 0.5) -> Iterator[Event]:
    """`events` with `Progress` events among them: what the job's stages said, the latest at
    most every `interval` seconds (a Ray worker's events cross the network one by one).

    The job runs in a thread of its own so its stages can be sent while it computes; this
    generator only waits and forwards. An exception in the job is raised here.
    """
    out: queue.SimpleQueue = queue.SimpleQueue()
    latest: list[str] = []  # the job thread's last stage text, read by this one
    done = object()

    def body() -> None:
        _local.sink = latest.append
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
        if latest and latest[-1] != sent:
            sent = latest[-1]
            del latest[:-1]
            yield Progress(sent)
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        if item is not None:
            yield item

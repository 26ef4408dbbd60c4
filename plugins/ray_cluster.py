"""Reaching a Ray cluster quickly, or failing in one line, and keeping Ray's own lines off stdout.

Given an address nothing answers at, `ray.init` retries for many minutes (831 s for
`--address 127.0.0.1:1`), printing a "Failed to connect to GCS ... within 5 seconds" warning
every few seconds. So the address is checked first, in at most twice `TIMEOUT`: a TCP
connection (refused, unknown host and unroutable fail here), then the HTTP/2 greeting every
gRPC server, Ray's GCS included, answers at once with its SETTINGS frame (a port where
something else listens answers otherwise or not at all). A Ray client in a child process
would say more but cost a Python start and Ray's own retry windows, 8 to 20 s on a busy
machine, past the 15 s a bad input may take. The driver's own `ray.init` keeps Ray's default
windows, so a slow GCS during a long sweep is not mistaken for a dead one.

Without `--address` (and without RAY_ADDRESS), `ray.init()` joins a cluster already running
on this machine (the last `ray start`) instead of starting one: `local_cluster` finds it so
the harness can say so; `--address local` starts a private one all the same.

While `ray.init` connects, Ray's C++ core logs each failed attempt straight to file
descriptor 2 (on a cluster that wants an auth token: "Failed to get cluster ID ...
InvalidAuthToken" once a second for 20 s). `quiet_native_stderr` holds those lines back and
gives the most telling one to the error, so a failure is one line.

When a worker dies, Ray's driver prints the raylet's report ("A worker died or was killed ...
the OOM killer") on stdout, whatever `log_to_driver` says, above the results table and with a
guess at the cause. `route_messages` drops those (the executor reports each death itself, in
one line on stderr) and sends any other raylet message to stderr as one warning line.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import HarnessError, warn

TIMEOUT = 3.0
START_HINT = "start one with `ray start --head --port=6379`, or omit --address for a local Ray"
# An HTTP/2 client's preface and an empty SETTINGS frame: a gRPC server replies with SETTINGS
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS = 0x4
DEATH_WORDS = ("worker died", "was killed", "died unexpectedly", "worker crashed", "exited unexpectedly")


def host_port(address: str) -> tuple[str, int]:
    """("10.0.0.1", 6379) from "10.0.0.1:6379" or "ray://10.0.0.1:10001"; one line when malformed."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HarnessError(f"--address '{address}' is not HOST:PORT (e.g. 10.0.0.1:6379), auto or local")
    return host.strip("[]"), int(port)


def check_address(address: str) -> None:
    """Raise `HarnessError`, within 2 x `TIMEOUT` seconds, when no Ray cluster answers at `address`."""
    if address in ("auto", "local"):  # Ray's own words: find one (fails at once) / start one
        return
    host, port = host_port(address)
    try:
        conn = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise HarnessError(f"cannot reach a Ray cluster at {address} ({why}); {START_HINT}") from None
    with conn:  # (Ray Client's server, ray://, speaks gRPC too)
        try:
            conn.sendall(PREFACE)
            frame = conn.recv(9)  # length (3 bytes), type, flags, stream id
        except OSError:
            frame = b""
    if len(frame) < 4 or frame[3] != SETTINGS:
        raise HarnessError(f"no Ray cluster answers at {address} (the port is open, but it does not "
                           "speak gRPC as a Ray GCS does); give the address `ray start --head` printed")


def local_cluster() -> str | None:
    """The address of the Ray cluster `ray.init()` would join on this machine, if any."""
    try:
        from ray._private import services

        return services.canonicalize_bootstrap_address(None, None)
    except Exception:  # Ray moved it, or found several: ray.init decides as before
        return None


def route_messages() -> None:
    """Keep the raylet's messages off stdout: deaths dropped (the executor reports them), the
    rest as one warning line on stderr. A Ray without this hook is left as it is."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "harness_routed", False):
        return

    def routed(data, ignore_prefix):
        if data.get("pid") != "raylet":
            return original(data, ignore_prefix)
        text = " ".join(str(line) for line in data.get("lines", [])).strip()
        if text and not any(word in text.lower() for word in DEATH_WORDS):
            warn(f"ray: {text.splitlines()[0]}")

    routed.harness_routed = True
    ray_worker.print_to_stdstream = routed


@contextmanager
def quiet_native_stderr() -> Iterator[list[str]]:
    """File descriptor 2 goes to a temporary file inside the block; the list it yields holds,
    after the block, the last line that names an error (empty if none)."""
    sys.stderr.flush()
    saved = os.dup(2)
    found: list[str] = []
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield found
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines()
            telling = [x for x in lines if any(w in x for w in ("Error", "error", "Failed", "failed"))]
            if telling:
                found.append(telling[-1].split("] ", 1)[-1].split(": ", 1)[-1].strip()[:200])

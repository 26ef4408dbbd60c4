"""Reaching a Ray cluster quickly, or failing in one line, and keeping Ray's own lines off stdout.

Given an address nothing answers at, `ray.init` retries for many minutes (831 s for
`--address 127.0.0.1:1`), printing a "Failed to connect to GCS ... within 5 seconds" warning
every few seconds. So the address is checked first: a TCP connection with a short timeout
(refused, unknown host and unroutable fail here in at most `CONNECT_SECONDS`), then, where
something listens, a Ray client in a child process with Ray's own retry windows shortened and
its output discarded, killed after `PROBE_SECONDS` (a port that answers but is not a Ray
cluster's GCS). A real cluster passes both in a second or two; the driver's own `ray.init`
keeps Ray's default windows, so a slow GCS during a long sweep is not mistaken for a dead one.

Without `--address` (and without RAY_ADDRESS), `ray.init()` joins a cluster already running
on this machine (the last `ray start`) instead of starting one: `local_cluster` finds it so
the harness can say so; `--address local` starts a private one all the same.

When a worker dies, Ray's driver prints the raylet's report ("A worker died or was killed ...
the OOM killer") on stdout, whatever `log_to_driver` says, above the results table and with a
guess at the cause. `route_messages` drops those (the executor reports each death itself, in
one line on stderr) and sends any other raylet message to stderr as one warning line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from harness.errors import HarnessError, warn

CONNECT_SECONDS = 3.0
PROBE_SECONDS = 20.0
START_HINT = "start one with `ray start --head --port=6379`, or omit --address for a local Ray"
# A GCS client that gives up after a few seconds instead of a minute; exit 3: no such API here
PROBE = """
import sys
try:
    from ray._raylet import GcsClient
except Exception:
    sys.exit(3)
GcsClient(address=sys.argv[1])
"""
PROBE_ENV = {"RAY_gcs_rpc_server_connect_timeout_s": "3", "RAY_gcs_rpc_server_reconnect_timeout_s": "5"}
DEATH_WORDS = ("worker died", "was killed", "died unexpectedly", "worker crashed", "exited unexpectedly")


def host_port(address: str) -> tuple[str, int]:
    """("10.0.0.1", 6379) from "10.0.0.1:6379" or "ray://10.0.0.1:10001"; one line when malformed."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HarnessError(f"--address '{address}' is not HOST:PORT (e.g. 10.0.0.1:6379), auto or local")
    return host.strip("[]"), int(port)


def check_address(address: str) -> None:
    """Raise `HarnessError` within about 25 s when no Ray cluster answers at `address`."""
    if address in ("auto", "local"):  # Ray's own words: find one (fails at once) / start one
        return
    host, port = host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
        raise HarnessError(f"cannot reach a Ray cluster at {address} ({why}); {START_HINT}") from None
    if address.startswith("ray://"):  # Ray Client: its server is not a GCS, the port answered
        return
    try:
        probe = subprocess.run([sys.executable, "-c", PROBE, f"{host}:{port}"], timeout=PROBE_SECONDS,
                               env={**os.environ, **PROBE_ENV}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        ok = False
    else:
        ok = probe.returncode in (0, 3)
    if not ok:
        raise HarnessError(f"no Ray cluster answers at {address} (the port is open, but no Ray GCS "
                           f"replied within {PROBE_SECONDS:g} s); give the address `ray start --head` "
                           "printed")


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

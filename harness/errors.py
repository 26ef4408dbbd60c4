"""One exception type for every bad input, so the CLI can print one line and exit 2."""

from __future__ import annotations

import sys
from collections.abc import Iterable


class HarnessError(Exception):
    """A problem the user can fix: the message is one line naming it and the valid choices."""

    exit_code = 2  # a usage error, like click's own


class RunFailed(HarnessError):
    """The run could not go on although the input was fine (no worker could start): one line,
    exit 1 like a sweep whose cells failed, not 2 (nothing in the command is wrong)."""

    exit_code = 1


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> HarnessError:
    """The error for a name that is not among `choices`: `unknown strategy 'x'; choose from: a, b`."""
    listed = ", ".join(sorted(choices)) or "(none registered)"
    message = f"unknown {kind} '{name}'; choose from: {listed}"
    return HarnessError(f"{message}{'; ' + hint if hint else ''}")


def warn(message: str) -> None:
    """One `warning: ...` line on stderr, printed above any progress bar rather than into it."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(f"warning: {message}", file=sys.stderr, flush=True)
        return
    tqdm.write(f"warning: {message}", file=sys.stderr)

"""Run probes concurrently and return at a global deadline, whatever they are doing.

Each probe runs in its own daemon thread. :func:`run_all` waits until every probe
has finished or the deadline has passed, then returns: a probe still running is
reported as timed out and its thread is abandoned (never joined), so a hung peer
costs one deadline, not a stuck terminal. Probes receive the deadline so their own
timeouts end them soon after; an abandoned daemon thread never delays exit.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from prontuario_cli.errors import ProntuarioError

Probe = Callable[[float], Any]  # called with the absolute deadline (time.monotonic())


@dataclass(frozen=True)
class Outcome:
    """What one probe gave: a value, an expected error, a bug, or nothing in time."""

    name: str
    value: Any = None
    error: ProntuarioError | None = None
    bug: str | None = None  # "TypeError: ..." when the probe itself failed unexpectedly
    traceback: str | None = None
    timed_out: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.bug is None and not self.timed_out


def remaining(deadline: float, floor: float = 0.05) -> float:
    """Seconds left until ``deadline`` (at least ``floor``, so a timeout is never 0)."""
    return max(floor, deadline - time.monotonic())


def run_all(probes: Mapping[str, Probe], deadline: float) -> dict[str, Outcome]:
    """Run every probe concurrently; return their outcomes by the deadline at the latest."""
    started = time.monotonic()
    results: dict[str, Outcome] = {}
    lock = threading.Lock()
    all_done = threading.Event()
    pending = set(probes)
    if not pending:
        return {}

    def runner(name: str, probe: Probe) -> None:
        t0 = time.monotonic()
        try:
            outcome = Outcome(name, value=probe(deadline), elapsed_s=time.monotonic() - t0)
        except ProntuarioError as exc:
            outcome = Outcome(name, error=exc, elapsed_s=time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - a bug in one probe must not sink the others
            outcome = Outcome(
                name,
                bug=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
                elapsed_s=time.monotonic() - t0,
            )
        with lock:
            if name in pending:  # not yet given up on
                results[name] = outcome
                pending.discard(name)
                if not pending:
                    all_done.set()

    for name, probe in probes.items():
        threading.Thread(target=runner, args=(name, probe), name=f"probe:{name}", daemon=True).start()

    all_done.wait(max(0.0, deadline - time.monotonic()))
    with lock:
        for name in list(pending):
            results[name] = Outcome(name, timed_out=True, elapsed_s=time.monotonic() - started)
        pending.clear()
    return {name: results[name] for name in probes}

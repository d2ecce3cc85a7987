"""The one bounded wait: poll a condition until it holds or a deadline passes.

Every "wait until X" in prontuario goes through :func:`wait_for`, so each wait has a
timeout, names what it waited for, and reports what it saw last.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from prontuario_cli.errors import OperationFailed, ProntuarioError

T = TypeVar("T")
Progress = Callable[[dict[str, Any]], None]


def wait_for(
    what: str,
    condition: Callable[[], T],
    timeout_s: float,
    *,
    interval_s: float = 0.2,
    last_state: Callable[[], str] | None = None,
    on_timeout: Callable[[str], ProntuarioError] | None = None,
) -> tuple[T, float]:
    """Call ``condition`` until it returns something truthy, within ``timeout_s``.

    Returns (the value, seconds waited). A ProntuarioError raised by the condition
    counts as "not yet" and is remembered. When time runs out, raises
    ``on_timeout(last)`` — by default OperationFailed "WHAT: not within N s (last: ...)"
    — where ``last`` is ``last_state()`` if given, else the last error seen.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    last_error = ""
    while True:
        try:
            value = condition()
            if value:
                return value, round(time.monotonic() - started, 3)
        except ProntuarioError as exc:
            last_error = exc.one_line()
        if time.monotonic() >= deadline:
            last = last_state() if last_state is not None else last_error
            if on_timeout is not None:
                raise on_timeout(last)
            raise OperationFailed(f"{what}: not within {timeout_s:g} s" + (f" (last: {last})" if last else ""))
        time.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))


@contextmanager
def reported(progress: Progress | None, name: str, limit_s: float | None = None) -> Iterator[None]:
    """Report a wait as a progress step: ``step`` when it starts, ``done`` (ok or failed,
    with its seconds) when it ends. A live view shows ``… NAME 12.4 s / 90 s`` meanwhile.
    Without ``progress`` it is only the block."""
    if progress is None:
        yield
        return
    started = time.monotonic()
    progress({"kind": "step", "name": name, "target_s": limit_s})
    status = "failed"
    try:
        yield
        status = "ok"
    finally:
        progress({"kind": "done", "name": name, "status": status, "seconds": round(time.monotonic() - started, 2)})

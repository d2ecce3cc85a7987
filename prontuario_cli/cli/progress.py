"""Live progress of a long command on stderr: drills, runbooks (gcp promote, failback), lab up/down.

The core reports structured events through a ``progress(event: dict)`` callback and
free text through ``say(text)``; :class:`ProgressView` renders both.

On a terminal (the stream is a tty) the running step is one line updated in place with
its elapsed time (against its target when it has one: ``RTO 12.4 s / 30 s``) and the
write probe's counters; notes and the watcher's events are printed above it as they
happen. Without a terminal every line is plain and timestamped (``HH:MM:SS text``), with
no control characters, for cron mails and log files. Either way each step prints once,
when it ends, and :meth:`ProgressView.verdict` prints one (coloured) verdict line last.

Events (plain dicts, so the core needs no import from here):

- ``{"kind": "step", "phase", "name", "target_s"?, "label"?, "since"?}``: a step started
  (``since``: the ``time.monotonic()`` its target counts from, e.g. the fault);
- ``{"kind": "done", "phase", "name", "status", "seconds", "detail"?}``: it ended;
- ``{"kind": "event", "t", "what"}``: the watcher saw a change ``t`` s after the fault;
- ``{"kind": "counters", "acked", "failed", "unknown"}``: the write probe's counts.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, TextIO

CLEAR_LINE = "\r\x1b[2K"
COLOURS = {"passed": "32", "target-missed": "33", "ok": "32"}  # anything else: red
MARKS = {"ok": "✓", "done": "✓", "failed": "✗", "skipped": "-"}
PLAIN_COUNTERS_EVERY_S = 5.0


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressView:
    """Render progress events and notes on ``stream`` (stderr); thread-safe (the watcher
    reports from its own thread). Use as a context manager: the in-place line's refresh
    thread runs inside it."""

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        colour: bool | None = None,
        refresh_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
    ):
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.colour = (self.tty and not os.environ.get("NO_COLOR")) if colour is None else colour
        self.refresh_s = refresh_s
        self.clock = clock
        self.wall = wall
        self._lock = threading.RLock()
        self._step: dict[str, Any] | None = None
        self._counters: dict[str, int] | None = None
        self._counters_said: tuple[float, tuple] | None = None
        self._drawn = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "ProgressView":
        if self.tty and self.refresh_s > 0:
            self._thread = threading.Thread(target=self._refresh, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        with self._lock:
            self._clear()

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_s):
            with self._lock:
                if self._step is not None:
                    self._draw()

    # ------------------------------------------------------------------ the callbacks

    def say(self, text: str) -> None:
        """A note: printed on its own line (above the running step on a terminal)."""
        with self._lock:
            for line in str(text).splitlines() or [""]:
                self._line(line)

    def progress(self, event: dict[str, Any]) -> None:
        """A structured event from the core (see the module docstring)."""
        kind = event.get("kind")
        with self._lock:
            if kind == "step":
                self._step = dict(event, started=self.clock())
                self._draw()
            elif kind == "done":
                self._step = None
                self._line(step_line(event))
            elif kind == "event":
                self._line(f"{event['t']:+.1f} s {event['what']}")
            elif kind == "counters":
                self._counters = {k: int(event.get(k) or 0) for k in ("acked", "failed", "unknown")}
                if self.tty:
                    self._draw()
                else:
                    self._plain_counters()
            elif "text" in event:
                self._line(str(event["text"]))

    def verdict(self, verdict: str, text: str) -> None:
        """The last line: ``PASSED  RTO 27.2 s (< 30)  RPO 0  report: …``, coloured by verdict."""
        with self._lock:
            self._step = None
            line = f"{verdict.upper()}  {text}".rstrip()
            if self.colour:
                line = f"\x1b[1;{COLOURS.get(verdict, '31')}m{line}\x1b[0m"
            self._line(line)

    # ------------------------------------------------------------------ drawing

    def _line(self, text: str) -> None:
        if self.tty:
            self._clear()
            self.stream.write(text + "\n")
            if self._step is not None:
                self._draw()
        else:
            self.stream.write(f"{self.wall()} {_printable(text)}\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write(CLEAR_LINE)
            self._drawn = False
            self.stream.flush()

    def _draw(self) -> None:
        if not self.tty or self._step is None:
            return
        self.stream.write(CLEAR_LINE + running_line(self._step, self.clock(), self._counters, width=_width()))
        self.stream.flush()
        self._drawn = True

    def _plain_counters(self) -> None:
        counts = tuple(self._counters.values())
        now = self.clock()
        last = self._counters_said
        if last is not None and (now - last[0] < PLAIN_COUNTERS_EVERY_S or last[1] == counts):
            return
        self._counters_said = (now, counts)
        self._line(counters_text(self._counters))


def running_line(step: dict[str, Any], now: float, counters: dict[str, int] | None, width: int = 100) -> str:
    """``… [method] wait for … RTO 12.4 s / 30 s  writes 812 ok, 3 failed, 1 unknown`` (one screen line)."""
    since = step.get("since")
    elapsed = now - (since if since is not None else step["started"])
    clock = f"{step.get('label') or ''} {elapsed:.1f} s".strip()
    if step.get("target_s") is not None:
        clock += f" / {step['target_s']:g} s"
    tail = f"  {clock}" + (f"  {counters_text(counters)}" if counters else "")
    head = f"… [{step.get('phase')}] {step.get('name')}" if step.get("phase") else f"… {step.get('name')}"
    room = max(10, width - 1 - len(tail))
    if len(head) > room:
        head = head[: room - 1] + "…"
    return head + tail


def step_line(event: dict[str, Any]) -> str:
    """A finished step, printed once: ``✓ [method] fault: kill (0.4 s) — detail``."""
    status = event.get("status") or "ok"
    mark = MARKS.get(status, "✗")
    where = f"[{event['phase']}] " if event.get("phase") else ""
    seconds = event.get("seconds")
    line = f"{mark} {where}{event.get('name')}" + (f" ({seconds:.1f} s)" if seconds is not None else "")
    if status not in ("ok", "done"):
        line += f": {status}"
    detail = event.get("detail")
    if detail:
        line += f" — {detail}"
    return line


def counters_text(counters: dict[str, int]) -> str:
    return f"writes {counters['acked']} acked, {counters['failed']} failed, {counters['unknown']} unknown"


def _printable(text: str) -> str:
    """Plain mode: no control characters at all (no ANSI, no \\r)."""
    return "".join(ch if ch >= " " or ch == "\t" else " " for ch in text).replace("\x7f", " ")


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def for_env(env) -> ProgressView:
    """The view on the command's stderr."""
    return ProgressView(env.stderr)

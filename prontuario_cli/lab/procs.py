"""Processes by PID: start with ``Popen`` (no shell), record a pidfile, check, signal, stop.

Liveness is read from ``/proc/PID/stat``: a zombie (state Z) or a dead PID is not
alive, and a PID whose command line no longer matches what was started is not
ours. Nothing here finds processes by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from prontuario_cli.errors import OperationFailed


@dataclass(frozen=True)
class Proc:
    """One process the lab runs: how to start it and where its pidfile and log live."""

    name: str
    argv: tuple[str, ...]
    pidfile: Path
    log: Path
    as_postgres: bool = False
    # The process's stop signal: PostgreSQL's fast shutdown is SIGINT (SIGTERM waits for clients).
    stop_signal: int = signal.SIGTERM
    # Strings one of which the live process's command line contains (a path, or the
    # "127.0.0.1:PORT" Redis puts in its process title), so a recycled PID is not ours.
    markers: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 is "(comm)" and may contain spaces or parentheses: split after the last ')'.
    rest = data.rsplit(")", 1)[-1].split()
    return rest[0] if rest else None


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (else it is init's job)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def alive(pid: int | None) -> bool:
    """True when ``pid`` runs and is not a zombie (``kill -0`` would count zombies)."""
    if not pid or pid <= 0:
        return False
    _reap(pid)
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X", "x")


def stopped(pid: int | None) -> bool:
    """True when ``pid`` is alive but stopped (SIGSTOP): state T."""
    return bool(pid) and proc_state(pid) in ("T", "t")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def read_pidfile(path: Path) -> int | None:
    try:
        text = Path(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return int(text[0]) if text else None
    except ValueError:
        return None


def running_pid(proc: Proc) -> int | None:
    """The PID of ``proc`` if its pidfile names a live process still running its command."""
    pid = read_pidfile(proc.pidfile)
    if not alive(pid):
        return None
    line = cmdline(pid)
    if proc.markers and not any(marker in part for marker in proc.markers for part in line):
        return None  # a recycled PID running something else
    return pid


def as_postgres_argv(argv: list[str] | tuple[str, ...]) -> list[str]:
    """Prefix to run a command as the ``postgres`` user when we are root (exec, same PID)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


def start(proc: Proc, cwd: Path | None = None) -> int:
    """Start ``proc`` in its own session, log to its file, record and return its PID."""
    argv = as_postgres_argv(proc.argv) if proc.as_postgres else list(proc.argv)
    proc.log.parent.mkdir(parents=True, exist_ok=True)
    proc.pidfile.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(proc.env)
    if proc.as_postgres and os.geteuid() == 0:
        env.update({"HOME": "/var/lib/postgresql", "USER": "postgres", "LOGNAME": "postgres"})
    with open(proc.log, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {proc.name}: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(cwd) if cwd else None,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise OperationFailed(
                f"{proc.name} did not start: {exc.strerror}: {argv[0]}", hint=f"see {proc.log}"
            ) from None
    proc.pidfile.write_text(f"{child.pid}\n", encoding="ascii")
    return child.pid


def signal_pid(pid: int | None, sig: int) -> bool:
    """Send ``sig`` to ``pid``; False when it is already gone."""
    if not alive(pid) and sig != signal.SIGCONT:
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def wait_dead(pids: list[int], timeout_s: float) -> list[int]:
    """Poll /proc until every PID is gone or ``timeout_s`` passes; return those still alive."""
    deadline = time.monotonic() + timeout_s
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


def stop_pids(targets: list[tuple[int, int]], timeout_s: float = 10.0, kill_timeout_s: float = 5.0) -> list[int]:
    """Stop ``(pid, signal)`` pairs together; SIGKILL what outlives ``timeout_s``.

    Stopped (SIGSTOP) processes are continued first so they can act on the signal.
    Returns the PIDs that survived even SIGKILL (should be empty).
    """
    pids = []
    for pid, sig in targets:
        if alive(pid):
            if stopped(pid):
                signal_pid(pid, signal.SIGCONT)
            signal_pid(pid, sig)
            pids.append(pid)
    left = wait_dead(pids, timeout_s)
    for pid in left:
        signal_pid(pid, signal.SIGKILL)
    return wait_dead(left, kill_timeout_s)


# Programs the lab runs that change their process title (so their command line no
# longer names the lab) but keep their working directory inside it.
_RETITLED = {"postgres", "redis-server", "redis-sentinel", "redis-check-rdb"}


def processes_under(directory: Path) -> list[int]:
    """Live PIDs (never ours) that belong to the lab in ``directory``.

    A process belongs when its command line mentions the directory, or when it is a
    server that retitles itself (PostgreSQL backends, Redis, Sentinel) and its working
    directory is inside the lab. Used after a teardown to prove nothing is left.
    """
    marker = str(directory).rstrip("/") + "/"
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        line = cmdline(pid)
        mine = bool(line) and any(marker in part or part == marker[:-1] for part in line)
        if not mine:
            try:
                exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            mine = exe in _RETITLED and (cwd + "/").startswith(marker)
        if mine and alive(pid):
            found.append(pid)
    return found


def postmaster_pid(data_dir: Path) -> int | None:
    """The postmaster PID from ``DATA/postmaster.pid`` when that process is alive."""
    pid = read_pidfile(Path(data_dir) / "postmaster.pid")
    return pid if alive(pid) else None


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log (reads at most the last 256 KiB)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 262144))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])

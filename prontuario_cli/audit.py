"""The audit log: one JSON line per state-changing command, hash-chained, append-only.

Each entry carries ``seq``, ``prev`` (the previous entry's hash) and ``hash`` (the
sha256 of the entry's canonical JSON without ``hash``). A sidecar ``<log>.head``
holds the last seq and hash so a truncated tail is caught too. Writers take an
exclusive ``flock`` on the log, so a cron drill and a person never interleave.
``verify`` names the first line where an entry was edited, deleted, inserted or
reordered.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import getpass
import hashlib
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from prontuario_cli.clock import utc_now
from prontuario_cli.errors import ExitCode, IntegrityError, PermissionProblem, ProntuarioError
from prontuario_cli.report import Nagios, Perf, Status, Table

GENESIS = "0" * 64


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def log_for(inventory=None, own: Path | None = None) -> "AuditLog":
    from prontuario_cli.paths import audit_log_path

    return AuditLog(audit_log_path(inventory, own))


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")

    # ------------------------------------------------------------------ writing

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one entry (adds seq, prev, hash) under an exclusive lock; return it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise PermissionProblem(f"cannot open the audit log {self.path}: {exc.strerror}", hint="set $PRONTUARIO_AUDIT_LOG to a writable file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_entry(fd)
            entry = dict(record)
            entry["seq"] = (last["seq"] + 1) if last else 1
            entry["prev"] = last["hash"] if last else GENESIS
            entry["hash"] = entry_hash(entry)
            line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
            self._write_head(entry)
            return entry
        finally:
            os.close(fd)  # closing releases the lock

    def _write_head(self, entry: dict[str, Any]) -> None:
        from prontuario_cli.files import write_atomically

        write_atomically(self.head_path, json.dumps({"seq": entry["seq"], "hash": entry["hash"]}), 0o600)

    # ------------------------------------------------------------------ reading

    def read(self) -> list[tuple[int, str]]:
        """(line number, raw line) for every non-empty line."""
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                return [(n, line.rstrip("\n")) for n, line in enumerate(fh, 1) if line.strip()]
        except FileNotFoundError:
            return []

    def entries(self, since: _dt.datetime | None = None) -> list[dict[str, Any]]:
        out = []
        for number, raw in self.read():
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                raise IntegrityError(f"{self.path}:{number}: not a JSON entry", hint="run: prontuario audit verify") from None
            if since is None or _parse_time(entry.get("time")) >= since:
                out.append(entry)
        return out

    def verify(self) -> "VerifyReport":
        return verify_lines(self.read(), self._head(), str(self.path))

    def _head(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.head_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


def _last_entry(fd: int) -> dict[str, Any] | None:
    """The last complete JSON line of an open file, read backwards from the end."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    chunk = 4096
    data = b""
    pos = size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        lines = data.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or pos == 0:
            try:
                return json.loads(lines[-1])
            except json.JSONDecodeError:
                raise IntegrityError("the audit log's last line is not a JSON entry; refusing to extend a broken chain", hint="run: prontuario audit verify") from None
        chunk *= 2
    return None


def _parse_time(text: Any) -> _dt.datetime:
    try:
        return _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    line: int
    seq: int | None
    kind: str  # edited | deleted | inserted | reordered | truncated
    message: str


@dataclass(frozen=True)
class VerifyReport:
    log: str
    entries: int
    intact: bool
    problems: tuple[Problem, ...] = field(default=())

    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.intact else ExitCode.INTEGRITY

    def nagios(self) -> Nagios:
        perf = (Perf("entries", self.entries, min=0), Perf("problems", len(self.problems), crit=0, min=0))
        if self.intact:
            return Nagios(Status.OK, f"audit log {self.log}: {self.entries} entries, chain intact", perf)
        first = self.problems[0]
        return Nagios(Status.CRITICAL, f"audit log {self.log}: chain broken: {first.message}", perf)

    def tables(self) -> list[Table]:
        verdict = "intact" if self.intact else f"BROKEN ({len(self.problems)} problem(s))"
        summary = Table("", ("log", "entries", "chain"), ((self.log, self.entries, verdict),))
        if not self.problems:
            return [summary]
        rows = tuple((p.line, p.seq, p.kind, p.message) for p in self.problems)
        return [summary, Table("problems", ("line", "seq", "kind", "what"), rows)]


def verify_lines(lines: list[tuple[int, str]], head: dict[str, Any] | None, log: str = "audit log") -> VerifyReport:
    """Check the chain; classify each break as edited, deleted, inserted or reordered."""
    problems: list[Problem] = []
    parsed: list[tuple[int, dict[str, Any]]] = []
    for number, raw in lines:
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict) or not {"seq", "prev", "hash"} <= entry.keys():
                raise ValueError
        except ValueError:
            problems.append(Problem(number, None, "edited", f"line {number} is not an audit entry"))
            continue
        if entry_hash(entry) != entry["hash"]:
            problems.append(Problem(number, entry.get("seq"), "edited", f"entry {entry.get('seq')} (line {number}) was edited: its hash does not match its content"))
        parsed.append((number, entry))

    by_hash = {e["hash"]: e for _, e in parsed}
    claimed: dict[str, int] = {}
    for _, e in parsed:
        claimed[e["prev"]] = claimed.get(e["prev"], 0) + 1
    for i, (number, entry) in enumerate(parsed):
        before = parsed[i - 1][1] if i else None
        expected_prev = before["hash"] if before else GENESIS
        if entry["prev"] == expected_prev and (before is None or entry["seq"] == before["seq"] + 1):
            continue
        if before is None and entry["prev"] != GENESIS:
            if entry["prev"] in by_hash:
                kind, what = "reordered", f"entry {entry['seq']} (line {number}) is out of order"
            else:
                kind, what = "deleted", f"entries before seq {entry['seq']} are missing from the start of the log"
        elif claimed.get(entry["prev"], 0) > 1:
            kind, what = "inserted", f"an entry was inserted near line {number}: two entries claim to follow the same one"
        elif entry["prev"] in by_hash or (before is not None and by_hash.get(before["prev"]) is not None and entry["seq"] < before["seq"]):
            kind, what = "reordered", f"entry {entry['seq']} (line {number}) is out of order"
        elif before is not None and entry["seq"] > before["seq"] + 1:
            kind, what = "deleted", f"entries {before['seq'] + 1}–{entry['seq'] - 1} are missing before line {number}"
        else:
            kind, what = "inserted", f"entry at line {number} does not follow the entry before it (inserted or forged)"
        problems.append(Problem(number, entry.get("seq"), kind, what))

    if head is not None:
        last = parsed[-1][1] if parsed else None
        if last is None or head.get("seq", 0) > last["seq"]:
            have = last["seq"] if last else 0
            problems.append(Problem(lines[-1][0] if lines else 0, head.get("seq"), "deleted", f"the log ends at seq {have} but {head.get('seq')} entries were written: the tail was deleted"))
        elif head.get("seq") == last["seq"] and head.get("hash") != last["hash"]:
            problems.append(Problem(parsed[-1][0], last["seq"], "edited", f"the last entry (seq {last['seq']}) was replaced"))
    return VerifyReport(log=log, entries=len(lines), intact=not problems, problems=tuple(problems))


# --------------------------------------------------------------------------- recording


def _operator() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {name})" if sudo and sudo != name else name


@contextmanager
def action(log: AuditLog, command: str, args: dict[str, Any], *, dry_run: bool = False) -> Iterator[dict[str, Any]]:
    """Record one entry for a command, whatever its outcome; yield a dict for details."""
    from prontuario_cli.secrets import redact, redact_args

    details: dict[str, Any] = {}
    started = time.monotonic()
    outcome, error = ("dry-run" if dry_run else "ok"), None
    try:
        yield details
    except KeyboardInterrupt:
        outcome, error = "interrupted", "interrupted by the operator"
        raise
    except ProntuarioError as exc:
        outcome = {ExitCode.ABORTED: "aborted", ExitCode.REFUSED: "refused"}.get(exc.exit_code, "failed")
        error = exc.one_line()
        raise
    except BaseException as exc:
        code = getattr(exc, "exit_code", None)  # typer.Exit: the command chose its exit code
        if isinstance(code, int):
            if code != 0:
                outcome, error = "failed", f"exit code {code}"
        else:
            outcome, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record = {
            "time": utc_now(),
            "operator": _operator(),
            "host": socket.gethostname(),
            "command": command,
            "args": redact_args(args),
            "outcome": outcome,
            "duration_s": round(time.monotonic() - started, 3),
        }
        if error:
            record["error"] = redact(error)
        if details:
            record["details"] = redact_args(details)
        log.append(record)

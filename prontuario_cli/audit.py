"""The audit log: one JSON line per step of a state-changing command, chained with an HMAC.

Why a keyed chain: a plain hash chain only proves that the file agrees with itself.
Anyone who may write the log could append an entry with a recomputed hash, rewrite the
whole chain, or cut the tail and fix the sidecar. Here each entry carries ``mac``, the
HMAC-SHA256 of its canonical JSON under a 32-byte key kept apart from the log (see
:func:`prontuario_cli.paths.audit_key_path`), and ``prev``, the previous entry's MAC.
Without the key nothing can be added or changed unseen.

The sidecar ``<log>.head`` records the last ``seq`` and ``mac`` with its own MAC, so a
cut tail (head ahead of the log) and an older head put back (log ahead of the head) are
caught. The head is written right after its entry: a crash between the two leaves the
log exactly one entry ahead, with the head matching the entry before — that one case is
reported as a warning, not as tampering.

Write-ahead: :func:`action` appends an ``intent`` entry before the command changes
anything and an ``outcome`` entry (the real verdict, the exit code) after, linked by
``id``. When the intent cannot be written, nothing is done. An intent without its outcome
(a kill -9, a power cut) is a warning: "no outcome recorded".

Logs written before the key existed (entries with ``hash`` and no ``mac``) still verify,
as a legacy unkeyed prefix with a warning; the first keyed entry chains onto the last
legacy hash. Writers take an exclusive ``flock`` on the log, so a cron drill and a person
never interleave.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import getpass
import hashlib
import hmac
import json
import os
import socket
import stat
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from prontuario_cli.clock import utc_now
from prontuario_cli.errors import ExitCode, IntegrityError, OperationFailed, PermissionProblem, ProntuarioError
from prontuario_cli.report import Nagios, Perf, Status, Table

GENESIS = "0" * 64
KEY_BYTES = 32
MAX_PROBLEMS = 50  # a rewritten log of 10,000 lines needs its first breaks named, not all


class AuditUnwritable(ProntuarioError):
    """The intent entry could not be written, so the command did nothing."""

    # The log could not take an entry (sysexits' EX_IOERR); a tampered log (65) or an
    # unsafe key (77) keep their own codes.
    exit_code = ExitCode.IO_ERROR


# --------------------------------------------------------------------------- MACs and keys


def _canonical(body: dict[str, Any]) -> bytes:
    """The bytes a MAC covers: sorted keys, no spaces, ASCII (so no encoding can fail)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def entry_hash(entry: dict[str, Any]) -> str:
    """The legacy (unkeyed) SHA-256 of an entry without ``hash``; kept to read old logs."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def entry_mac(entry: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 of an entry without ``mac``; the ``entry`` prefix keeps it apart from a head's."""
    body = {k: v for k, v in entry.items() if k != "mac"}
    return hmac.new(key, b"entry\n" + _canonical(body), hashlib.sha256).hexdigest()


def head_mac(head: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in head.items() if k != "head_mac"}
    return hmac.new(key, b"head\n" + _canonical(body), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short name for a key (it reveals nothing of it): tells a wrong key from a forgery."""
    return hashlib.sha256(b"prontuario audit key id\n" + key).hexdigest()[:16]


def read_key(path: Path) -> bytes | None:
    """The key, or None when there is none.

    Refuses (PermissionProblem) a key that is not a regular file or that group or others
    may read or write: whoever reads the key can forge entries. A file of the wrong size
    is an IntegrityError (not a key, or a damaged one).
    """
    hint = f"the key must be a regular 32-byte file of mode 0600: chmod 600 {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PermissionProblem(f"the audit key {path} is a symbolic link, not a regular file", hint=hint) from None
        raise PermissionProblem(f"cannot read the audit key {path}: {exc.strerror}", hint="run as the user that owns the key") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PermissionProblem(f"the audit key {path} is not a regular file", hint=hint)
        if info.st_mode & 0o077:
            raise PermissionProblem(
                f"the audit key {path} is open to group or others (mode {stat.S_IMODE(info.st_mode):04o}): whoever reads it can forge audit entries",
                hint=f"chmod 600 {path}",
            )
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise IntegrityError(f"the audit key {path} is not a {KEY_BYTES}-byte key ({len(data)}{'+' if len(data) > KEY_BYTES else ''} bytes)", hint="restore it from its backup")
    return data


def create_key(path: Path) -> bytes:
    """A new random key, mode 0600, put in place atomically (a reader never sees half a key)."""
    import secrets

    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another writer made one meanwhile: theirs wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise PermissionProblem(f"cannot create the audit key {path}: {exc.strerror}", hint="set paths.audit_key or $PRONTUARIO_AUDIT_KEY to a writable place") from None
    key = read_key(path)
    assert key is not None
    return key


def _load(raw: str) -> Any:
    """JSON or None: not JSON, nested too deep, a number too long or a key given twice."""

    def no_duplicates(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    try:
        return json.loads(raw, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError):
        return None


def _link(entry: dict[str, Any]) -> str:
    """What the next entry's ``prev`` names: the MAC, or a legacy entry's hash."""
    return entry["mac"] if "mac" in entry else entry["hash"]


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def malformed(entry: Any) -> str | None:
    """Why a parsed line is not an audit entry, or None when its shape is right."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    if not _is_seq(entry.get("seq")):
        return "its seq is not a positive integer"
    if not _is_hex64(entry.get("prev")):
        return "its prev is not a 64-digit hex digest"
    if "mac" in entry:
        if not _is_hex64(entry["mac"]):
            return "its mac is not a 64-digit hex digest"
        if not isinstance(entry.get("key_id"), str):
            return "its key_id is missing or not a string"
    elif not _is_hex64(entry.get("hash")):
        return "it has neither a mac nor a hash"
    if "phase" in entry and (entry["phase"] not in ("intent", "outcome") or not isinstance(entry.get("id"), str)):
        return "its phase or id is not valid"
    return None


def log_for(inventory=None, own: Path | None = None) -> "AuditLog":
    from prontuario_cli.paths import audit_key_path, audit_log_path

    path = audit_log_path(inventory, own)
    return AuditLog(path, audit_key_path(inventory, path))


# --------------------------------------------------------------------------- the log


class AuditLog:
    def __init__(self, path: Path, key_path: Path | None = None):
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.key_path = Path(key_path) if key_path is not None else self.path.with_name(self.path.name + ".key")

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one entry (adds seq, prev, key_id, mac) under an exclusive lock; return it.

        Raises PermissionProblem or IntegrityError, before writing anything, when the log
        cannot be opened, its last line is not an entry, or the key is unsafe or missing
        while the log already holds keyed entries (a new key would cut the chain).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            problem = PermissionProblem if exc.errno in (errno.EACCES, errno.EPERM) else OperationFailed
            raise problem(f"cannot open the audit log {self.path}: {exc.strerror}", hint="set $PRONTUARIO_AUDIT_LOG to a writable file") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OperationFailed(f"the audit log {self.path} is not a regular file", hint="set $PRONTUARIO_AUDIT_LOG to a writable file")
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, newline = _last_entry(fd)
            key = self._key_for_writing(last)
            self._check_head(last, key)
            body = {k: v for k, v in record.items() if k not in ("seq", "prev", "mac", "hash", "key_id")}
            entry = json.loads(json.dumps(body, default=str))  # what a reader will parse back
            entry.update(seq=(last["seq"] + 1) if last else 1, prev=_link(last) if last else GENESIS, key_id=key_id(key))
            entry["mac"] = entry_mac(entry, key)
            os.write(fd, (b"" if newline else b"\n") + _line(entry))
            os.fsync(fd)
            self._write_head(entry, key)
            return entry
        except OSError as exc:
            raise PermissionProblem(f"cannot write the audit log {self.path}: {exc.strerror or exc}", hint="check the disk and the file's permissions") from None
        finally:
            os.close(fd)  # closing releases the lock

    def _key_for_writing(self, last: dict[str, Any] | None) -> bytes:
        try:
            key = read_key(self.key_path)
        except OSError as exc:
            raise PermissionProblem(f"cannot read the audit key {self.key_path}: {exc.strerror}") from None
        if key is not None:
            return key
        if (last is not None and "mac" in last) or self._head_is_keyed():
            raise IntegrityError(
                f"the audit key {self.key_path} is missing but the log already has keyed entries",
                hint="restore the key from its backup; a new key would cut the chain",
            )
        return create_key(self.key_path)

    def _check_head(self, last: dict[str, Any] | None, key: bytes) -> None:
        """Refuse to extend a log that no longer matches its head: the next head would
        hide a cut tail or a deleted log. The one tolerated case is a crash between the
        last entry and its head (the head names the entry before the last)."""
        text = self._head_text()
        if text is None and (last is None or "mac" not in last):
            return  # a new log, or a legacy one from before heads were authenticated
        head = _load(text or "")
        why = None
        if not isinstance(head, dict) or not _is_seq(head.get("seq")):
            why = "the head is missing or malformed"
        elif "head_mac" in head and not (_is_hex64(head["head_mac"]) and hmac.compare_digest(head_mac(head, key), head["head_mac"])):
            why = "the head's MAC does not match"
        elif last is None:
            why = f"the log is empty but the head records seq {head['seq']}"
        else:
            mark = head.get("mac", head.get("hash"))
            if not (head["seq"] == last["seq"] and mark == _link(last)) and not (head["seq"] == last["seq"] - 1 and mark == last["prev"]):
                why = f"the log ends at seq {last['seq']} but the head records seq {head['seq']}"
        if why:
            raise IntegrityError(
                f"the audit log {self.path} does not match its head ({why}); refusing to extend it",
                hint="run: prontuario audit verify; keep the log, its .head and .key aside as evidence, then a new log starts",
            )

    def _head_is_keyed(self) -> bool:
        head = _load(self._head_text() or "")
        return isinstance(head, dict) and "head_mac" in head

    def _write_head(self, entry: dict[str, Any], key: bytes) -> None:
        from prontuario_cli.files import write_atomically

        head = {"seq": entry["seq"], "mac": entry["mac"], "key_id": entry["key_id"]}
        head["head_mac"] = head_mac(head, key)
        write_atomically(self.head_path, json.dumps(head, sort_keys=True), 0o600)

    # ------------------------------------------------------------------ reading

    def read(self) -> list[tuple[int, str]]:
        """(line number, raw line) for every non-blank line; only ``\\n`` ends a line."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.decode("utf-8", errors="replace").split("\n")
        return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]

    def entries(self, since: _dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every entry as written (intents and outcomes), optionally from ``since`` on."""
        out = []
        for number, raw in self.read():
            entry = _load(raw)
            if not isinstance(entry, dict):
                raise IntegrityError(f"{self.path}: line {number} is not an audit entry", hint="run: prontuario audit verify")
            if since is None or parse_time(entry.get("time")) >= since:
                out.append(entry)
        return out

    def verify(self) -> "VerifyReport":
        """Check every MAC, the chain and the head; never raises for what the files contain."""
        key, key_problem = None, None
        try:
            key = read_key(self.key_path)
        except IntegrityError as exc:
            key_problem = exc.message
        return verify_lines(
            self.read(),
            self._head_text(),
            str(self.path),
            key=key,
            key_file=str(self.key_path),
            key_problem=key_problem,
            head_file=str(self.head_path),
        )

    def _head_text(self) -> str | None:
        try:
            return self.head_path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            return ""  # not a head: reported as malformed


def _line(entry: dict[str, Any]) -> bytes:
    """The entry as one line: readable UTF-8, or escaped when a string cannot be encoded."""
    try:
        return (json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (an undecodable file name in argv)
        return (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def _last_entry(fd: int) -> tuple[dict[str, Any] | None, bool]:
    """The last entry of an open log, read backwards from the end, and whether the file
    ends with a newline. Refuses to extend a log whose last line is not an entry."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None, True
    newline = os.pread(fd, 1, size - 1) == b"\n"
    chunk, data, pos = 4096, b"", size
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        lines = data.rstrip().split(b"\n")
        if len(lines) > 1 or pos == 0:
            if not lines[-1].strip():
                return None, newline  # only blank lines so far
            entry = _load(lines[-1].decode("utf-8", errors="replace"))
            why = malformed(entry)
            if why:
                raise IntegrityError(f"the audit log's last line is not a valid entry ({why}); refusing to extend a broken chain", hint="run: prontuario audit verify")
            return entry, newline
        chunk *= 2
    return None, newline


def parse_time(text: Any) -> _dt.datetime:
    """An entry's ``time`` as an aware datetime; anything unreadable sorts first."""
    try:
        when = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    line: int
    seq: int | None
    kind: str  # edited | forged | deleted | inserted | reordered | malformed | head | stale-head | key | more;
    # warnings: legacy | no-outcome | crash
    message: str


@dataclass(frozen=True)
class VerifyReport:
    log: str
    entries: int
    intact: bool
    problems: tuple[Problem, ...] = field(default=())
    warnings: tuple[Problem, ...] = field(default=())
    legacy_until: int | None = None  # the last unkeyed (SHA-256 only) entry, if any

    def exit_code(self) -> ExitCode:
        """0 intact (warnings or not: they are lasting facts, not alarms), 65 broken."""
        return ExitCode.OK if self.intact else ExitCode.INTEGRITY

    def nagios(self) -> Nagios:
        perf = (Perf("entries", self.entries, min=0), Perf("problems", len(self.problems), crit=0, min=0))
        if self.intact:
            more = f" ({len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''})" if self.warnings else ""
            return Nagios(Status.OK, f"audit log {self.log}: {self.entries} entries, chain intact{more}", perf)
        first = self.problems[0]
        return Nagios(Status.CRITICAL, f"audit log {self.log}: chain broken: {first.message}", perf)

    def tables(self) -> list[Table]:
        verdict = "intact" if self.intact else f"BROKEN ({len(self.problems)} problem(s))"
        summary = Table("", ("log", "entries", "chain"), ((self.log, self.entries, verdict),))
        out = [summary]
        if self.problems:
            out.append(Table("problems", ("line", "seq", "kind", "what"), tuple((p.line, p.seq, p.kind, p.message) for p in self.problems)))
        if self.warnings:
            out.append(Table("warnings", ("line", "seq", "kind", "what"), tuple((p.line, p.seq, p.kind, p.message) for p in self.warnings)))
        return out


@dataclass(frozen=True)
class _Entry:
    line: int
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        return self.data["seq"]

    @property
    def keyed(self) -> bool:
        return "mac" in self.data

    @property
    def at(self) -> str:
        """``entry 3 (line 5)``: how every message names an entry."""
        return f"entry {self.seq} (line {self.line})"


class _Findings:
    """Problems, at most one per line (the first is the cause, the rest its echoes)."""

    def __init__(self):
        self.problems: list[Problem] = []
        self.lines: set[int] = set()

    def add(self, line: int, seq: int | None, kind: str, message: str) -> None:
        if line and line in self.lines:
            return
        self.lines.add(line)
        self.problems.append(Problem(line, seq, kind, message))

    def capped(self) -> tuple[Problem, ...]:
        if len(self.problems) <= MAX_PROBLEMS:
            return tuple(self.problems)
        rest = len(self.problems) - MAX_PROBLEMS
        last = self.problems[MAX_PROBLEMS]
        return (*self.problems[:MAX_PROBLEMS], Problem(last.line, last.seq, "more", f"and {rest} more problem(s) from line {last.line} on"))


def verify_lines(
    lines: list[tuple[int, str]],
    head_text: str | None,
    log: str = "audit log",
    *,
    key: bytes | None = None,
    key_file: str = "the audit key",
    key_problem: str | None = None,
    head_file: str = "the head file",
) -> VerifyReport:
    """Check shapes, MACs (legacy hashes), the chain and the head; pure.

    Every problem names a line and, when it has one, a seq. Nothing in the lines or the
    head can make this raise: a line that is not an entry is a problem like any other.
    """
    found = _Findings()
    parsed: list[_Entry] = []
    for number, raw in lines:
        data = _load(raw)
        why = malformed(data)
        if why:
            seq = data.get("seq") if isinstance(data, dict) and _is_seq(data.get("seq")) else None
            found.add(number, seq, "malformed", f"line {number} is not a valid audit entry: {why}")
            continue
        entry = _Entry(number, data)
        if not entry.keyed and parsed and parsed[-1].keyed:
            found.add(number, entry.seq, "inserted", f"{entry.at} is an unkeyed entry after keyed ones: inserted or forged")
            continue
        parsed.append(entry)

    keyed = [e for e in parsed if e.keyed]
    legacy = [e for e in parsed if not e.keyed]
    key_fits = _check_macs(found, keyed, legacy, key, key_file, key_problem)
    _check_chain(found, parsed)
    warnings = _check_head(found, parsed, head_text, key if key_fits else None, head_file)
    if not keyed and (key is not None or key_problem):
        line, seq = (parsed[-1].line, parsed[-1].seq) if parsed else (0, None)
        found.add(
            line,
            seq,
            "key",
            f"the audit key {key_file} exists but no entry is keyed: keyed entries were removed"
            + (f" after seq {seq} (line {line})" if parsed else " (the log is empty)")
            + ", or the key was put there by hand before any entry",
        )
    if legacy:
        first, last = legacy[0], legacy[-1]
        warnings.insert(0, Problem(first.line, first.seq, "legacy", f"legacy, unkeyed up to seq {last.seq} (lines {first.line}–{last.line}): SHA-256 only, so whoever could write the log could have rewritten them"))
    warnings.extend(_no_outcome(parsed))
    problems = found.capped()
    return VerifyReport(
        log=log,
        entries=len(lines),
        intact=not problems,
        problems=problems,
        warnings=tuple(warnings),
        legacy_until=legacy[-1].seq if legacy else None,
    )


def _check_macs(found: _Findings, keyed: list[_Entry], legacy: list[_Entry], key: bytes | None, key_file: str, key_problem: str | None) -> bool:
    """Legacy hashes and MACs; False when the key cannot check this log (missing or wrong)."""
    for e in legacy:
        if entry_hash(e.data) != e.data["hash"]:
            found.add(e.line, e.seq, "edited", f"{e.at} was edited: its hash does not match its content")
    if not keyed:
        return True
    first = keyed[0]
    if key is None:
        why = key_problem or f"the audit key {key_file} is missing"
        found.add(first.line, first.seq, "key", f"{why}: the keyed entries from {first.at} on cannot be checked")
        return False
    good = [hmac.compare_digest(entry_mac(e.data, key), e.data["mac"]) for e in keyed]
    if not any(good):
        mine = key_id(key)
        if all(e.data["key_id"] != mine for e in keyed):
            found.add(first.line, first.seq, "key", f"wrong key: {key_file} (key id {mine}) is not the key the entries were written with (key id {first.data['key_id']} at {first.at})")
            return False
        if len(keyed) > 1:
            found.add(first.line, first.seq, "forged", f"no keyed entry matches its MAC, from {first.at} on: the chain was rewritten without the key")
            return True
    for e, ok in zip(keyed, good):
        if not ok:
            found.add(e.line, e.seq, "edited", f"{e.at} was edited or forged: its MAC does not match its content")
    return True


def _check_chain(found: _Findings, parsed: list[_Entry]) -> None:
    """Each entry must name the one before (``prev``) and follow its seq; classify each break."""
    by_link = {_link(e.data): e for e in parsed}
    claimed: dict[str, int] = {}
    for e in parsed:
        claimed[e.data["prev"]] = claimed.get(e.data["prev"], 0) + 1
    for i, e in enumerate(parsed):
        before = parsed[i - 1] if i else None
        prev = e.data["prev"]
        if prev == (_link(before.data) if before else GENESIS) and (before is None or e.seq == before.seq + 1):
            continue
        if before is None:
            if prev in by_link:
                kind, what = "reordered", f"{e.at} is out of order"
            else:
                kind, what = "deleted", f"entries before seq {e.seq} are missing from the start of the log (line {e.line})"
        elif claimed.get(prev, 0) > 1:
            kind, what = "inserted", f"an entry was inserted near line {e.line} (seq {e.seq}): two entries claim to follow the same one"
        elif prev in by_link or (by_link.get(before.data["prev"]) is not None and e.seq < before.seq):
            kind, what = "reordered", f"{e.at} is out of order"
        elif e.seq > before.seq + 1:
            kind, what = "deleted", f"entries {before.seq + 1}–{e.seq - 1} are missing before line {e.line}"
        else:
            kind, what = "inserted", f"{e.at} does not follow the entry before it (inserted or forged)"
        found.add(e.line, e.seq, kind, what)


def _check_head(found: _Findings, parsed: list[_Entry], text: str | None, key: bytes | None, head_file: str) -> list[Problem]:
    """The head against the log's last entry; returns warnings (the one tolerated crash case)."""
    last = parsed[-1] if parsed else None
    where = (last.line, last.seq) if last else (0, None)
    ends = f"the log's last entry is {last.at}" if last else "the log is empty"
    if text is None:
        if last is not None:
            found.add(0, None, "head", f"the head file {head_file} is missing; {ends}")
        return []
    head = _load(text)
    legacy_head = isinstance(head, dict) and set(head) == {"seq", "hash"} and _is_hex64(head["hash"])
    keyed_head = isinstance(head, dict) and set(head) == {"seq", "mac", "key_id", "head_mac"} and _is_hex64(head["mac"]) and _is_hex64(head["head_mac"])
    if not (legacy_head or keyed_head) or not _is_seq(head.get("seq")):
        found.add(0, None, "head", f"the head file {head_file} is malformed (not a head of this log); {ends}")
        return []
    if keyed_head and key is not None and not hmac.compare_digest(head_mac(head, key), head["head_mac"]):
        found.add(0, head["seq"], "head", f"the head file {head_file} was edited or forged: its MAC does not match; {ends}")
        return []
    if legacy_head and last is not None and last.keyed:
        found.add(0, head["seq"], "head", f"the head file {head_file} carries no MAC though the log is keyed: it was replaced; {ends}")
        return []
    mark = head["mac"] if keyed_head else head["hash"]
    have = last.seq if last else 0
    if head["seq"] > have:
        found.add(where[0], where[1], "deleted", f"the log ends at seq {have}" + (f" (line {last.line})" if last else "") + f" but the head records seq {head['seq']}: the tail was deleted")
    elif last is not None and head["seq"] == have and mark != _link(last.data):
        found.add(last.line, last.seq, "edited", f"the last {last.at} was replaced: it is not the one the head records")
    elif last is not None and head["seq"] < have:
        before = parsed[-2] if len(parsed) > 1 else None
        if have == head["seq"] + 1 and before is not None and before.seq == head["seq"] and _link(before.data) == mark:
            return [Problem(last.line, last.seq, "crash", f"the head is one entry behind {last.at}: the writer stopped between the entry and its head (a crash); the next entry brings it up to date")]
        after = [e for e in parsed if e.seq > head["seq"]]
        first = after[0] if after else last
        found.add(first.line, first.seq, "stale-head", f"the head records seq {head['seq']} but the log goes on to seq {have} (lines {first.line}–{last.line}): an older head was put back")
    return []


def _no_outcome(parsed: list[_Entry]) -> list[Problem]:
    """Intents with no outcome after them: a crash or a kill, or a command still running."""
    open_: dict[str, _Entry] = {}
    for e in parsed:
        if e.data.get("phase") == "intent":
            open_[e.data["id"]] = e
        elif e.data.get("phase") == "outcome":
            open_.pop(e.data["id"], None)
    return [
        Problem(e.line, e.seq, "no-outcome", f"{e.at}: '{e.data.get('command')}' started {e.data.get('time')} by {e.data.get('operator')}: no outcome recorded (still running, or the process was killed)")
        for e in open_.values()
    ]


# --------------------------------------------------------------------------- recording


def _operator() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (as {name})" if sudo and sudo != name else name


class Details(dict):
    """What a command adds to its outcome entry. ``conclude`` gives the real verdict (a
    drill's ``missed``, a promotion's ``incomplete``) where ``ok`` would hide it."""

    outcome: str | None = None
    exit_code: int | None = None

    def conclude(self, outcome: str, exit_code: int = 0) -> None:
        self.outcome, self.exit_code = outcome, int(exit_code)


@contextmanager
def action(log: AuditLog, command: str, args: dict[str, Any], *, dry_run: bool = False) -> Iterator[Details]:
    """Audit one command: an intent entry first, the outcome entry after, linked by ``id``.

    When the intent cannot be written the block never runs (AuditUnwritable): no change
    without its record. The outcome is ``ok``, ``dry-run``, what the command concluded,
    ``failed`` (with the error), ``refused``, ``aborted``, ``declined`` or
    ``interrupted``, with the exit code.
    """
    from prontuario_cli.secrets import redact, redact_args

    who = {"operator": _operator(), "host": socket.gethostname(), "command": command, "args": redact_args(args), "id": uuid.uuid4().hex[:16]}
    intent = {"time": utc_now(), **who, "phase": "intent", **({"dry_run": True} if dry_run else {})}
    try:
        log.append(intent)
    except ProntuarioError as exc:
        code = exc.exit_code if exc.exit_code in (ExitCode.INTEGRITY, ExitCode.PERMISSION) else ExitCode.IO_ERROR
        raise AuditUnwritable(f"{command}: nothing was done, because its audit entry could not be written first: {exc.message}",
                              hint=exc.hint, exit_code=code) from None
    details = Details()
    started = time.monotonic()
    outcome: str | None = None
    code: int | None = None
    error: str | None = None
    failing = False
    try:
        yield details
    except KeyboardInterrupt:
        failing, outcome, code, error = True, "interrupted", int(ExitCode.INTERRUPTED), "interrupted by the operator"
        raise
    except ProntuarioError as exc:
        failing, code, error = True, int(exc.exit_code), exc.one_line()
        outcome = getattr(exc, "audit_outcome", None) or {ExitCode.ABORTED: "aborted", ExitCode.REFUSED: "refused"}.get(exc.exit_code, "failed")
        raise
    except BaseException as exc:
        chosen = getattr(exc, "exit_code", None)  # typer.Exit: the command chose its exit code
        if isinstance(chosen, int):
            code = chosen
            if chosen != 0 and details.outcome is None:
                failing, outcome, error = True, "failed", f"exit code {chosen}"
        else:
            failing, outcome, code, error = True, "failed", int(ExitCode.BUG), f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if outcome is None:
            outcome = details.outcome or ("dry-run" if dry_run else "ok")
        if code is None:
            code = details.exit_code if details.exit_code is not None else 0
        record = {"time": utc_now(), **who, "phase": "outcome", "outcome": outcome, "exit_code": code, "duration_s": round(time.monotonic() - started, 3)}
        if error:
            record["error"] = redact(error)
        if details:
            record["details"] = redact_args(dict(details))
        try:
            log.append(record)
        except ProntuarioError as exc:
            if not failing:  # an error on its way out wins; its intent stays without an outcome
                raise AuditUnwritable(
                    f"{command} ran ({outcome}) but its outcome could not be recorded: {exc.message}",
                    hint=f"the log shows it as started with no outcome (id {who['id']})",
                ) from None

"""The one error tree and the one table of exit codes.

Every command ends through :class:`ExitCode`; every expected failure is a
:class:`ProntuarioError` whose message is one line a tired engineer can act on.
Checks follow the Nagios plugin contract (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README (a test keeps them in step)."""

    OK = 0  # success; for checks: Nagios OK
    WARNING = 1  # check: Nagios WARNING (also: inventory valid with warnings)
    CRITICAL = 2  # check: Nagios CRITICAL
    UNKNOWN = 3  # check: Nagios UNKNOWN (the check itself could not decide)
    NOT_AVAILABLE = 4  # the command exists but is not available yet
    TARGET_MISSED = 10  # a drill ran but missed its RTO/RPO target
    PARTIAL = 11  # some hosts succeeded, some failed
    ABORTED = 12  # a precondition failed; nothing was changed
    ROLLBACK_FAILED = 13  # a drill's rollback failed: the cluster needs a person now
    REFUSED = 14  # a safety rule refused the action (e.g. a primary is still up)
    FAILED = 20  # the operation failed (a service, a host, a step)
    USAGE = 64  # bad command line (sysexits EX_USAGE)
    INTEGRITY = 65  # data failed an integrity check (audit chain, checksum)
    UNAVAILABLE = 69  # a required service or host could not be reached
    BUG = 70  # an unexpected exception: a bug in prontuario
    IO_ERROR = 74  # a file prontuario must write (the audit log) cannot take it (sysexits EX_IOERR)
    LOCKED = 75  # another run holds the lock (try again later)
    PERMISSION = 77  # a file's permissions are unsafe or insufficient
    CONFIG = 78  # the inventory (cluster.yaml) or another config is invalid
    INTERRUPTED = 130  # Ctrl-C / SIGINT

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "success; for checks, Nagios OK",
    ExitCode.WARNING: "check: Nagios WARNING; inventory valid with warnings",
    ExitCode.CRITICAL: "check: Nagios CRITICAL",
    ExitCode.UNKNOWN: "check: Nagios UNKNOWN (the check could not decide)",
    ExitCode.NOT_AVAILABLE: "the command group exists but is not available yet",
    ExitCode.TARGET_MISSED: "a drill ran but missed its RTO/RPO target",
    ExitCode.PARTIAL: "partial host failure: some hosts succeeded, some failed",
    ExitCode.ABORTED: "a precondition failed; nothing was changed",
    ExitCode.ROLLBACK_FAILED: "a rollback failed: the cluster needs attention now",
    ExitCode.REFUSED: "a safety rule refused the action",
    ExitCode.FAILED: "the operation failed",
    ExitCode.USAGE: "usage error (bad option, argument or combination)",
    ExitCode.INTEGRITY: "integrity check failed (audit chain, checksum)",
    ExitCode.UNAVAILABLE: "a required service or host could not be reached",
    ExitCode.BUG: "unexpected error: a bug in prontuario (see the debug log)",
    ExitCode.IO_ERROR: "a file prontuario must write (the audit log) cannot be written: nothing was changed",
    ExitCode.LOCKED: "another run holds the lock",
    ExitCode.PERMISSION: "unsafe or insufficient file permissions",
    ExitCode.CONFIG: "invalid inventory or configuration",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


class ProntuarioError(Exception):
    """An expected failure: one line for the user, one exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None, exit_code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def one_line(self) -> str:
        """The message the user sees (with the hint, if any, after a dash)."""
        return f"{self.message} — {self.hint}" if self.hint else self.message


class UsageError(ProntuarioError):
    exit_code = ExitCode.USAGE


class ConfigError(ProntuarioError):
    """The inventory or another config file is invalid; ``problems`` lists each one."""

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, problems: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.problems = list(problems or [])

    def one_line(self) -> str:
        if not self.problems:
            return super().one_line()
        return "\n".join([self.message, *("  " + p for p in self.problems)])


class PermissionProblem(ProntuarioError):
    exit_code = ExitCode.PERMISSION


class SecretError(ProntuarioError):
    exit_code = ExitCode.CONFIG
    missing = False  # the value is not there at all (unset, no such file, empty), rather than unreadable


class SecretMissing(SecretError):
    missing = True


class NotAvailableYet(ProntuarioError):
    exit_code = ExitCode.NOT_AVAILABLE


class IntegrityError(ProntuarioError):
    exit_code = ExitCode.INTEGRITY


class UnavailableError(ProntuarioError):
    """A host or service could not be reached within its timeout."""

    exit_code = ExitCode.UNAVAILABLE


class LockedError(ProntuarioError):
    exit_code = ExitCode.LOCKED


class RefusedError(ProntuarioError):
    exit_code = ExitCode.REFUSED


class AbortedError(ProntuarioError):
    exit_code = ExitCode.ABORTED


class OperationFailed(ProntuarioError):
    exit_code = ExitCode.FAILED

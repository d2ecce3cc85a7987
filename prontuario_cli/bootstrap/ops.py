"""pyinfra operations pyinfra does not ship, each with the fact that makes a second run a no-op.

- ``command_creates`` — a command run only while its ``creates`` path is missing;
- ``put_if_absent`` — a file written once (Redis and Sentinel rewrite theirs);
- ``ssh_key`` — the Mac-to-Mac key (model and document sync), made once, never replaced;
- ``pmset`` — a power setting (the Macs must never sleep), from ``pmset -g custom``;
- ``defaults`` — one macOS ``defaults`` value, compared as ``defaults read`` prints it;
- ``mac_check`` — FileVault and the firewall must be on: a check that fails the host
  with the reason when they are not, and never changes anything itself;
- ``launchd_job`` — bootstrap a rendered LaunchDaemon plist into launchd when the job
  is not loaded (``launchctl print system/LABEL``).

Facts parse the commands' output; tests feed them recorded output from a Mac.
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.facts.files import File

# --------------------------------------------------------------------------- facts


class PmsetSettings(FactBase):
    """``{setting: value}`` of the AC power profile (``pmset -g custom``); {} when there is no pmset."""

    def command(self) -> str:
        return "pmset -g custom 2>/dev/null || true"

    def process(self, output) -> dict[str, str]:
        settings: dict[str, str] = {}
        section = None
        for line in output:
            text = line.strip()
            if text.endswith(":"):
                section = text[:-1]
                continue
            parts = text.split()
            if len(parts) >= 2 and section in (None, "AC Power"):
                settings[parts[0]] = parts[1]
        return settings


class DefaultsValue(FactBase):
    """What ``defaults read DOMAIN KEY`` prints, or None when the key is not set."""

    def command(self, domain: str, key: str) -> str:
        return f"defaults read {shlex.quote(domain)} {shlex.quote(key)} 2>/dev/null || echo __prontuario_unset__"

    def process(self, output) -> str | None:
        text = "\n".join(output).strip()
        return None if text == "__prontuario_unset__" else text


class MacSecurity(FactBase):
    """``{"filevault": bool, "firewall": bool}`` from fdesetup and the application firewall."""

    def command(self) -> str:
        return "fdesetup status 2>&1; /usr/libexec/ApplicationFirewall/socketfilterfw --getglobalstate 2>&1; true"

    def process(self, output) -> dict[str, bool]:
        text = "\n".join(output)
        return {"filevault": "FileVault is On" in text, "firewall": "Firewall is enabled" in text or "State = 1" in text or "State = 2" in text}


class LaunchdLoaded(FactBase):
    """True when launchd has the system job LABEL loaded."""

    def command(self, label: str) -> str:
        return f"launchctl print system/{shlex.quote(label)} >/dev/null 2>&1 && echo loaded || echo absent"

    def process(self, output) -> bool:
        return "loaded" in output


# --------------------------------------------------------------------------- operations


@operation()
def command_creates(run: str, creates: str):
    if host.get_fact(File, path=creates) is None:
        yield run
    else:
        host.noop(f"{creates} exists")


@operation()
def put_if_absent(content: str, dest: str, mode: str, user: str | None = None):
    """A file written once: the service that owns it rewrites it afterwards (Redis, Sentinel)."""
    if host.get_fact(File, path=dest) is None:
        directory = dest.rsplit("/", 1)[0] or "/"
        yield f"mkdir -p {shlex.quote(directory)} && printf '%s' {shlex.quote(content)} > {shlex.quote(dest)} && chmod {shlex.quote(mode)} {shlex.quote(dest)}"
        if user:
            yield f"chown {shlex.quote(user)} {shlex.quote(dest)}"
    else:
        host.noop(f"{dest} exists (its service keeps it)")


@operation()
def ssh_key(path: str, comment: str = "prontuario"):
    if host.get_fact(File, path=path) is None:
        yield f"mkdir -p {shlex.quote(path.rsplit('/', 1)[0] or '/')} && ssh-keygen -q -t ed25519 -N '' -C {shlex.quote(comment)} -f {shlex.quote(path)}"
    else:
        host.noop(f"{path} exists (never replaced: the other Mac trusts it)")


@operation()
def pmset(setting: str, value: int):
    current = host.get_fact(PmsetSettings).get(setting)
    if current != str(value):
        yield f"pmset -a {shlex.quote(setting)} {int(value)}"
    else:
        host.noop(f"pmset {setting} is {value}")


def defaults_shown(kind: str, value: str) -> str:
    """How ``defaults read`` prints a value written with ``-KIND VALUE``."""
    if kind == "bool":
        return "1" if value.strip().lower() in ("1", "true", "yes") else "0"
    return value


@operation()
def defaults(domain: str, key: str, kind: str, value: str):
    if host.get_fact(DefaultsValue, domain=domain, key=key) != defaults_shown(kind, value):
        yield f"defaults write {shlex.quote(domain)} {shlex.quote(key)} -{kind} {shlex.quote(value)}"
    else:
        host.noop(f"{domain} {key} is {value}")


@operation(is_idempotent=True)
def mac_check(check: str):
    state = host.get_fact(MacSecurity)
    if not state.get(check):
        what = {"filevault": "FileVault is off: turn it on (fdesetup enable)", "firewall": "the firewall is off: turn it on (System Settings > Network > Firewall)"}[check]
        yield f"echo {shlex.quote(what)} >&2; exit 1"
    else:
        host.noop(f"{check} is on")


@operation()
def launchd_job(label: str, plist: str):
    if not host.get_fact(LaunchdLoaded, label=label):
        yield f"launchctl bootstrap system {shlex.quote(plist)}"
    else:
        host.noop(f"{label} is loaded")

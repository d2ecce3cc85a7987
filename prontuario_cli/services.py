"""Long-running services as launchd jobs (the Macs) and systemd units (a Debian node).

One description, :class:`Service`, rendered two ways; the inference servers (``serve
install``) and bootstrap write their units through here, so a Mac and the witness run
the same command line with the same restart and shutdown rules:

- kept alive (launchd ``KeepAlive``, systemd ``Restart=always``), restarted no faster
  than every ``throttle_s`` seconds (launchd ``ThrottleInterval``, systemd ``RestartSec``);
- stopped with SIGTERM and given ``stop_timeout_s`` to finish in-flight work before
  SIGKILL (launchd ``ExitTimeOut``, systemd ``TimeoutStopSec``);
- stdout and stderr appended to one log file.

A periodic job (``interval_s``: the document sync every 5 s) is not kept alive: launchd
starts it every ``StartInterval`` seconds, systemd through a timer unit beside it
(:func:`systemd_timer`) that starts the oneshot service ``interval_s`` after it last ran.
"""

from __future__ import annotations

import plistlib
import shlex
from dataclasses import dataclass, field

LABEL_PREFIX = "org.prontuario."


@dataclass(frozen=True)
class Service:
    name: str  # e.g. serve-llm: launchd label org.prontuario.serve-llm, unit prontuario-serve-llm.service
    description: str
    argv: tuple[str, ...]
    log: str
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    throttle_s: int = 10
    stop_timeout_s: int = 40
    working_dir: str | None = None
    interval_s: int | None = None  # a periodic job: started every interval_s seconds, not kept alive

    @property
    def label(self) -> str:
        return LABEL_PREFIX + self.name

    @property
    def plist_name(self) -> str:
        return self.label + ".plist"

    @property
    def unit_name(self) -> str:
        return f"prontuario-{self.name}.service"

    @property
    def timer_name(self) -> str:
        return f"prontuario-{self.name}.timer"


def launchd_job(service: Service) -> dict:
    """The launchd job (for /Library/LaunchDaemons) as a dict."""
    job: dict = {
        "Label": service.label,
        "ProgramArguments": list(service.argv),
        "RunAtLoad": True,
        "KeepAlive": service.interval_s is None,
        "ThrottleInterval": service.throttle_s if service.interval_s is None else min(service.throttle_s, service.interval_s),
        "ExitTimeOut": service.stop_timeout_s,
        "StandardOutPath": service.log,
        "StandardErrorPath": service.log,
        "ProcessType": "Interactive",  # not throttled to background QoS: these serve clinicians
    }
    if service.interval_s is not None:
        job["StartInterval"] = service.interval_s
    if service.env:
        job["EnvironmentVariables"] = dict(sorted(service.env.items()))
    if service.user:
        job["UserName"] = service.user
    if service.working_dir:
        job["WorkingDirectory"] = service.working_dir
    return job


def plist_text(service: Service) -> str:
    return plistlib.dumps(launchd_job(service), sort_keys=False).decode("utf-8")


def check_plist(text: str) -> dict:
    """Parse a rendered plist back (what launchd will read); ValueError when it does not parse."""
    try:
        job = plistlib.loads(text.encode("utf-8"))
    except Exception as exc:  # plistlib raises several types for bad XML
        raise ValueError(f"not a valid plist: {exc}") from None
    if not isinstance(job, dict) or not job.get("Label") or not job.get("ProgramArguments"):
        raise ValueError("a launchd job needs Label and ProgramArguments")
    return job


def systemd_unit(service: Service) -> str:
    """The systemd unit (for /etc/systemd/system)."""
    lines = [
        "# Rendered by prontuario from the inventory; edits are overwritten.",
        "[Unit]",
        f"Description={service.description}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple" if service.interval_s is None else "Type=oneshot",
        f"ExecStart={shlex.join(service.argv)}",
        *(("Restart=always", f"RestartSec={service.throttle_s}") if service.interval_s is None else ()),
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={service.stop_timeout_s}",
        f"StandardOutput=append:{service.log}",
        f"StandardError=append:{service.log}",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ]
    if service.user:
        lines.append(f"User={service.user}")
    if service.working_dir:
        lines.append(f"WorkingDirectory={service.working_dir}")
    for key, value in sorted(service.env.items()):
        lines.append(f"Environment={shlex.quote(f'{key}={value}')}")
    if service.interval_s is None:
        lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def systemd_timer(service: Service) -> str:
    """The timer that starts a periodic job's oneshot unit every ``interval_s`` seconds."""
    if service.interval_s is None:
        raise ValueError(f"{service.name} is not a periodic job")
    return "\n".join([
        "# Rendered by prontuario from the inventory; edits are overwritten.",
        "[Unit]",
        f"Description={service.description} (every {service.interval_s} s)",
        "",
        "[Timer]",
        "OnBootSec=30s",
        f"OnUnitActiveSec={service.interval_s}s",
        "AccuracySec=1s",
        f"Unit={service.unit_name}",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])

"""Telling people: run the inventory's ``cloud.notify_command`` with the event as JSON on stdin.

The command is an argv list, or a string split like a shell would (``shlex``) but run
**without** a shell. It gets 30 s; a non-zero exit or a timeout is an error (the
step is then retried by ``--resume``). Events::

    {"event": "emergency-mode-on" | "emergency-mode-off", "drill": false,
     "instance": ..., "project": ..., "reason": ..., "run_id": ..., "at": ISO, ...}
"""

from __future__ import annotations

import json
import shlex
import subprocess

from prontuario_cli.errors import OperationFailed

TIMEOUT_S = 30.0


def notify_argv(command) -> list[str] | None:
    if command is None:
        return None
    return shlex.split(command) if isinstance(command, str) else list(command)


def notify(command, event: dict, timeout_s: float = TIMEOUT_S) -> str:
    """Run the notification command; return what happened, in one line."""
    argv = notify_argv(command)
    if not argv:
        return "no cloud.notify_command in the inventory: tell the users yourself"
    try:
        result = subprocess.run(
            argv, input=json.dumps(event, sort_keys=True), capture_output=True, text=True, timeout=timeout_s, shell=False
        )
    except FileNotFoundError:
        raise OperationFailed(f"cloud.notify_command: {argv[0]} not found", hint="fix the path in the inventory, then --resume") from None
    except PermissionError:
        raise OperationFailed(f"cloud.notify_command: {argv[0]} is not executable", hint="chmod +x it, then --resume") from None
    except subprocess.TimeoutExpired:
        raise OperationFailed(f"cloud.notify_command did not finish within {timeout_s:g} s", hint="tell the users yourself; --resume retries") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        raise OperationFailed(f"cloud.notify_command exited {result.returncode}: {tail[0][:200]}", hint="tell the users yourself; --resume retries")
    return f"{argv[0]} exited 0" + (f": {result.stdout.strip().splitlines()[0][:200]}" if result.stdout.strip() else "")

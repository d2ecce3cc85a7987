"""Every read command, run against the real lab with --format json, prints JSON that parses.

The list is derived from the command tree (a read command is one without --yes), so a
new read command is covered the day it is added.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import run
from tests.test_cli import walk_commands

# Arguments some read commands need; None: not a report. "lab logs" prints a log file itself,
# and "serve llm|stt|face" are servers that run in the foreground until stopped (tested in
# tests/serve, each started as a real process).
# None: not a read command of a lab (the servers run; bootstrap facts needs an sshd on the
# node: it is tested against the loopback sshd in tests/bootstrap).
EXTRA_ARGS = {("lab", "logs"): None, ("serve", "llm"): None, ("serve", "stt"): None, ("serve", "face"): None, ("bootstrap", "facts"): None}


def read_commands() -> list[tuple[str, ...]]:
    found = []
    for path, command in walk_commands():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        group = getattr(command, "list_commands", None) is not None
        if group and (not path or getattr(command, "commands", None) or "--format" not in options):
            continue  # a group of commands (a group that runs by itself and renders, like status, is a command)
        if "--yes" not in options:
            found.append(path)
    return found


def test_the_read_commands_are_known():
    assert {("status",), ("inventory", "check"), ("replication", "check"), ("gcp", "status"), ("lab", "status"), ("audit", "verify")} <= set(read_commands())


@pytest.mark.lab
def test_every_read_command_gives_parseable_json(lab):
    checked = []
    for path in read_commands():
        extra = EXTRA_ARGS.get(path, [])
        if extra is None:
            continue
        result = run("-i", str(lab.inventory_path), *path, *extra, "--format", "json")
        assert result.code in (0, 1, 2, 3), (path, result.code, result.err)
        assert isinstance(json.loads(result.out), (dict, list)), path
        checked.append(" ".join(path))
    assert len(checked) >= 9, checked

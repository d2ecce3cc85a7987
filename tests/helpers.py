"""Running the CLI in-process (fast) or as a real subprocess (for imports and completion)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "prontuario_cli" / "example_cluster.yaml"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


class _Stream(io.StringIO):
    def __init__(self, tty: bool = False, text: str = ""):
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run(*args: str, tty: bool = False, stdin: str = "") -> Result:
    """Run ``prontuario ARGS`` in this process; return exit code, stdout, stderr."""
    from prontuario_cli.cli.common import Env
    from prontuario_cli.cli.main import main

    out, err = _Stream(tty), _Stream(tty)
    env = Env(stdout=out, stderr=err, stdin=_Stream(tty, stdin))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # --help, --version
        code = main(list(args), env)
    return Result(code, out.getvalue(), err.getvalue())


def run_process(*args: str, env: dict | None = None, timeout: float = 60) -> Result:
    """Run ``python -m prontuario_cli ARGS`` as a real process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "prontuario_cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=str(REPO),
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def poll(condition, within: float, what: str, every: float = 0.2):
    """Call ``condition`` until it returns something truthy; fail the test after ``within`` s."""
    import time

    import pytest

    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"{what} not seen within {within} s")
        time.sleep(every)

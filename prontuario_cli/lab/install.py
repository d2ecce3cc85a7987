"""``lab install``: the Debian and PyPI packages the lab needs, from one list.

The list lives in the repository's ``install.sh`` (APT_PACKAGES, and the venv's
``pip install -e .[test]``); this module runs that script rather than keeping a
second copy of the list.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.errors import OperationFailed, PermissionProblem, UnavailableError
from prontuario_cli.report import Table


@dataclass(frozen=True)
class InstallReport:
    script: str
    apt_packages: tuple[str, ...]
    dry_run: bool
    returncode: int | None = None

    def tables(self) -> list[Table]:
        verdict = "dry run" if self.dry_run else ("ok" if self.returncode == 0 else f"exit {self.returncode}")
        return [Table(f"lab install ({verdict}) — {self.script}", ("debian package",), tuple((p,) for p in self.apt_packages))]


def install_script() -> Path:
    """install.sh at the top of the repository prontuario runs from."""
    path = Path(__file__).resolve().parents[2] / "install.sh"
    if not path.is_file():
        raise UnavailableError(f"install.sh not found next to prontuario_cli ({path})", hint="run it from a clone of the repository")
    return path


def apt_packages(script: Path) -> tuple[str, ...]:
    """The APT_PACKAGES=( ... ) array of install.sh, comments dropped."""
    text = script.read_text(encoding="utf-8")
    match = re.search(r"APT_PACKAGES=\((.*?)\n\)", text, re.S)
    if not match:
        return ()
    words = []
    for line in match.group(1).splitlines():
        words += line.split("#", 1)[0].split()
    return tuple(words)


def install(dry_run: bool = False, apt: bool = True) -> InstallReport:
    script = install_script()
    packages = apt_packages(script)
    if dry_run:
        return InstallReport(str(script), packages, True)
    if os.geteuid() != 0:
        raise PermissionProblem("lab install needs root (it installs Debian packages)", hint=f"run: sudo {script}")
    argv = ["bash", str(script)] + ([] if apt else ["--no-apt"])
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=1800)
    if result.returncode != 0:
        raise OperationFailed(f"{script} failed with exit {result.returncode}", hint="its messages are above")
    return InstallReport(str(script), packages, False, result.returncode)

"""Running the real ``promtool`` on rendered rules: ``check rules`` and ``test rules``.

promtool is required: CI installs it (Debian package ``prometheus``). When it is
missing the tests fail, they do not skip, so a green run always means promtool
accepted the rules.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from prontuario_cli.inventory import parse_inventory

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_INVENTORY = REPO / "cluster.example.yaml"


def inventory(alert_s: float | None = None):
    """The repository's example inventory, optionally with another replication-lag threshold."""
    text = EXAMPLE_INVENTORY.read_text(encoding="utf-8")
    if alert_s is not None:
        changed = text.replace("alert_s: 10,", f"alert_s: {alert_s},")
        assert changed != text, "the example inventory no longer has 'alert_s: 10,'"
        text = changed
    return parse_inventory(text, str(EXAMPLE_INVENTORY))


def promtool_path() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        pytest.fail("promtool is not installed: the alert rules cannot be checked (apt-get install prometheus)", pytrace=False)
    return found


@dataclass
class Promtool:
    code: int
    out: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def promtool(*args: str, cwd: Path) -> Promtool:
    proc = subprocess.run(
        [promtool_path(), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    return Promtool(proc.returncode, proc.stdout + proc.stderr)


def check_rules(rules: dict, directory: Path, name: str = "rules.yaml") -> Promtool:
    """``promtool check rules`` on ``rules`` (a document with ``groups:``)."""
    path = directory / name
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return promtool("check", "rules", str(path), cwd=directory)


def groups_of_manifest(manifest: dict) -> dict:
    """The rules-file document inside a PrometheusRule manifest."""
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    return {"groups": manifest["spec"]["groups"]}


def run_rule_tests(rules: dict, tests: list[dict], directory: Path, evaluation_interval: str = "5s") -> Promtool:
    """``promtool test rules`` with ``tests`` (each: interval, input_series, alert_rule_test)."""
    rules_path = directory / "rules.yaml"
    rules_path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    unit = {"rule_files": [rules_path.name], "evaluation_interval": evaluation_interval, "tests": tests}
    unit_path = directory / "rules_test.yaml"
    unit_path.write_text(yaml.safe_dump(unit, sort_keys=False), encoding="utf-8")
    return promtool("test", "rules", unit_path.name, cwd=directory)


def rule(rules: dict, alert: str) -> dict:
    """One alerting rule of a rules document, by name."""
    for group in rules["groups"]:
        for item in group["rules"]:
            if item.get("alert") == alert:
                return item
    raise KeyError(alert)


def expected_alert(rules: dict, alert: str, series_labels: dict, *, instance: str = "", value: str = "") -> dict:
    """What promtool should report for ``alert``: series labels + rule labels, annotations expanded."""
    item = rule(rules, alert)
    substitutions = {
        "{{ $labels.instance }}": instance,
        "{{ $value | humanizePercentage }}": f"{value}%",
        "{{ $value }}": value,
    }
    annotations = {}
    for key, text in item["annotations"].items():
        for template, replacement in substitutions.items():
            text = text.replace(template, replacement)
        assert "{{" not in text, f"unexpanded template left in {alert}.{key}: {text}"
        annotations[key] = text
    return {"exp_labels": {**series_labels, **item["labels"]}, "exp_annotations": annotations}

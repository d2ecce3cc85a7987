"""``prontuario monitor``: render the Prometheus alert rules from the inventory."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options

app = typer.Typer(
    help=(
        "Render the Prometheus alert rules from the inventory's thresholds.\n\n"
        "Example: prontuario -i cluster.yaml monitor rules --output /etc/prometheus/rules/prontuario.yaml"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


class Kind(str, Enum):
    rules = "rules"
    prometheusrule = "prometheusrule"


@app.command("rules")
@output_options
def rules(
    kind: Kind = typer.Option(
        Kind.rules, "--kind", "-k", help="rules: a Prometheus rules file; prometheusrule: a Prometheus Operator manifest."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write the YAML to FILE (atomically) instead of stdout."
    ),
    namespace: Optional[str] = typer.Option(
        None, "--namespace", "-n", metavar="NS", help="metadata.namespace of the PrometheusRule (--kind prometheusrule)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --output: say what would be written; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace an existing --output file without asking."),
) -> None:
    """Render the alerts MacStudioDown, DatabaseReplicationLag, GCPFallbackActivated and HAClusterDegraded.

    The replication-lag threshold is the inventory's targets.replication_lag.alert_s.
    Without --output the YAML goes to stdout (--json: the same document as JSON;
    --format table: a summary). With --output FILE the YAML is written to FILE
    atomically (an existing, different FILE is replaced only after confirmation or
    --yes) and stdout gets what was done.

    Example: prontuario -i cluster.yaml monitor rules --kind prometheusrule --namespace monitoring -o prontuario-alerts.yaml
    """
    from prontuario_cli.errors import UsageError
    from prontuario_cli.monitor.rules import build_rule_group, rules_document, to_yaml

    env = get_env()
    inventory = env.inventory()
    document = rules_document(inventory, kind.value, namespace=namespace)

    if output is None:
        if dry_run or yes:
            raise UsageError("--dry-run and --yes only apply with --output FILE")
        if env.format is None:
            env.stdout.write(to_yaml(document, source=inventory.source))
            env.stdout.flush()
        elif env.format == "json":
            emit(document)
        elif env.format == "table":
            emit(build_rule_group(inventory))
        else:
            raise UsageError(f"--format {env.format} does not apply to monitor rules", hint="use table or json, or no --format for YAML")
        return

    _write(output, to_yaml(document, source=inventory.source), kind.value, build_rule_group(inventory), dry_run=dry_run, yes=yes)


def _write(path: Path, text: str, kind: str, group, *, dry_run: bool, yes: bool) -> None:
    from prontuario_cli.monitor.files import RulesFileReport, plan_write, write_atomically

    env = get_env()
    alerts = tuple(rule.alert for rule in group.rules)
    size = len(text.encode("utf-8"))
    with audited("monitor rules", {"output": str(path), "kind": kind}, dry_run=dry_run) as details:
        action = plan_write(path, text)
        if dry_run:
            details["action"] = f"would {action}"
            env.say(f"dry run: would {action} {path} ({len(alerts)} alerts); nothing was changed")
            emit(RulesFileReport(str(path), kind, alerts, f"would {action}", size))
            return
        if action == "replace":
            confirm(f"replace {path} with the rendered alert rules?", yes=yes)
        if action != "unchanged":
            write_atomically(path, text)
        details["action"] = action
    env.say(f"{path} is already up to date" if action == "unchanged" else f"wrote {path} ({len(alerts)} alerts)")
    emit(RulesFileReport(str(path), kind, alerts, action, size))

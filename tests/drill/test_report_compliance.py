"""A period with no drill at all is never 'compliant', however short it is."""

from __future__ import annotations

import datetime as dt

from prontuario_cli.drill import history as h
from prontuario_cli.errors import ExitCode


def test_no_drill_in_the_period_is_not_compliant():
    until = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.timezone.utc)
    report = h.compliance_report([], since=until - dt.timedelta(days=1), until=until)
    assert not report.compliant and report.exit_code() == ExitCode.TARGET_MISSED
    assert any("no drill ran" in p for p in report.problems)

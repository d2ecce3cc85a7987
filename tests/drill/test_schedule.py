"""``drill schedule``: the brief's cadence as cron.d lines and launchd plists."""

from __future__ import annotations

import json
import plistlib
import re
import shlex

import pytest

from prontuario_cli.drill.schedule import build_schedule, parse_weekday
from prontuario_cli.errors import ExitCode, UsageError
from tests.helpers import REPO, run

EXE = "/opt/prontuario/venv/bin/prontuario"
CRON_LINE = re.compile(r"^(?P<m>\d{1,2}) (?P<h>\d{1,2}) (?P<dom>\*|\d{1,2}) (?P<mon>\*) (?P<dow>\*|[0-6]) (?P<user>[a-z_][a-z0-9_.-]*) (?P<cmd>.+)$")


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch):
    """Piped tables are as wide as $COLUMNS; keep rows on one line whatever another test set."""
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture
def inventory(tmp_path):
    text = (REPO / "cluster.example.yaml").read_text()
    path = tmp_path / "cluster.yaml"
    path.write_text(text.rstrip("\n") + f"\n  reports_dir: {tmp_path / 'reports'}\n")
    return str(path)


def cron_lines(text: str) -> list[re.Match]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#") and "=" not in line.split(" ", 1)[0]]
    matches = [CRON_LINE.match(line) for line in lines]
    assert all(matches), lines
    return matches


def split_plists(text: str) -> dict[str, dict]:
    """The printed documents, parsed back with plistlib, by the file named in each separator."""
    documents: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        named = re.fullmatch(r"# ==> (\S+\.plist) <==", line)
        if named:
            current = named.group(1)
            documents[current] = []
        elif current is not None:
            documents[current].append(line)
    return {name: plistlib.loads("\n".join(lines).encode()) for name, lines in documents.items()}


def audit_entries(state):
    path = state / "audit.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if "outcome" in e] if path.exists() else []  # outcomes, not intents


def test_cron_file_has_the_cadence_staggered(inventory):
    result = run("-i", inventory, "drill", "schedule", "--cron", "--executable", EXE, "--user", "prontuario", "--mailto", "oncall@hospital.example")
    assert result.code == 0, result.err
    text = result.out
    assert "MAILTO=oncall@hospital.example" in text.splitlines()
    assert "drill lock" in text and "Exit codes: 0 passed, 10 target missed" in text.replace("\n# ", " ")
    health, failover, cloud, dcs = cron_lines(text)
    assert (health["m"], health["h"], health["dom"], health["dow"]) == ("15", "3", "*", "*")
    assert (failover["m"], failover["h"], failover["dom"], failover["dow"]) == ("45", "3", "*", "2")
    assert (cloud["m"], cloud["h"], cloud["dom"], cloud["dow"]) == ("30", "4", "1", "*")
    # the DCS drill: the cloud drill's day, once the cloud drill's 2 h window is over
    assert (dcs["m"], dcs["h"], dcs["dom"], dcs["dow"]) == ("30", "6", "1", "*")
    for match, drill in zip((health, failover, cloud, dcs), ("health", "failover", "cloud", "dcs")):
        assert match["user"] == "prontuario"
        cmd = match["cmd"]
        assert cmd.startswith(f"NO_COLOR=1 {EXE} -i {inventory} drill {drill} ") and cmd.endswith(" --yes --format table 2>&1")
    assert "drill failover --mode kill --yes" in failover["cmd"]
    assert "drill dcs --mode quorum --yes" in dcs["cmd"]
    # every command line is preceded by a comment saying what it is
    lines = text.splitlines()
    for match in (health, failover, cloud, dcs):
        assert lines[lines.index(match.group(0)) - 1].startswith("# ")


def test_cron_options_time_weekday_day_mode_and_default_user(inventory, tmp_path, monkeypatch):
    monkeypatch.setenv("USER", "oncall")
    monkeypatch.setenv("LOGNAME", "oncall")
    relative = "cluster.yaml"
    monkeypatch.chdir(tmp_path)
    result = run(
        "-i", relative, "drill", "schedule", "--cron", "--at", "01:50", "--weekday", "fri", "--day", "15",
        "--failover-mode", "switchover", "--executable", EXE,
    )
    assert result.code == 0, result.err
    health, failover, cloud, dcs = cron_lines(result.out)
    assert (health["h"], health["m"]) == ("1", "50")
    assert (failover["h"], failover["m"], failover["dow"]) == ("2", "20", "5")
    assert (cloud["h"], cloud["m"], cloud["dom"]) == ("3", "5", "15")
    assert (dcs["h"], dcs["m"], dcs["dom"]) == ("5", "5", "15")
    assert {m["user"] for m in (health, failover, cloud, dcs)} == {"oncall"}
    assert f"-i {tmp_path / 'cluster.yaml'} " in health["cmd"]  # made absolute
    assert "--mode switchover" in failover["cmd"]
    assert "MAILTO" not in result.out


def test_default_executable_is_an_absolute_prontuario(inventory):
    result = run("-i", inventory, "drill", "schedule", "--json", "--cron")
    assert result.code == 0, result.err
    argv = result.json()["drills"][0]["argv"]
    assert argv[0].startswith("/") and argv[0].endswith("prontuario")


def test_paths_with_spaces_and_percent_are_quoted_for_cron():
    plan = build_schedule(executable=EXE, inventory="/etc/prontuario/my cluster%.yaml")
    cmd = CRON_LINE.match(plan.drills[0].cron_line)["cmd"]
    assert r"'/etc/prontuario/my cluster\%.yaml'" in cmd
    assert shlex.split(cmd.replace(r"\%", "%"))[3] == "/etc/prontuario/my cluster%.yaml"


def test_launchd_plists_round_trip(inventory):
    result = run("-i", inventory, "drill", "schedule", "--launchd", "--executable", EXE, "--weekday", "3", "--user", "prontuario")
    assert result.code == 0, result.err
    assert "drill lock" in result.out
    jobs = split_plists(result.out)
    assert list(jobs) == [
        "org.prontuario.drill-health.plist", "org.prontuario.drill-failover.plist", "org.prontuario.drill-cloud.plist", "org.prontuario.drill-dcs.plist",
    ]
    health = jobs["org.prontuario.drill-health.plist"]
    assert health["Label"] == "org.prontuario.drill-health"
    assert health["ProgramArguments"] == [EXE, "-i", inventory, "drill", "health", "--yes", "--format", "table"]
    assert health["StartCalendarInterval"] == {"Hour": 3, "Minute": 15}
    assert health["StandardOutPath"] == health["StandardErrorPath"] == "/var/log/prontuario/drill-health.log"
    assert health["EnvironmentVariables"] == {"NO_COLOR": "1"} and health["UserName"] == "prontuario"
    failover = jobs["org.prontuario.drill-failover.plist"]
    assert failover["StartCalendarInterval"] == {"Hour": 3, "Minute": 45, "Weekday": 3}
    assert failover["ProgramArguments"][4:7] == ["failover", "--mode", "kill"]
    assert jobs["org.prontuario.drill-cloud.plist"]["StartCalendarInterval"] == {"Hour": 4, "Minute": 30, "Day": 1}
    dcs = jobs["org.prontuario.drill-dcs.plist"]
    assert dcs["StartCalendarInterval"] == {"Hour": 6, "Minute": 30, "Day": 1}
    assert dcs["ProgramArguments"][4:7] == ["dcs", "--mode", "quorum"]


def test_json_and_table_forms(inventory):
    data = run("-i", inventory, "drill", "schedule", "--cron", "--executable", EXE, "--json").json()
    assert [d["drill"] for d in data["drills"]] == ["health", "failover", "cloud", "dcs"]
    assert data["drills"][1]["when"] == "every Tuesday at 03:45"
    assert CRON_LINE.match(data["drills"][2]["cron_line"])
    table = run("-i", inventory, "drill", "schedule", "--launchd", "--executable", EXE, "-f", "table")
    assert table.code == 0 and "every Tuesday at 03:45" in table.out


def test_output_dir_writes_a_plist_per_drill_with_an_audit_entry(inventory, tmp_path, isolated_state):
    target = tmp_path / "LaunchDaemons"
    target.mkdir()
    args = ("-i", inventory, "drill", "schedule", "--launchd", "--executable", EXE, "--output-dir", str(target))

    dry = run(*args, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    assert list(target.iterdir()) == []
    assert {f["action"] for f in dry.json()["files"]} == {"would create"}
    assert audit_entries(isolated_state)[-1]["outcome"] == "dry-run"

    refused = run(*args, "--json")  # no terminal and no --yes
    assert refused.code == ExitCode.USAGE and list(target.iterdir()) == []

    wrote = run(*args, "--yes", "--json")
    assert wrote.code == 0, wrote.err
    names = sorted(p.name for p in target.iterdir())
    assert names == [
        "org.prontuario.drill-cloud.plist", "org.prontuario.drill-dcs.plist", "org.prontuario.drill-failover.plist", "org.prontuario.drill-health.plist",
    ]
    job = plistlib.loads((target / "org.prontuario.drill-cloud.plist").read_bytes())
    assert job["ProgramArguments"][4] == "cloud" and job["StartCalendarInterval"]["Day"] == 1
    entry = audit_entries(isolated_state)[-1]
    assert entry["command"] == "drill schedule" and entry["outcome"] == "ok"
    assert set(entry["details"]["files"].values()) == {"create"}

    again = run(*args, "--json")  # nothing to change: no question asked
    assert again.code == 0 and {f["action"] for f in again.json()["files"]} == {"unchanged"}


@pytest.mark.parametrize(
    "extra, message",
    [
        ((), "choose one of --cron or --launchd"),
        (("--cron", "--launchd"), "choose one of --cron or --launchd"),
        (("--cron", "--at", "23:30"), "after midnight"),
        (("--cron", "--at", "3pm"), "not a time of day"),
        (("--cron", "--failover-mode", "explode"), "--failover-mode 'explode'"),
        (("--cron", "--weekday", "someday"), "not a weekday"),
        (("--cron", "--yes"), "only apply with --output-dir"),
        (("--cron", "--output-dir", "/tmp"), "--launchd only"),
        (("--launchd", "--mailto", "a@b"), "--cron only"),
        (("--cron", "--inventory-path", "/etc/x.yaml", "--executable", "bin/prontuario"), "not an absolute path"),
    ],
)
def test_usage_errors(inventory, extra, message):
    result = run("-i", inventory, "drill", "schedule", *extra)
    assert result.code == ExitCode.USAGE and message in result.err, result.err


def test_day_out_of_range_is_refused(inventory):
    assert run("-i", inventory, "drill", "schedule", "--cron", "--day", "31").code == ExitCode.USAGE


def test_parse_weekday():
    assert [parse_weekday(t) for t in ("tue", "Tuesday", "2", "0", "7", "sun", "SAT")] == [2, 2, 2, 0, 0, 0, 6]
    with pytest.raises(UsageError):
        parse_weekday("t")


def test_inventory_path_is_embedded_without_loading_it():
    from tests.helpers import run as run_cli

    result = run_cli("drill", "schedule", "--cron", "--inventory-path", "/etc/prontuario/cluster.yaml", "--executable", EXE)
    assert result.code == 0, result.err
    assert all("-i /etc/prontuario/cluster.yaml drill" in m["cmd"] for m in cron_lines(result.out))


def test_the_dcs_drill_starts_after_the_cloud_drills_window_and_before_midnight():
    from prontuario_cli.drill.schedule import CADENCE

    offsets = {drill: offset for drill, _, offset, _ in CADENCE}
    assert offsets["dcs"] >= offsets["cloud"] + 120  # the cloud drill is allowed 2 h
    plan = build_schedule(executable=EXE, inventory="/etc/prontuario/cluster.yaml", at="20:44", day=9)
    dcs = plan.drills[-1]
    assert (dcs.drill, dcs.hour, dcs.minute, dcs.day, dcs.cadence) == ("dcs", 23, 59, 9, "monthly")
    with pytest.raises(UsageError, match="would start the dcs drill after midnight") as refused:
        build_schedule(executable=EXE, inventory="/etc/prontuario/cluster.yaml", at="20:45")
    assert "--at 20:44 or earlier" in refused.value.hint

"""The macOS operations and their facts, against command output recorded on a Mac Studio (no Mac here).

Each fact parses what the command prints; each operation is run the way pyinfra runs it
(its generator, under a host whose facts are the recorded ones): it yields the command
that fixes the difference, or nothing at all when the Mac already is as asked — what
makes a second bootstrap run a no-op.
"""

from __future__ import annotations

import pytest

from prontuario_cli.bootstrap import ops

PMSET_CUSTOM = """Battery Power:
 sleep                1
 displaysleep         2
AC Power:
 Sleep On Power Button 1
 autorestart          1
 womp                 1
 sleep                0
 disksleep            0
 displaysleep         10
"""

FDESETUP_ON = "FileVault is On."
FDESETUP_OFF = "FileVault is Off."
FIREWALL_ON = "Firewall is enabled. (State = 1)"
FIREWALL_OFF = "Firewall is disabled. (State = 0)"


class RecordedHost:
    """What pyinfra's ``host`` gives an operation: facts (from recorded output) and noop()."""

    name = "mac-studio-1"

    def __init__(self, outputs: dict[type, str]):
        self.outputs = outputs
        self.noops: list[str] = []

    def get_fact(self, fact_cls, **kwargs):
        fact = fact_cls()
        command = fact.command(**kwargs) if kwargs else fact.command()
        assert command  # every fact names the command it runs on the Mac
        if fact_cls not in self.outputs:
            return fact.process([])
        return fact.process(self.outputs[fact_cls].splitlines())

    def noop(self, text: str) -> None:
        self.noops.append(text)


def commands_of(operation, host: RecordedHost, **kwargs) -> list[str]:
    from pyinfra.context import ctx_host

    with ctx_host.use(host):
        return [str(c) for c in operation._inner(**kwargs)]


def test_pmset_reads_the_ac_profile_not_the_battery_one():
    settings = ops.PmsetSettings().process(PMSET_CUSTOM.splitlines())
    assert settings["sleep"] == "0" and settings["displaysleep"] == "10" and settings["autorestart"] == "1"


@pytest.mark.parametrize("setting, value, expected", [("sleep", 0, []), ("displaysleep", 0, ["pmset -a displaysleep 0"]), ("powernap", 0, ["pmset -a powernap 0"])])
def test_pmset_changes_only_what_differs(setting, value, expected):
    host = RecordedHost({ops.PmsetSettings: PMSET_CUSTOM})
    assert commands_of(ops.pmset, host, setting=setting, value=value) == expected
    assert bool(host.noops) == (expected == [])


def test_defaults_compares_values_as_defaults_read_prints_them():
    unset = RecordedHost({ops.DefaultsValue: "__prontuario_unset__"})
    assert commands_of(ops.defaults, unset, domain="/Library/Preferences/com.apple.SoftwareUpdate", key="AutomaticallyInstallMacOSUpdates",
                       kind="bool", value="false") == ["defaults write /Library/Preferences/com.apple.SoftwareUpdate AutomaticallyInstallMacOSUpdates -bool false"]
    already = RecordedHost({ops.DefaultsValue: "0"})  # a bool is printed as 0 / 1
    assert commands_of(ops.defaults, already, domain="/Library/Preferences/com.apple.SoftwareUpdate", key="AutomaticallyInstallMacOSUpdates",
                       kind="bool", value="false") == []
    other = RecordedHost({ops.DefaultsValue: "30"})
    assert commands_of(ops.defaults, other, domain="com.apple.screensaver", key="idleTime", kind="int", value="0") == [
        "defaults write com.apple.screensaver idleTime -int 0"]


@pytest.mark.parametrize("recorded, filevault, firewall", [
    (f"{FDESETUP_ON}\n{FIREWALL_ON}", True, True), (f"{FDESETUP_OFF}\n{FIREWALL_ON}", False, True),
    (f"{FDESETUP_ON}\n{FIREWALL_OFF}", True, False), ("fdesetup: command not found\n", False, False)])
def test_security_fact_reads_filevault_and_the_firewall(recorded, filevault, firewall):
    assert ops.MacSecurity().process(recorded.splitlines()) == {"filevault": filevault, "firewall": firewall}


def test_a_security_check_that_fails_says_why_and_changes_nothing():
    off = RecordedHost({ops.MacSecurity: f"{FDESETUP_OFF}\n{FIREWALL_ON}"})
    [command] = commands_of(ops.mac_check, off, check="filevault")
    assert command.endswith("exit 1") and "FileVault is off" in command and "fdesetup enable" in command
    assert commands_of(ops.mac_check, off, check="firewall") == []


def test_a_launchd_job_is_bootstrapped_only_when_not_loaded():
    loaded = RecordedHost({ops.LaunchdLoaded: "loaded"})
    assert commands_of(ops.launchd_job, loaded, label="org.prontuario.patroni", plist="/Library/LaunchDaemons/org.prontuario.patroni.plist") == []
    absent = RecordedHost({ops.LaunchdLoaded: "absent"})
    assert commands_of(ops.launchd_job, absent, label="org.prontuario.patroni", plist="/Library/LaunchDaemons/org.prontuario.patroni.plist") == [
        "launchctl bootstrap system /Library/LaunchDaemons/org.prontuario.patroni.plist"]

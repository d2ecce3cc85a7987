"""``bootstrap facts NODE``: what pyinfra sees on a node, read through the same connection bootstrap uses."""

from __future__ import annotations

from dataclasses import dataclass

from prontuario_cli.errors import PermissionProblem, UnavailableError
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Table


@dataclass(frozen=True)
class NodeFacts:
    node: str
    facts: dict

    def tables(self) -> list[Table]:
        return [Table(f"what pyinfra sees on {self.node}", ("fact", "value"), [(k, "" if v is None else str(v)) for k, v in self.facts.items()])]


def gather(inventory: Inventory, name: str, *, accept_new: bool = False) -> NodeFacts:
    from pyinfra.api import Config, State
    from pyinfra.api import Inventory as PyinfraInventory
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.facts.server import Arch, Hostname, Kernel, Os, OsVersion, User, Which

    from prontuario_cli.bootstrap.engine import _connect_problem, _pyinfra_host_data
    from prontuario_cli.bootstrap.ops import MacSecurity, PmsetSettings

    node = inventory.node(name)
    state = State(inventory=PyinfraInventory(([(node.name, _pyinfra_host_data(node, accept_new))], {})), config=Config(CONNECT_TIMEOUT=10))
    problems: list[str] = []

    from pyinfra.api import BaseStateCallback

    class Callbacks(BaseStateCallback):
        @staticmethod
        def host_connect_error(state, host, error):
            problems.append(str(error))

    state.add_callback_handler(Callbacks())
    try:
        connect_all(state)
    except PyinfraError as exc:
        problems.append(str(exc))
    host = next(iter(state.activated_hosts), None)
    if host is None:
        problem = _connect_problem(problems[0] if problems else "could not connect")
        refused = PermissionProblem if problem.startswith(("HOST KEY", "host key")) else UnavailableError
        raise refused(f"{node.name} ({node.address}:{node.ssh.port}): {problem}")
    try:
        facts = {
            "os": host.get_fact(Os), "os version": host.get_fact(OsVersion), "kernel": host.get_fact(Kernel), "arch": host.get_fact(Arch),
            "hostname": host.get_fact(Hostname), "user": host.get_fact(User), "python3": host.get_fact(Which, command="python3"),
            "rsync": host.get_fact(Which, command="rsync"), "brew": host.get_fact(Which, command="brew"),
            "apt-get": host.get_fact(Which, command="apt-get"), "systemctl": host.get_fact(Which, command="systemctl"),
            "launchctl": host.get_fact(Which, command="launchctl"),
        }  # fmt: skip
        if facts["os"] == "Darwin":
            facts["pmset"] = host.get_fact(PmsetSettings)
            facts["security"] = host.get_fact(MacSecurity)
    finally:
        disconnect_all(state)
    return NodeFacts(node.name, facts)

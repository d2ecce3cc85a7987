"""The two renderings the render tests compare: production (the example inventory) and the lab."""

from __future__ import annotations

import dataclasses

import yaml

from prontuario_cli.inventory import Inventory, parse_inventory
from prontuario_cli.lab import config as lab_config
from prontuario_cli.lab.spec import Binaries, LabSpec
from prontuario_cli.render.spec import NodeSpec, from_inventory
from tests.helpers import EXAMPLE

LAB_BASE_PORT = 26000
# The example inventory names no cloud fallback server (no cloud.data, no check port); a
# production inventory that has one renders it like this, which the lab always has.
CLOUD_FALLBACK = {"data": {"host": "10.60.0.5", "port": 5432}, "haproxy_backup_port": 8443}


def example_inventory(with_fallback: bool = False) -> Inventory:
    if not with_fallback:
        return parse_inventory(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["cloud"].update(CLOUD_FALLBACK)
    return parse_inventory(yaml.safe_dump(data, sort_keys=False), f"{EXAMPLE} (with a cloud fallback server)")


def production(node: str, with_fallback: bool = False) -> NodeSpec:
    return from_inventory(example_inventory(with_fallback), node)


def lab_spec(directory: str = "/srv/lab", profile: str = "seed") -> LabSpec:
    """A lab as ``lab up`` makes it (with this machine's binaries)."""
    return LabSpec(dir=directory, profile=profile, base_port=LAB_BASE_PORT, binaries=Binaries.default())


def lab(node: str, spec: LabSpec | None = None, policy_of: NodeSpec | None = None) -> NodeSpec:
    """The lab's node; with ``policy_of``, rendered under that node's policy instead of the lab's."""
    spec = spec or lab_spec()
    site = lab_config.lab_site(spec, node)
    if policy_of is not None:
        site = dataclasses.replace(site, policy=policy_of.policy)
    return from_inventory(lab_config.lab_inventory(spec), node, site)

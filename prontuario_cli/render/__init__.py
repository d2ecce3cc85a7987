"""The one set of service-config renderers (Patroni, HAProxy, Redis, Sentinel, etcd, launchd, systemd): bootstrap and the lab both render through it.

- :mod:`.spec`: the neutral input, :class:`~.spec.NodeSpec`, from an inventory, a node
  name and a :class:`~.spec.Site` (paths, programs, Patroni/Sentinel timings, policy):
  :func:`~.spec.from_inventory`.
- :mod:`.patroni`, :mod:`.etcd`, :mod:`.haproxy`, :mod:`.redis`: one file each, pure
  text from a ``NodeSpec``.
- :mod:`.units`: the node's services as :class:`prontuario_cli.services.Service`.
- :mod:`.node`: :func:`~.node.render_node`, every file one node needs.

:func:`node_files` is the one-call shortcut (inventory and node name in, files out). Nothing
else is imported here, so importing one renderer stays cheap.
"""

from __future__ import annotations


def node_files(inventory, node_name: str, site=None, services: bool = True):
    """Every file ``node_name`` needs (absolute paths on that node), rendered from ``inventory``
    with ``site`` (default: the production site for the node's os).

    Example: ``[f.path for f in node_files(load_inventory(), "witness")]``
    """
    from prontuario_cli.render.node import render_node
    from prontuario_cli.render.spec import from_inventory

    return render_node(from_inventory(inventory, node_name, site), services=services)

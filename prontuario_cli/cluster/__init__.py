"""The shared cluster layer every capability stands on.

- ``nodes.py``: the one node-access seam (lab processes or SSH): start / stop / kill /
  hang / resume a node's services, run a command with a timeout and streamed output.
- ``haproxy.py``: HAProxy's runtime API as the capabilities drive it (routes,
  maintenance, safe release, the write frontend).
- ``patroni.py``: Patroni's REST answers parsed, the cluster view, switchover.
- ``fallback.py``: the emergency-mode flag of the cloud fallback and its metric.
- ``logical.py``: the logical slots the cloud replica's pglogical subscription reads on
  the Macs (``replication check`` on every Mac, ``gcp status`` and the failover drill on
  one).

Nothing here imports a capability, typer or rich.
"""

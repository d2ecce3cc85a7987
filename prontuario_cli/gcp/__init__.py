"""The emergency Cloud SQL fallback: status, manual promote (guarded, resumable), failback.

- :mod:`~prontuario_cli.gcp.client`: the Cloud SQL Admin API v1 calls (instances.get,
  promoteReplica, operations.get/list) with a bounded, backed-off operation wait.
- :mod:`~prontuario_cli.gcp.data`: the data path (psycopg DSN in the lab, the Cloud SQL
  Python Connector with pg8000 in production) behind one interface.
- :mod:`~prontuario_cli.gcp.promote`: :class:`~prontuario_cli.gcp.promote.Promotion`.
- :mod:`~prontuario_cli.gcp.failback`: :class:`~prontuario_cli.gcp.failback.Failback`.
  Both are runbooks on :mod:`prontuario_cli.runbook`.
- :mod:`~prontuario_cli.gcp.status`: :func:`~prontuario_cli.gcp.status.status`.
- :mod:`~prontuario_cli.gcp.state`: the journals' names, the lock, what both runbooks share.
  The emergency flag is :mod:`prontuario_cli.cluster.fallback`.

Nothing heavy is imported here: Google's libraries, httpx and psycopg are imported by
the functions that use them.
"""

"""The sources of ``prontuario status``, registered here and nowhere else.

To add rows (models, inference servers...): write ``rows(inventory, deadline) -> list[Row]``
in a module of this package (it may import its capability; the capability never imports
``status``), and add ``Source("<name>", rows)`` below. Every source runs concurrently
under the one deadline; a source that raises a ProntuarioError, fails unexpectedly or
misses the deadline becomes one UNKNOWN row naming it, and the others still show.
The order here is the order of rows of equal status on the screen.
"""

from __future__ import annotations

from prontuario_cli.status.audit_chain import audit_rows
from prontuario_cli.status.cluster import replication_rows
from prontuario_cli.status.docs import docs_rows
from prontuario_cli.status.drills import drill_rows
from prontuario_cli.status.fallback import fallback_rows
from prontuario_cli.status.models import models_rows
from prontuario_cli.status.rows import Source

SOURCES: tuple[Source, ...] = (
    Source("replication", replication_rows),  # nodes, PostgreSQL, etcd, Redis, Sentinels, HAProxy, cloud replica
    Source("fallback", fallback_rows),  # the emergency-mode flag
    Source("models", models_rows),  # per model: the version each Mac serves, agreement, damage
    Source("docs", docs_rows),  # document storage: the leader's push to the other Mac, its age
    Source("drills", drill_rows),  # last run and next due, per drill kind
    Source("audit", audit_rows),  # the audit log's hash chain
)

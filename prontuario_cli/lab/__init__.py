"""The lab: the whole architecture on 127.0.0.1 under one directory, for rehearsal and tests.

etcd (3 members), two PostgreSQL 15 nodes under Patroni, HAProxy, Redis with three
Sentinels, and a cloud stand-in (a PostgreSQL replica plus a local Cloud SQL Admin
API stand-in). :class:`Lab` is the API; ``prontuario lab`` is the CLI on top of it.
Nothing heavy is imported here (psycopg and redis are imported where they are used).
"""

from prontuario_cli.lab.core import Lab
from prontuario_cli.lab.spec import PROFILES, LabSpec

__all__ = ["Lab", "LabSpec", "PROFILES"]

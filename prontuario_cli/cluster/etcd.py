"""etcd, the store that holds Patroni's leader key: each member seen through etcd's own client API.

One call per member, ``POST /v3/maintenance/status`` (the gRPC gateway of etcd ≥ 3.4;
the same numbers ``etcdctl endpoint status`` prints). It is answered locally by the
member, without a round of raft, so a member cut off from the others still answers,
fast, and says it has no leader; its ``errors`` carry active alarms (NOSPACE, CORRUPT).
A frozen member does not answer at all: the caller's deadline bounds the wait.

:func:`quorum` turns the members' answers into the one verdict every consumer uses
(``replication check``, ``status``, the DCS drill): all healthy, no spare vote, or no
quorum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

STATUS_PATH = "/v3/maintenance/status"
NO_LEADER = "0"  # raft.None: the member knows no leader
DEFAULT_QUOTA_BYTES = 2 * 1024**3  # etcd's default --quota-backend-bytes; NOSPACE beyond it
DB_SIZE_WARN_RATIO = 0.8


@dataclass(frozen=True)
class EtcdStatus:
    """What one member says of itself (``etcdctl endpoint status``)."""

    member_id: str
    leader_id: str | None  # None: no leader known to this member
    raft_term: int | None
    raft_index: int | None
    applied_index: int | None
    db_size: int | None
    db_size_in_use: int | None
    version: str | None
    alarms: tuple[str, ...] = ()  # e.g. ("NOSPACE",); other errors (no leader) are not alarms
    is_learner: bool = False

    @property
    def is_leader(self) -> bool:
        return self.leader_id is not None and self.leader_id == self.member_id


def _int(value: Any) -> int | None:
    """grpc-gateway writes 64-bit integers as strings, and leaves zero values out."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_status(body: Any) -> EtcdStatus:
    """A ``/v3/maintenance/status`` answer; raises ValueError when it is not one."""
    if not isinstance(body, Mapping) or not isinstance(body.get("header"), Mapping):
        raise ValueError("not an etcd status answer (no header)")
    header = body["header"]
    member = str(header.get("member_id") or "")
    if not member:
        raise ValueError("not an etcd status answer (no member_id)")
    leader = str(body.get("leader") or NO_LEADER)
    alarms = []
    for error in body.get("errors") or ():
        text = str(error)
        # "memberID:123 alarm:NOSPACE " — the alarm name only.
        if "alarm:" in text:
            alarms.append(text.split("alarm:", 1)[1].split()[0])
    return EtcdStatus(
        member_id=member,
        leader_id=None if leader == NO_LEADER else leader,
        raft_term=_int(body.get("raftTerm") or header.get("raft_term")),
        raft_index=_int(body.get("raftIndex")) or 0,
        applied_index=_int(body.get("raftAppliedIndex")) or 0,
        db_size=_int(body.get("dbSize")),
        db_size_in_use=_int(body.get("dbSizeInUse")),
        version=body.get("version"),
        alarms=tuple(alarms),
        is_learner=bool(body.get("isLearner")),
    )


def member_status(address: str, port: int, deadline: float) -> EtcdStatus:
    """Ask one member for its status, bounded by ``deadline``."""
    from prontuario_cli.connect.http import request, url_of
    from prontuario_cli.errors import UnavailableError

    url = url_of(address, port, STATUS_PATH)
    answer = request("POST", url, deadline, json_body={})
    try:
        return parse_status(answer.json(url))
    except ValueError as exc:
        raise UnavailableError(f"{url}: {exc}") from None


# --------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class Quorum:
    """The members' answers, counted: who is healthy, who is the leader, how many votes are spare."""

    total: int
    healthy: tuple[str, ...]  # answered and agree on a leader
    leader: str | None  # node name of the raft leader, as the healthy members see it
    alarms: dict[str, tuple[str, ...]]
    lost: dict[str, str]  # node -> why it does not count

    @property
    def majority(self) -> int:
        return self.total // 2 + 1

    @property
    def has_quorum(self) -> bool:
        return len(self.healthy) >= self.majority and self.leader is not None

    @property
    def spare(self) -> int:
        """How many more members may be lost before etcd stops (0: none)."""
        return max(0, len(self.healthy) - self.majority)


def quorum(statuses: Mapping[str, EtcdStatus | None], why: Mapping[str, str] | None = None) -> Quorum:
    """Count the members: ``statuses`` by node name (None: did not answer, ``why`` says how).

    A member is healthy when it answered, knows a leader and agrees with the others on
    who it is. Alarms are counted apart: a NOSPACE etcd keeps its quorum but refuses every
    write, Patroni's leader key included. The leader is named when a member of the majority
    view is the leader itself, else shown by its id.
    """
    why = dict(why or {})
    answered = {name: s for name, s in statuses.items() if s is not None}
    by_id = {s.member_id: name for name, s in answered.items()}
    views: dict[str, int] = {}
    for s in answered.values():
        if s.leader_id is not None:
            views[s.leader_id] = views.get(s.leader_id, 0) + 1
    leader_id = max(views, key=lambda k: views[k]) if views else None
    healthy, lost = [], {}
    alarms = {name: s.alarms for name, s in answered.items() if s.alarms}
    for name, s in statuses.items():
        if s is None:
            lost[name] = why.get(name, "no answer")
        elif s.leader_id is None:
            lost[name] = "answers but knows no leader (cut off from the others)"
        elif s.leader_id != leader_id:
            lost[name] = f"follows another leader ({by_id.get(s.leader_id, s.leader_id)})"
        else:
            healthy.append(name)
    leader = by_id.get(leader_id, f"id {leader_id}") if leader_id is not None else None
    return Quorum(len(statuses), tuple(healthy), leader, alarms, lost)

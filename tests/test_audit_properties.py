"""Property: whatever is done to the log, its head or its key, ``audit verify`` says
either "intact" or exit 65 with a problem that names a line or a seq — never 70.

"Intact" is allowed only for a state the writer itself could have left: the entries of
the first k appends with the head of the k-th (a cut tail put back together with the
head saved at that point is undetectable without a copy elsewhere: see the README), or
with the head of the (k-1)-th (a crash between an entry and its head). Mutations that
change nothing a reader parses (a blank line, JSON whitespace) must stay intact too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prontuario_cli.audit import AuditLog, entry_mac
from prontuario_cli.errors import ExitCode
from tests.helpers import run

TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["João", "\udcff", "a\nb", "\u2028", "ação\x00"]))
RECORD = st.fixed_dictionaries(
    {"command": st.sampled_from(["gcp promote", "drill failover", "lab down"]), "args": st.dictionaries(st.sampled_from(["reason", "mode", "i"]), TEXT, max_size=2)}
)
JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-3, 10), st.floats(allow_nan=False), TEXT, st.lists(st.integers(0, 3), max_size=2))

MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
    st.tuples(st.just("field"), st.integers(0, 99), st.integers(0, 99), JSON_VALUE),
    st.tuples(st.just("delete"), st.integers(0, 99)),
    st.tuples(st.just("insert"), st.integers(0, 99), st.sampled_from(["copy", "blank", "garbage", "forged", "deep"]), st.integers(0, 99)),
    st.tuples(st.just("swap"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("head"), st.sampled_from(["delete", "garbage", "list", "older", "bad-mac"]), st.integers(0, 99)),
    st.tuples(st.just("key"), st.sampled_from(["delete", "other"])),
)


def _canonical_lines(data: bytes) -> list[str] | None:
    """What a reader parses from the log, canonically; None when a line is not JSON."""

    def strict(pairs):
        if len({k for k, _ in pairs}) != len(pairs):
            raise ValueError("duplicate key")
        return dict(pairs)

    out = []
    for line in data.decode("utf-8", errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            out.append(json.dumps(json.loads(line, object_pairs_hook=strict), sort_keys=True))
        except (ValueError, RecursionError):
            return None
    return out


def _canonical_head(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return json.dumps(json.loads(data.decode("utf-8", errors="replace")), sort_keys=True)
    except (ValueError, RecursionError):
        return "not json"


def _mutate(log: AuditLog, mutation: tuple, heads: list[bytes]) -> None:
    data = log.path.read_bytes()
    lines = data.split(b"\n")[:-1]  # the file ends with a newline
    kind = mutation[0]
    if kind == "flip" and data:
        pos = int(mutation[1] * len(data))
        data = data[:pos] + bytes([mutation[2]]) + data[pos + 1 :]
        log.path.write_bytes(data)
    elif kind == "field" and lines:
        i = mutation[1] % len(lines)
        try:
            entry = json.loads(lines[i])
        except ValueError:
            return
        if isinstance(entry, dict):
            name = sorted(entry)[mutation[2] % len(entry)]
            entry[name] = mutation[3]
            lines[i] = json.dumps(entry, separators=(",", ":")).encode()
            log.path.write_bytes(b"".join(line + b"\n" for line in lines))
    elif kind == "delete" and lines:
        del lines[mutation[1] % len(lines)]
        log.path.write_bytes(b"".join(line + b"\n" for line in lines))
    elif kind == "insert":
        where = mutation[1] % (len(lines) + 1)
        what = mutation[2]
        if what == "copy" and lines:
            new = lines[mutation[3] % len(lines)]
        elif what == "blank":
            new = b"   "
        elif what == "garbage":
            new = b'{"seq": 1, "prev": "x"'
        elif what == "deep":
            new = b"[" * 5000 + b"]" * 5000
        else:  # forged: a plausible entry with a MAC under another key
            template = json.loads(lines[mutation[3] % len(lines)]) if lines else {"seq": 1, "prev": "0" * 64, "key_id": "k"}
            forged = dict(template, command="gcp promote", operator="mallory")
            forged["mac"] = entry_mac(forged, os.urandom(32))
            new = json.dumps(forged).encode()
        lines.insert(where, new)
        log.path.write_bytes(b"".join(line + b"\n" for line in lines))
    elif kind == "swap" and lines:
        i, j = mutation[1] % len(lines), mutation[2] % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
        log.path.write_bytes(b"".join(line + b"\n" for line in lines))
    elif kind == "truncate":
        log.path.write_bytes(data[: int(mutation[1] * len(data))])
    elif kind == "head":
        what = mutation[1]
        if what == "delete":
            log.head_path.unlink(missing_ok=True)
        elif what == "garbage":
            log.head_path.write_bytes(b"\x00\xffnot a head")
        elif what == "list":
            log.head_path.write_text("[1, 2, 3]")
        elif what == "older":
            log.head_path.write_bytes(heads[mutation[2] % len(heads)])
        else:
            head = json.loads(heads[-1])
            head["head_mac"] = "0" * 64
            log.head_path.write_text(json.dumps(head))
    elif kind == "key":
        if mutation[1] == "delete":
            log.key_path.unlink(missing_ok=True)
        else:
            log.key_path.write_bytes(os.urandom(32))
            os.chmod(log.key_path, 0o600)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(st.tuples(RECORD, st.sampled_from(["pair", "intent only", "plain"])), min_size=1, max_size=4),
    mutations=st.lists(MUTATION, max_size=3),
)
def test_any_mutation_verifies_intact_only_when_the_writer_could_have_left_it(records, mutations):
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "audit.jsonl")
        states: list[tuple[list[str], bytes]] = []  # after each append: (entries, head)

        def append(record: dict) -> None:
            log.append(record)
            states.append((_canonical_lines(log.path.read_bytes()), log.head_path.read_bytes()))

        for n, (record, shape) in enumerate(records):
            if shape == "plain":
                append(dict(record, outcome="ok"))
                continue
            append(dict(record, phase="intent", id=f"op-{n}"))
            if shape == "pair":
                append(dict(record, phase="outcome", id=f"op-{n}", outcome="failed", exit_code=20))
        key = log.key_path.read_bytes()
        heads = [head for _, head in states]
        for mutation in mutations:
            _mutate(log, mutation, heads)

        now_lines = _canonical_lines(log.path.read_bytes())
        now_head = _canonical_head(log.head_path.read_bytes() if log.head_path.exists() else None)
        key_kept = log.key_path.exists() and log.key_path.read_bytes() == key
        legit = key_kept and any(
            now_lines == entries and now_head in {_canonical_head(head), *((_canonical_head(heads[k - 1]),) if k else ())}
            for k, (entries, head) in enumerate(states)
        )

        with mock.patch.dict(os.environ, {"PRONTUARIO_AUDIT_LOG": str(log.path)}):
            result = run("audit", "verify", "--json")
        assert result.code in (ExitCode.OK, ExitCode.INTEGRITY), (result.code, result.err)
        report = result.json()
        if legit:
            assert result.code == ExitCode.OK and report["intact"], (mutations, report["problems"])
        else:
            assert result.code == ExitCode.INTEGRITY, (mutations, report["warnings"])
            message = report["problems"][0]["message"]
            assert "line" in message or "seq" in message or "empty" in message, message

"""Property: whatever is done to cluster.yaml, `inventory check` ends in 0, 1 or 78, and a
78 names ``file:line`` for every problem; what it accepts, `inventory show` shows.

Never 70 (a bug), never a traceback. The documents are mutations of the example
inventory (tests/hostile_yaml.py); the examples are derandomized so CI is reproducible.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run
from tests.hostile_yaml import documents, key_paths, located, python_values, yaml_scalar

GOOD = EXAMPLE.read_text()
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_names = itertools.count()


def check_outcome(tmp_path, document: str | bytes) -> None:
    path = tmp_path / f"cluster-{next(_names)}.yaml"
    if isinstance(document, bytes):
        path.write_bytes(document)
    else:
        path.write_bytes(document.encode("utf-8", "surrogatepass"))
    result = run("-i", str(path), "inventory", "check", "--json")
    assert result.code in (ExitCode.OK, ExitCode.WARNING, ExitCode.CONFIG), (result.code, result.err)
    assert "Traceback" not in result.err and "\x1b" not in result.out + result.err
    data = result.json()
    if result.code == ExitCode.CONFIG:
        assert data["valid"] is False and data["problems"]
        assert not located(str(path), "", data["problems"]), data["problems"]
        assert len(result.out) < 100_000
        return
    shown = run("-i", str(path), "inventory", "show")
    assert shown.code == ExitCode.OK, (shown.code, shown.err)
    assert "\x1b" not in shown.out


@SETTINGS
@given(document=documents(GOOD))
def test_a_mutated_inventory_is_accepted_or_refused_with_a_line(tmp_path, document):
    check_outcome(tmp_path, document)


def _structure():
    import yaml

    return yaml.safe_load(GOOD)


PATHS = sorted(key_paths(_structure()), key=str)
values_anywhere = st.one_of(  # a value, or one level of list or mapping of them
    python_values, st.lists(python_values, max_size=3), st.dictionaries(st.text(max_size=5), python_values, max_size=3)
)


@SETTINGS
@given(path=st.sampled_from(PATHS), value=values_anywhere, also_key=st.one_of(st.none(), st.text(max_size=12)))
def test_any_value_at_any_key_is_accepted_or_refused_with_a_line(tmp_path, path, value, also_key):
    import copy

    import yaml

    data = copy.deepcopy(_structure())
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    if also_key is not None and isinstance(parent, dict):
        parent[also_key] = value
    check_outcome(tmp_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=12), address=st.text(min_size=1, max_size=20))
def test_names_and_addresses_that_pass_are_plain(tmp_path, name, address):
    text = GOOD.replace("name: witness", f"name: {yaml_scalar(name)}", 1).replace("address: 10.40.0.20", f"address: {yaml_scalar(address)}", 1)
    path = tmp_path / f"cluster-{next(_names)}.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    result = run("-i", str(path), "inventory", "check", "--json")
    assert result.code in (ExitCode.OK, ExitCode.WARNING, ExitCode.CONFIG)
    if result.code != ExitCode.CONFIG:
        assert name.isprintable() and not any(c.isspace() for c in name)
        assert all(c.isalnum() or c in ".-:%" for c in address)

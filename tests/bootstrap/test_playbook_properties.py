"""Property: whatever is done to a shipped playbook, reading it gives a playbook or a config
error (exit 78) naming ``file:line`` for every problem; never another exception.

The documents are mutations of prontuario_cli/playbooks/ (tests/hostile_yaml.py); the
examples are derandomized so CI is reproducible.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prontuario_cli.errors import ConfigError, ExitCode
from tests.hostile_yaml import documents, key_paths, located, python_values

PLAYBOOKS = Path(__file__).resolve().parents[2] / "prontuario_cli" / "playbooks"
BOOTSTRAP = {name: (PLAYBOOKS / name).read_text() for name in ("debian-node.yaml", "macos-node.yaml")}
ACTIONS = (PLAYBOOKS / "node-actions.yaml").read_text()
SETTINGS = settings(max_examples=70, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_names = itertools.count()


def write(tmp_path, document: str | bytes) -> Path:
    path = tmp_path / f"book-{next(_names)}.yaml"
    path.write_bytes(document if isinstance(document, bytes) else document.encode("utf-8", "surrogatepass"))
    return path


def read_or_refuse(load, path: Path):
    """``load(path)``; a ConfigError must be exit 78 and located, anything else fails the test."""
    try:
        return load(path)
    except ConfigError as exc:
        assert exc.exit_code == ExitCode.CONFIG
        assert not located(str(path), exc.message, exc.problems), exc.one_line()[:2000]
        assert len(exc.one_line()) < 100_000 and "\x1b" not in exc.one_line()
        return None


def load_bootstrap(path: Path):
    from prontuario_cli.bootstrap.playbook import load_playbook

    return load_playbook(path)


def load_actions(path: Path):
    from prontuario_cli.cluster.nodes import load_playbook

    return load_playbook(path)


def test_the_shipped_playbooks_read():
    for name in BOOTSTRAP:
        assert load_bootstrap(PLAYBOOKS / name).steps
    assert load_actions(PLAYBOOKS / "node-actions.yaml")


@SETTINGS
@given(document=st.one_of(documents(BOOTSTRAP["debian-node.yaml"]), documents(BOOTSTRAP["macos-node.yaml"])))
def test_a_mutated_bootstrap_playbook_reads_or_is_refused_with_a_line(tmp_path, document):
    book = read_or_refuse(load_bootstrap, write(tmp_path, document))
    if book is not None:
        assert all(step.name and step.op for step in book.steps)


@SETTINGS
@given(document=documents(ACTIONS))
def test_a_mutated_node_actions_playbook_reads_or_is_refused_with_a_line(tmp_path, document):
    actions = read_or_refuse(load_actions, write(tmp_path, document))
    if actions is not None:
        assert isinstance(actions, dict)




def _structure(name: str):
    import yaml

    return yaml.safe_load(BOOTSTRAP[name])


PATHS = {name: sorted(key_paths(_structure(name)), key=str) for name in BOOTSTRAP}
values_anywhere = st.one_of(  # a value, or one level of list or mapping of them
    python_values, st.lists(python_values, max_size=3), st.dictionaries(st.text(max_size=5), python_values, max_size=3)
)


@st.composite
def structural_mutations(draw):
    import copy

    import yaml

    name = draw(st.sampled_from(sorted(BOOTSTRAP)))
    data = copy.deepcopy(_structure(name))
    path = draw(st.sampled_from(PATHS[name]))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if draw(st.booleans()) or not isinstance(parent, dict):
        parent[path[-1]] = draw(values_anywhere)
    else:
        parent[draw(st.text(max_size=10))] = parent.pop(path[-1])
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(document=structural_mutations())
def test_any_value_at_any_key_of_a_playbook_reads_or_is_refused_with_a_line(tmp_path, document):
    read_or_refuse(load_bootstrap, write(tmp_path, document))

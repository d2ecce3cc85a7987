"""Playbooks are checked before anything connects: every problem named with file:line: key."""

from __future__ import annotations

import pytest

from prontuario_cli.bootstrap.playbook import OPERATIONS, parse_playbook
from prontuario_cli.errors import ConfigError

GOOD = """format: 1
name: tiny
os: debian
steps:
  - name: a directory
    op: directory
    args: {path: "${prefix}/etc"}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_playbook(text, "book.yaml")
    return caught.value.problems


def test_a_good_playbook_gives_its_steps_with_every_role_by_default():
    book = parse_playbook(GOOD, "book.yaml")
    assert [s.name for s in book.steps] == ["a directory"] and book.steps[0].roles == ("primary", "secondary", "witness")
    assert book.steps[0].line == 5


def test_malformed_yaml_names_the_line():
    with pytest.raises(ConfigError) as caught:
        parse_playbook(GOOD + "  - name: [unclosed\n", "book.yaml")
    assert caught.value.message.startswith("book.yaml:") and "malformed YAML" in caught.value.message


@pytest.mark.parametrize("step, expected", [
    ("    op: directroy\n    args: {path: /x}", "book.yaml:9: steps[1].op: unknown operation 'directroy' (did you mean 'directory'?)"),
    ("    op: directory\n    args: {path: /x, owner: root}", "book.yaml:10: steps[1].args.owner: unknown key"),
    ("    op: directory\n    args: {mode: '700'}", "book.yaml:10: steps[1].args.path: required key is missing"),
    ("    op: apt.packages\n    args: {packages: rsync}", "book.yaml:10: steps[1].args.packages: expected a list"),
    ("    op: directory\n    args: {path: '${prefx}/x'}", "book.yaml:10: steps[1].args.path: unknown variable ${prefx}"),
    ("    op: macos.pmset\n    args: {setting: sleep, value: 0}", "book.yaml:9: steps[1].op: macos.pmset does not run on debian"),
    ("    op: directory\n    args: {path: /x}\n    when: always", "book.yaml:11: steps[1].when: unknown key"),
    ("    op: directory\n    args: {path: /x}\n    roles: [primary, mac]", "book.yaml:11: steps[1].roles: 'mac' is not a role"),
    ("    op: command\n    args: {run: 'make install'}", "book.yaml:10: steps[1].args.creates: required key is missing"),
])
def test_each_bad_step_is_refused_with_file_line_and_key(step, expected):
    text = GOOD + "  - name: second\n" + step + "\n"
    found = problems_of(text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_listed_at_once_and_names_are_unique():
    text = """format: 2
name: tiny
os: windows
steps:
  - name: same
    op: directory
    args: {path: /a}
  - name: same
    op: nope
"""
    found = problems_of(text)
    assert any(p.startswith("book.yaml:1: format:") for p in found)
    assert any(p.startswith("book.yaml:3: os:") for p in found)
    assert any("steps[1].name: 'same' is also the name of steps[0]" in p for p in found)
    assert any("steps[1].op: unknown operation 'nope'" in p for p in found)


def test_a_playbook_without_steps_is_refused():
    assert any("steps: required key is missing" in p for p in problems_of("format: 1\nname: x\nos: debian\n"))
    assert any("expected a non-empty list" in p for p in problems_of("format: 1\nname: x\nos: debian\nsteps: []\n"))


def test_every_operation_has_an_adapter():
    """The allow-list and the pyinfra adapter cannot drift apart: each op builds operations."""
    import inspect

    from prontuario_cli.bootstrap import engine

    source = inspect.getsource(engine._add_step)
    for name in OPERATIONS:
        assert f'"{name}"' in source, f"{name} is in the playbook schema but has no pyinfra adapter"

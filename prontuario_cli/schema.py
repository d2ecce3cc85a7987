"""YAML into typed, frozen dataclasses, with every problem as ``file:line: key.path: what``.

The text is composed with PyYAML's safe loader into a node tree (so every key keeps its
line number) and converted against dataclasses, which are the schema: unknown keys (with
"did you mean"), wrong types (a quoted number is not coerced), missing or doubled keys.
Problems are collected, never raised one at a time; :func:`raise_problems` reports them
all at once. The inventory and the model manifests are read through here.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Literal

from prontuario_cli.errors import ConfigError


def read_document(path, what: str, missing_hint: str | None = None) -> str:
    """The text of a YAML document on disk (UTF-8); ConfigError naming it when it cannot be read."""
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no {what} {path}", hint=missing_hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc}") from None


def compose(text: str, source: str, what: str):
    """The YAML node tree of ``text``; ConfigError "SOURCE:LINE: malformed YAML" or "empty"."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    if root is None:
        raise ConfigError(f"{source}: the {what} is empty")
    return root


def raise_problems(source: str, problems: list[str], what: str) -> typing.NoReturn:
    """ConfigError listing every problem, in file order."""
    problems = sorted(set(problems), key=line_number)
    count = len(problems)
    raise ConfigError(f"{source}: {count} problem{'s' if count != 1 else ''} in the {what}:", problems)


def line_number(problem: str) -> int:
    try:
        return int(problem.split(":", 2)[1])
    except (IndexError, ValueError):
        return 0


_SCALAR_TAGS = {
    int: {"tag:yaml.org,2002:int"},
    float: {"tag:yaml.org,2002:float", "tag:yaml.org,2002:int"},
    str: {"tag:yaml.org,2002:str"},
    bool: {"tag:yaml.org,2002:bool"},
}
_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


class Converter:
    """Converts a YAML node tree into the schema dataclasses, collecting problems."""

    def __init__(self, source: str, lenient: bool = False, scalar_refused: dict[type, str] | None = None):
        import yaml

        self.lenient = lenient  # skip unknown keys and bad optional values (best effort)
        # A dataclass that must never be written as a plain value, and why (secrets).
        self.scalar_refused = scalar_refused or {}
        self.yaml = yaml
        self.source = source
        self.problems: list[str] = []
        self.lines: dict[str, int] = {}
        self._constructor = yaml.SafeLoader("")

    def problem(self, node, keypath: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(f"{self.source}:{line}: {keypath or '(top level)'}: {message}")

    def line_of(self, keypath: str) -> int:
        return self.lines.get(keypath, 0)

    def convert(self, node, tp, keypath: str):
        self.lines.setdefault(keypath, node.start_mark.line + 1)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if node.tag == "tag:yaml.org,2002:null":
                return None
            if len(inner) > 1:  # e.g. ``tuple[str, ...] | str``: a YAML list picks the tuple
                is_list = isinstance(node, self.yaml.SequenceNode)
                inner = [a for a in inner if (typing.get_origin(a) is tuple) == is_list] or inner
            return self.convert(node, inner[0], keypath)
        if dataclasses.is_dataclass(tp):
            return self._dataclass(node, tp, keypath)
        if origin is tuple:
            if not isinstance(node, self.yaml.SequenceNode):
                self.problem(node, keypath, "expected a list")
                return None
            items = [self.convert(item, args[0], f"{keypath}[{i}]") for i, item in enumerate(node.value)]
            return None if any(item is None for item in items) else tuple(items)
        if origin is Literal:
            value = self._scalar(node, str, keypath)
            if value is not None and value not in args:
                self.problem(node, keypath, f"{value!r} is not one of: {', '.join(args)}")
                return None
            return value
        return self._scalar(node, tp, keypath)

    def _scalar(self, node, tp, keypath: str):
        if not isinstance(node, self.yaml.ScalarNode) or node.tag not in _SCALAR_TAGS[tp]:
            got = describe(node, self.yaml)
            self.problem(node, keypath, f"expected {_TYPE_WORDS[tp]}, got {got}")
            return None
        value = self._constructor.construct_object(node)
        return float(value) if tp is float else value

    def _dataclass(self, node, tp, keypath: str):
        if tp in self.scalar_refused and isinstance(node, self.yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
            self.problem(node, keypath, self.scalar_refused[tp])
            return None
        if not isinstance(node, self.yaml.MappingNode):
            self.problem(node, keypath, f"expected a mapping (keys: {', '.join(schema_fields(tp))}), got {describe(node, self.yaml)}")
            return None
        fields = {f.name: f for f in dataclasses.fields(tp) if f.metadata.get("schema", True)}
        hints = typing.get_type_hints(tp)
        values: dict[str, object] = {}
        ok = True
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, self.yaml.ScalarNode) else None
            sub = f"{keypath}.{key}" if keypath else str(key)
            if key not in fields and self.lenient:
                continue
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(fields)})"
                self.problem(key_node, sub, f"unknown key{hint}")
                ok = False
                continue
            if key in values:
                self.problem(key_node, sub, "key given twice")
                ok = False
                continue
            self.lines[sub] = key_node.start_mark.line + 1
            value = self.convert(value_node, hints[key], sub)
            if value is None and value_node.tag != "tag:yaml.org,2002:null":
                if self.lenient and fields[key].default is not dataclasses.MISSING:
                    continue
                ok = False
            values[key] = value
        for name, f in fields.items():
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and values.get(name) is None:
                ok = False
                if name not in values:
                    sub = f"{keypath}.{name}" if keypath else name
                    self.problem(node, sub, "required key is missing")
                elif is_null(node, name):
                    sub = f"{keypath}.{name}" if keypath else name
                    self.problem(node, sub, "required key has no value")
        if not ok:
            return None
        return tp(**values)


def is_null(mapping_node, key: str) -> bool:
    return any(k.value == key and v.tag == "tag:yaml.org,2002:null" for k, v in mapping_node.value)


def schema_fields(tp) -> list[str]:
    return [f.name for f in dataclasses.fields(tp) if f.metadata.get("schema", True)]


def describe(node, yaml) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    kind = node.tag.rsplit(":", 1)[-1]
    return f"{kind} {node.value!r}" if kind != "null" else "nothing (null)"

"""YAML into typed, frozen dataclasses, with every problem as ``file:line: key.path: what``.

The text is parsed into events (libyaml when PyYAML has it, else PyYAML's own parser)
and composed here into a node tree, so every key keeps its line number, and converted
against dataclasses, which are the schema: unknown keys (with "did you mean"), wrong
types (a quoted number is not coerced), missing or doubled keys. Problems are collected,
never raised one at a time; :func:`raise_problems` reports them all at once. The
inventory, the model manifests and the playbooks are read through here.

Whatever the bytes, reading ends in a value or a :class:`ConfigError` naming a line,
never in a traceback. The composing is ours so that it can refuse what would otherwise
end in one: nesting deeper than :data:`MAX_DEPTH` (Python's recursion limit), aliases
expanding past :data:`MAX_VALUES` values (the "billion laughs"), files over
:data:`MAX_BYTES`. The converter refuses what would break later, far from the file:
numbers that are not finite, YAML 1.1's readings of ``05432`` (octal, 2842) and ``11:30``
(base 60, 690), strings holding control, bidi or zero-width characters or lone
surrogates (they reach terminals and logs raw, or cannot be written out at all). A
message shows at most :data:`MAX_SHOWN` characters of a value and a report at most
:data:`MAX_PROBLEMS` problems, so a hostile file cannot make a huge report.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from typing import Literal

from prontuario_cli.errors import ConfigError

MAX_BYTES = 32 * 1024 * 1024  # a 20 000-node inventory is about 10 MB
MAX_DEPTH = 64  # mappings and lists inside each other, aliases followed; ours need about 6
MAX_VALUES = 2_000_000  # values once every alias is expanded
MAX_PROBLEMS = 50
MAX_SHOWN = 80  # characters of a value quoted in a message
MAX_PROBLEM_LENGTH = 500


# --------------------------------------------------------------------------- reading bytes


def read_document(path, what: str, missing_hint: str | None = None) -> str:
    """The text of a YAML document on disk (UTF-8); ConfigError naming it when it cannot be read.

    A directory, a device or a pipe is refused before it is opened (a pipe would block);
    bytes that are not UTF-8 are named by line and column, not by offset.
    """
    import os
    import stat
    from pathlib import Path

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ConfigError(f"no {what} {path}", hint=missing_hint) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"the {what} {path} is a directory, not a file", hint=f"give the path of the {what} file itself")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"the {what} {path} is not a regular file (a device, pipe or socket)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"the {what} {path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; this is not a {what}")
    return decode(data, str(path), what)


def decode(data: bytes, source: str, what: str) -> str:
    """``data`` as UTF-8; ConfigError "SOURCE:LINE: ... byte 0xE9 at column 9" when it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(data, exc.start, b"\n")
        raise ConfigError(
            f"{source}:{line}: the {what} is not UTF-8: byte 0x{data[exc.start]:02X} at column {column} ({exc.reason})",
            hint="save the file as UTF-8",
        ) from None


def _line_column(text, offset: int, newline) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text`` (str or bytes)."""
    offset = max(0, min(offset, len(text)))
    line_start = text.rfind(newline, 0, offset) + 1
    return text.count(newline, 0, offset) + 1, offset - line_start + 1


# --------------------------------------------------------------------------- composing


class _Refused(Exception):
    """A document the composer will not build, at ``mark``."""

    def __init__(self, mark, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


def compose(text: str, source: str, what: str):
    """The YAML node tree of ``text``; ConfigError "SOURCE:LINE: malformed YAML: ..." or "empty"."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        root = _Composer(yaml).compose(yaml.parse(text, Loader=loader))
    except _Refused as exc:
        raise ConfigError(f"{source}:{exc.mark.line + 1}: {exc.message}") from None
    except yaml.reader.ReaderError as exc:
        # libyaml counts the offset in UTF-8 bytes, PyYAML's reader in characters.
        encoded = text.encode("utf-8", "surrogatepass") if loader is not yaml.SafeLoader else text
        line, column = _line_column(encoded, exc.position, b"\n" if isinstance(encoded, bytes) else "\n")
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError(f"{source}:{line}: malformed YAML: character {character} at column {column}: {exc.reason}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else f"{source}:1"
        column = f" (column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "not YAML"
        raise ConfigError(f"{where}: malformed YAML: {problem}{column}") from None
    except yaml.YAMLError as exc:  # PyYAML's errors carry a mark; this is the last resort
        raise ConfigError(f"{source}:1: malformed YAML: {clip(str(exc), MAX_PROBLEM_LENGTH)}") from None
    except UnicodeEncodeError as exc:  # a str with a lone surrogate, handed in by a caller
        line, column = _line_column(text, exc.start, "\n")
        raise ConfigError(f"{source}:{line}: malformed YAML: U+{ord(text[exc.start]):04X} at column {column} is half of a surrogate pair, not a character") from None
    if root is None:
        raise ConfigError(f"{source}:1: the {what} is empty (only comments, or nothing)")
    return root


@dataclasses.dataclass
class _Open:
    """A mapping or list being composed."""

    node: object
    anchor: str | None
    values: int = 1  # this node and everything under it, aliases expanded
    height: int = 1
    key: object = None
    has_key: bool = False


class _Composer:
    """Events into nodes, without recursion; refuses deep nesting, alias bombs and more than one document."""

    def __init__(self, yaml):
        self.yaml = yaml
        self.resolver = yaml.resolver.Resolver()
        self.anchors: dict[str, tuple[object, int, int]] = {}  # name -> (node, values, height)
        self.values = 0  # the whole document's, aliases expanded

    def compose(self, events):
        yaml = self.yaml
        stack: list[_Open] = []
        root = None
        documents = 0
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Refused(event.start_mark, "malformed YAML: a second document (---): the file holds one")
            elif isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
                # libyaml says '' for a plain scalar, PyYAML None: None here, as PyYAML's own nodes have it.
                node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style or None)
                self._count(1, event)
                root = self._attach(stack, node, 1, 1, event) or root
                self._remember(event.anchor, node, 1, 1)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in self.anchors:
                    raise _Refused(
                        event.start_mark,
                        f"malformed YAML: alias *{clip(event.anchor, 40)} names no anchor defined before it "
                        "(an alias cannot point into the list or mapping it is in)",
                    )
                node, values, height = self.anchors[event.anchor]
                self._count(values, event)
                root = self._attach(stack, node, values, height, event) or root
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise _Refused(event.start_mark, f"nested deeper than {MAX_DEPTH} levels: this is not a config file")
                kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolver.resolve(kind, None, event.implicit)
                self._count(1, event)
                stack.append(_Open(kind(tag, [], event.start_mark, event.end_mark, flow_style=event.flow_style), event.anchor))
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                done = stack.pop()
                done.node.end_mark = event.end_mark
                root = self._attach(stack, done.node, done.values, done.height, event) or root
                self._remember(done.anchor, done.node, done.values, done.height)
        return root

    def _count(self, values: int, event) -> None:
        self.values += values
        if self.values > MAX_VALUES:
            raise _Refused(event.start_mark, f"aliases expand the document past {MAX_VALUES:,} values: this is not a config file")

    def _attach(self, stack, node, values: int, height: int, event):
        """Put a finished node into its parent; return it when it is the root."""
        if len(stack) + height > MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested deeper than {MAX_DEPTH} levels (counting what aliases repeat): this is not a config file")
        if not stack:
            return node
        parent = stack[-1]
        parent.values += values
        parent.height = max(parent.height, height + 1)
        if isinstance(parent.node, self.yaml.SequenceNode):
            parent.node.value.append(node)
        elif not parent.has_key:
            parent.key, parent.has_key = node, True
        else:
            parent.node.value.append((parent.key, node))
            parent.key, parent.has_key = None, False
        return None

    def _remember(self, anchor, node, values: int, height: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (node, values, height)


def load_plain(path, what: str):
    """A YAML file on disk as plain Python values (dicts, lists, strings, numbers), read the
    hardened way (:func:`read_document`, :func:`compose`); for the few files without a schema."""
    source = str(path)
    return plain(compose(read_document(path, what), source, what), source, what)


def plain(root, source: str, what: str):
    """A composed node tree as Python values; ConfigError "SOURCE:LINE: ..." for what cannot be one
    (a list as a key, ``!!int "abc"``, a tag PyYAML's safe loader does not know)."""
    import yaml

    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else f"{source}:1"
        raise ConfigError(f"{where}: the {what} holds a value that cannot be read: {clip(exc.problem or exc.context or '?', MAX_PROBLEM_LENGTH)}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, KeyError) as exc:
        raise ConfigError(f"{source}:1: the {what} holds a value that cannot be read: {clip(str(exc), MAX_PROBLEM_LENGTH)}") from None


# --------------------------------------------------------------------------- what a message shows


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to ``limit`` characters, with "…" when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value) -> str:
    """A value as a message quotes it: its repr, at most :data:`MAX_SHOWN` characters of it."""
    if isinstance(value, str) and len(value) > MAX_SHOWN:
        return repr(value[:MAX_SHOWN]) + f"… ({len(value):,} characters)"
    return clip(repr(value), MAX_SHOWN + 2)


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as an escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _key_label(value: str) -> str:
    """A mapping key as it appears in a key path: plain when it is a plain short name."""
    return value if len(value) <= 40 and value.isprintable() and "." not in value else shown(value)


def raise_problems(source: str, problems: list[str], what: str) -> typing.NoReturn:
    """ConfigError listing every problem, in file order (at most :data:`MAX_PROBLEMS` of them)."""
    problems = sorted(set(problems), key=line_number)
    count = len(problems)
    shown_problems = [printable(clip(p, MAX_PROBLEM_LENGTH)) for p in problems[:MAX_PROBLEMS]]
    if count > MAX_PROBLEMS:
        shown_problems.append(f"… and {count - MAX_PROBLEMS} more")
    raise ConfigError(f"{source}: {count} problem{'s' if count != 1 else ''} in the {what}:", shown_problems)


_MORE = re.compile(r"^… and (\d+) more$")


def problem_count(problems) -> int:
    """How many problems a list from :func:`raise_problems` stands for (its "… and K more" counted)."""
    problems = list(problems)
    more = _MORE.match(problems[-1]) if problems else None
    return len(problems) - 1 + int(more.group(1)) if more else len(problems)


def line_number(problem: str) -> int:
    try:
        return int(problem.split(":", 2)[1])
    except (IndexError, ValueError):
        return 0


# Characters no config string may hold: C0 and C1 controls but tab, newline and carriage
# return; every format character (bidi overrides and isolates, zero-width spaces and
# joiners, soft hyphen, BOM...); lone surrogates. Kept in step with unicodedata by a test.
_BAD_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)


def character_problem(text: str) -> str | None:
    """Why ``text`` cannot be a config string (naming the first bad character by code point), or None."""
    match = _BAD_CHARACTERS.search(text)
    if match is None:
        return None
    return f"character {match.start() + 1} is {code_point(match.group())}"


def code_point(c: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE), a bidi or invisible formatting character``, and the like."""
    import unicodedata

    category = unicodedata.category(c)
    kind = {
        "Cc": "a control character",
        "Cf": "an invisible formatting character (bidi or zero-width)",
        "Cs": "half of a UTF-16 surrogate pair, not a character",
    }.get(category, "not a printable character")
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}{f' ({name})' if name else ''}, {kind}"


# --------------------------------------------------------------------------- converting

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SCALAR_TAGS = {int: {_INT}, float: {_FLOAT, _INT}, str: {_STR}, bool: {_BOOL}}
_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
# A number as it is written in JSON, or YAML 1.2: what YAML 1.1 reads otherwise surprises.
_PLAIN_NUMBER = re.compile(r"[-+]?(0|[1-9][0-9]*)(\.[0-9]*)?([eE][-+]?[0-9]+)?|[-+]?\.[0-9]+([eE][-+]?[0-9]+)?")
_HINTS: dict[type, dict[str, type]] = {}
_SHAPES: dict[object, tuple[object, tuple]] = {}  # a type's typing.get_origin and get_args


def type_hints(tp) -> dict[str, type]:
    """``typing.get_type_hints(tp)``, once per class (it compiles every annotation each call)."""
    hints = _HINTS.get(tp)
    if hints is None:
        hints = _HINTS[tp] = typing.get_type_hints(tp)
    return hints


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
        self._fields: dict[type, dict[str, dataclasses.Field]] = {}

    def problem(self, node, keypath: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(f"{self.source}:{line}: {keypath or '(top level)'}: {message}")

    def line_of(self, keypath: str) -> int:
        return self.lines.get(keypath, 0)

    def convert(self, node, tp, keypath: str):
        self.lines.setdefault(keypath, node.start_mark.line + 1)
        shape = _SHAPES.get(tp)
        if shape is None:
            shape = _SHAPES[tp] = (typing.get_origin(tp), typing.get_args(tp))
        origin, args = shape
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if node.tag == _NULL:
                return None
            if len(inner) > 1:  # e.g. ``tuple[str, ...] | str``: a YAML list picks the tuple
                is_list = isinstance(node, self.yaml.SequenceNode)
                inner = [a for a in inner if (typing.get_origin(a) is tuple) == is_list] or inner
            return self.convert(node, inner[0], keypath)
        if dataclasses.is_dataclass(tp):
            return self._dataclass(node, tp, keypath)
        if origin is tuple:
            if not isinstance(node, self.yaml.SequenceNode):
                self.problem(node, keypath, f"expected a list, got {describe(node, self.yaml)}")
                return None
            items = [self.convert(item, args[0], f"{keypath}[{i}]") for i, item in enumerate(node.value)]
            return None if any(item is None for item in items) else tuple(items)
        if origin is Literal:
            value = self._scalar(node, str, keypath)
            if value is not None and value not in args:
                self.problem(node, keypath, f"{shown(value)} is not one of: {', '.join(args)}")
                return None
            return value
        return self._scalar(node, tp, keypath)

    def _scalar(self, node, tp, keypath: str):
        if not isinstance(node, self.yaml.ScalarNode) or node.tag not in _SCALAR_TAGS[tp]:
            message = f"expected {_TYPE_WORDS[tp]}, got {describe(node, self.yaml)}"
            if tp is str and isinstance(node, self.yaml.ScalarNode) and node.style is None and node.tag in _READ_AS:
                message += f": YAML reads {clip(node.value, 40)} as {_READ_AS[node.tag]}; write it in quotes"
            self.problem(node, keypath, message)
            return None
        if tp is str:
            problem = character_problem(node.value)
            if problem:
                self.problem(node, keypath, f"{problem}: write plain text")
                return None
            return node.value
        try:
            value = self._construct(node)
            if tp is float:
                value = float(value)
        except OverflowError:
            value = math.inf
        except Exception:  # noqa: BLE001 -- an explicit tag on text that is no such value: !!int "abc"
            tag = node.tag.rsplit(":", 1)[-1]
            self.problem(node, keypath, f"{shown(node.value)} is not {_TYPE_WORDS[tp] if tp is not float else 'a number'} (it is tagged !!{tag})")
            return None
        if tp is float and not math.isfinite(value):
            self.problem(node, keypath, f"{clip(node.value, 40)} is not a finite number: write a number of {_unit(keypath)}")
            return None
        if node.style is None and node.tag in (_INT, _FLOAT) and not _PLAIN_NUMBER.fullmatch(node.value):
            self.problem(node, keypath, surprise(node.value, value))
            return None
        return value

    def _construct(self, node):
        c = self._constructor
        if node.tag == _INT:
            return c.construct_yaml_int(node)
        if node.tag == _FLOAT:
            return c.construct_yaml_float(node)
        return c.construct_yaml_bool(node)

    def _dataclass(self, node, tp, keypath: str):
        if tp in self.scalar_refused and isinstance(node, self.yaml.ScalarNode) and node.tag != _NULL:
            self.problem(node, keypath, self.scalar_refused[tp])
            return None
        fields = self._fields.get(tp)
        if fields is None:
            fields = self._fields[tp] = {f.name: f for f in dataclasses.fields(tp) if f.metadata.get("schema", True)}
        if not isinstance(node, self.yaml.MappingNode):
            self.problem(node, keypath, f"expected a mapping (keys: {', '.join(fields)}), got {describe(node, self.yaml)}")
            return None
        hints = type_hints(tp)
        values: dict[str, object] = {}
        ok = True
        for key_node, value_node in node.value:
            if not isinstance(key_node, self.yaml.ScalarNode):
                if self.lenient:
                    continue
                self.problem(key_node, keypath or "(top level)", f"a key must be a name, not {describe(key_node, self.yaml)}")
                ok = False
                continue
            key = key_node.value if key_node.tag == _STR else None
            sub_key = _key_label(key_node.value)
            sub = f"{keypath}.{sub_key}" if keypath else sub_key
            if key not in fields and self.lenient:
                continue
            if key not in fields:
                if key_node.value == "<<":
                    hint = " (YAML merge keys are not read here: write the keys out)"
                else:
                    close = difflib.get_close_matches(key_node.value[:100], list(fields), n=1)
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
            # None is a value only where the schema says "| None"; elsewhere a null was refused.
            if value is None and not (value_node.tag == _NULL and type(None) in typing.get_args(hints[key])):
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


_READ_AS = {_INT: "an integer", _FLOAT: "a number", _BOOL: "true or false", "tag:yaml.org,2002:timestamp": "a date"}


def _unit(keypath: str) -> str:
    return "milliseconds" if keypath.endswith("_ms") else "seconds" if keypath.endswith("_s") else "the right kind"


def surprise(text: str, value) -> str:
    """What YAML 1.1 made of a number written another way than plain decimal, and how to write it."""
    digits = text.lstrip("+-")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if ":" in text:
        why = "base 60, like a clock"
        meant = f"write {value} if that is meant"
    elif re.fullmatch(r"0[0-7_]+", digits):
        why = "an octal number"
        meant = f"write {int(digits.replace('_', ''), 10)}"
    elif digits.lower().startswith("0x"):
        why = "a hexadecimal number"
        meant = f"write {value}"
    elif digits.lower().startswith("0b"):
        why = "a binary number"
        meant = f"write {value}"
    else:
        why = "YAML 1.1 syntax"
        meant = f"write {value}"
    return f"YAML 1.1 reads {clip(text, 40)} as {value} ({why}): {meant}, or quote it if it is text"


def is_null(mapping_node, key: str) -> bool:
    return any(k.value == key and v.tag == _NULL for k, v in mapping_node.value)


def schema_fields(tp) -> list[str]:
    return [f.name for f in dataclasses.fields(tp) if f.metadata.get("schema", True)]


def describe(node, yaml) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if not node.tag.startswith("tag:yaml.org,2002:"):
        return f"a value tagged {clip(node.tag, 40)}"
    kind = node.tag.rsplit(":", 1)[-1]
    return f"{kind} {shown(node.value)}" if kind != "null" else "nothing (null)"

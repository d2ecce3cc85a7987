"""Hypothesis strategies that turn a good YAML document into a hostile one.

Each strategy starts from a real document (the example inventory, a shipped playbook)
and mutates it the way a typo, a bad merge or an attacker would: values replaced by
other types, hostile strings, YAML tags, anchors and aliases; keys renamed or dropped;
deep nesting; random bytes spliced in. The suites assert that whatever comes out, the
reader ends in a value or in a located config error, never in a traceback.
"""

from __future__ import annotations

import math
import re

from hypothesis import strategies as st

HOSTILE_STRINGS = [
    "",
    " ",
    "\x1b[31mred\x1b[0m",
    "\x1b]0;title\x07",
    "wit\u202eness",
    "wit\u200bness",
    "\u2066x\u2069",
    "\ufeffbom",
    "\x00nul",
    "\x7f",
    "\x85next-line",
    "\u2028line-separator",
    "not an address; rm -rf /",
    "https://10.0.0.1:8443/x",
    "10.0.0.1:22",
    "[::1]",
    "$(reboot)",
    "${prefix}",
    "${nope}",
    "$",
    "../../etc/passwd",
    "/",
    "x" * 5000,
    "é" * 300,
    "🩺" * 10,
]

# Text written in place of a value: YAML's own surprises, tags, anchors and aliases.
HOSTILE_SCALARS = [
    "05432", "0x1F", "0b101", "0o17", "1_000", "11:30", "1:30.5", "+5", "-0", ".inf", "-.inf", ".nan", ".NaN",
    "1e11", "1.0e+11", "1.0e+400", "99999999999999999999999999", "-1", "0", "1.5", "no", "yes", "on", "off",
    "~", "null", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "'quoted'", '"\\x1b[2J"', '"\\u202e"',
    '"\\udc80"', '!!int "abc"', '!!float "fast"', "!!bool maybe", "!!timestamp today", "!!binary ***",
    "!!python/object:os.system {}", "!!python/name:os.system", "!custom x", "!!set {a, b}", "!!omap [a: 1]",
    "!!pairs [a: 1]", "!!null x", "!!str", "!!map [1]", "!!seq {a: 1}", "&anchor 5", "*undefined", "&a [*a]",
    "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: 1}}}", "? [a]\n  : 1", "|\n  block\n  text", ">-\n  folded",
    '"' + "x" * 2000 + '"', "*", "&", "!", "%", "@", "`", "{", "[", "]", "}", "- - -", "---", "...",
]

KEY_LINE = re.compile(r"^(\s*(?:- )?)([A-Za-z_][A-Za-z0-9_]*):(\s+)(.+)$")


def key_paths(value, prefix=()):
    """Every key path of a loaded document (mapping keys and list indexes), outermost first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from key_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield prefix + (i,)
            yield from key_paths(item, prefix + (i,))


def value_lines(text: str) -> list[int]:
    """Indexes of the lines holding ``key: value`` (the values a mutation may replace)."""
    return [i for i, line in enumerate(text.splitlines()) if KEY_LINE.match(line) and not line.lstrip().startswith("#")]


def yaml_scalar(value) -> str:
    """A Python value as a YAML flow scalar (strings double-quoted with escapes)."""
    import json

    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted one
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
    return json.dumps(value)


python_values = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)

replacements = st.one_of(st.sampled_from(HOSTILE_SCALARS), python_values.map(yaml_scalar))


@st.composite
def replace_a_value(draw, text: str) -> str:
    """``text`` with the value of one ``key: value`` line replaced."""
    lines = text.splitlines()
    i = draw(st.sampled_from(value_lines(text)))
    indent, key, space, _ = KEY_LINE.match(lines[i]).groups()
    replacement = draw(replacements).replace("\n", "\n" + " " * (len(indent) + 2))
    lines[i] = f"{indent}{key}:{space}{replacement}"
    return "\n".join(lines) + "\n"


@st.composite
def rename_or_drop_a_key(draw, text: str) -> str:
    lines = text.splitlines()
    i = draw(st.sampled_from(value_lines(text)))
    indent, key, space, value = KEY_LINE.match(lines[i]).groups()
    choice = draw(st.sampled_from(["drop", "rename", "twice", "merge"]))
    if choice == "drop":
        del lines[i]
    elif choice == "rename":
        new = draw(st.one_of(st.sampled_from(["<<", "? x", "1", "~", "true", key.upper(), key[:-1], '"\\x1b"']), st.text(min_size=1, max_size=8)))
        lines[i] = f"{indent}{yaml_scalar(new) if not new.startswith(('<<', '?')) else new}:{space}{value}"
    elif choice == "twice":
        lines.insert(i, lines[i])
    else:
        lines[i] = f"{indent}{key}: &m {value}"
        lines.append(f"extra: {{<<: *m, {key}: *m}}")
    return "\n".join(lines) + "\n"


@st.composite
def nest_deeply(draw, text: str) -> str:
    depth = draw(st.integers(min_value=1, max_value=1200))
    kind = draw(st.sampled_from(["flow-list", "flow-map", "aliases"]))
    if kind == "flow-list":
        extra = "deep: " + "[" * depth + "]" * depth
    elif kind == "flow-map":
        extra = "deep: " + "{a: " * depth + "1" + "}" * depth
    else:
        depth = min(depth, 200)
        extra = "d0: &d0 [1]\n" + "\n".join(f"d{i}: &d{i} [*d{i - 1}, *d{i - 1}]" for i in range(1, depth))
    return text + extra + "\n"


@st.composite
def splice_bytes(draw, text: str) -> bytes:
    data = text.encode("utf-8")
    at = draw(st.integers(min_value=0, max_value=len(data)))
    cut = draw(st.integers(min_value=0, max_value=8))
    noise = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from([b"\xe9", b"\xff\xfe", b"\x00", b"\xed\xb2\x80", b"\t", b"\r", b"\xc2\x85"])))
    return data[:at] + noise + data[at + cut :]


def documents(text: str):
    """Any one mutation of ``text``, or two in a row: str or bytes."""
    # Weighted by repeating a branch: most documents get a value or a key changed.
    one = st.one_of(replace_a_value(text), replace_a_value(text), rename_or_drop_a_key(text), nest_deeply(text))
    two = one.flatmap(lambda t: st.one_of(replace_a_value(t), rename_or_drop_a_key(t)) if value_lines(t) else st.just(t))
    return st.one_of(one, one, two, two, splice_bytes(text))


def located(source: str, message: str, problems: list[str]) -> list[str]:
    """The lines of a config error that do not start with ``SOURCE:LINE:`` (empty: all located)."""
    pattern = re.compile(rf"^{re.escape(source)}:\d+: ")
    lines = problems if problems else [message]
    return [line for line in lines if not pattern.match(line) and not re.fullmatch(r"… and \d+ more", line)]

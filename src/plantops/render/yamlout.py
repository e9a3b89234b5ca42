"""A YAML emitter for the JSON-shaped data renderers produce (dict, list, str, int,
float, bool, None), ~8x faster than PyYAML's Python representer.

Why not PyYAML here: its representer walks every node in Python and dominated a
full fleet render. The output is plain block YAML that ``yaml.safe_load`` reads
back to the same data — a Hypothesis test holds it to that. Strings are emitted
plain only when PyYAML's own resolver says a plain scalar would read back as that
string; otherwise they are double-quoted with JSON escapes (a subset of YAML's), or
as a literal block when they span lines.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from yaml.nodes import ScalarNode
from yaml.reader import Reader
from yaml.resolver import Resolver

_RESOLVER = Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
# Conservative: characters that can never start or end a special plain scalar. \Z, not $:
# $ also matches before a final newline, and "x\n" emitted plain does not read back.
_PLAIN = re.compile(r"^[A-Za-z0-9_/$(][A-Za-z0-9_./@$+=()%*,\-\[\] :']*\Z")
_UNSAFE_IN_PLAIN = (": ", " #", ",", "[", "]", "'")
_NON_PRINTABLE = Reader.NON_PRINTABLE
_UNSAFE = re.compile(f"{_NON_PRINTABLE.pattern}|[\x85\u2028\u2029]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_PRINTABLE = re.compile(r"^[^\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029\ufeff]*$")


@lru_cache(maxsize=65536)
def _scalar(s: str) -> str:
    """A string scalar as it can stand on one line."""
    if (
        s
        and _PLAIN.match(s)
        and not s.endswith((" ", ":"))
        and not any(u in s for u in _UNSAFE_IN_PLAIN)
        and _RESOLVER.resolve(ScalarNode, s, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
    ):
        return s
    # JSON string escapes are a subset of YAML's double-quoted ones; characters YAML would
    # reject or fold get YAML's own \u / \U escapes (no surrogate pairs).
    return _UNSAFE.sub(_escape, json.dumps(s, ensure_ascii=False))


def _literal(s: str, indent: str) -> str | None:
    """A multi-line string as a literal block, or None when only quoting is exact."""
    if not _PRINTABLE.match(s) or _NON_PRINTABLE.search(s) or "\r" in s or "\t" in s:
        return None
    body = s.rstrip("\n")
    trailing = len(s) - len(body)
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    lines = body.split("\n") + [""] * (trailing - 1 if trailing > 1 else 0)
    if not body or body[0] in " \n" or any(line.endswith(" ") for line in lines):
        return None
    pad = indent + "  "
    return f"|{chomp}\n" + "\n".join(pad + line if line else "" for line in lines)


def _number(v: float) -> str:
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    text = repr(v)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"  # YAML 1.1 floats need a dot, also before an exponent
    return mantissa + e + exponent


def _value(v: Any, indent: str) -> str:
    """Any supported scalar on one line (a multi-line string as a literal block)."""
    t = type(v)
    if t is str:
        if "\n" in v:
            block = _literal(v, indent)
            if block is not None:
                return block
        return _scalar(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _number(v)
    if isinstance(v, str):
        return _value(str(v), indent)
    raise TypeError(f"cannot emit {t.__name__} as YAML")


# The hot path below (``_emit_dict`` / ``_emit_list``) tests exact types (dict, list, str,
# int, bool, None, float) with ``is``, most common first; anything else (other Mappings,
# list subclasses, str or int subclasses, unsupported types) takes the general
# ``_emit_any`` / ``_value`` code, which does what the hot path would for the plain type.
# Scalar texts and ``indent + key + ": "`` prefixes are memoised in bounded dicts. Lines
# are collected without their newline and joined once; a list item's first line is
# re-prefixed in place from the item's own indent to the list's ``- ``.

_CACHE_LIMIT = 8192
# One-line text of exact-str scalars without a newline: a bounded memo in front of
# ``_scalar`` (a plain dict lookup is several times cheaper than the lru_cache call).
_SCALARS: dict[str, str] = {}


def _str_miss(s: str, indent: str) -> str:
    if "\n" in s:
        block = _literal(s, indent)
        return _scalar(s) if block is None else block
    if len(_SCALARS) >= _CACHE_LIMIT:
        _SCALARS.clear()
    text = _SCALARS[s] = _scalar(s)
    return text


# Per nesting depth: (indent, list dash, memo of exact-str key -> ``indent + key + ": "``).
_Level = tuple[str, str, dict[str, str]]


def _make_level(depth: int) -> _Level:
    indent = "  " * depth
    return indent, indent + "- ", {}


_LEVELS: list[_Level] = [_make_level(depth) for depth in range(32)]


def _level(depth: int) -> _Level:
    global _LEVELS  # noqa: PLW0603 - replaced whole, so readers never see a half-grown list
    levels = _LEVELS
    if depth >= len(levels):
        levels = levels + [
            _make_level(d) for d in range(len(levels), max(depth + 1, 2 * len(levels)))
        ]
        _LEVELS = levels
    return levels[depth]


def _key(k: str, indent: str, keys: dict[str, str]) -> str:
    if len(keys) >= _CACHE_LIMIT:
        keys.clear()
    prefix = keys[k] = f"{indent}{_scalar(k)}: "
    return prefix


def _emit_dict(obj: dict[Any, Any], depth: int, out: list[str]) -> None:
    try:
        indent, _, keys = _LEVELS[depth]
    except IndexError:
        indent, _, keys = _level(depth)
    scalars = _SCALARS
    append = out.append
    for k, v in obj.items():
        if type(k) is str:
            try:
                kp = keys[k]
            except KeyError:
                kp = _key(k, indent, keys)
        else:
            kp = f"{indent}{_value(k, indent)}: "
        t = type(v)
        if t is str:
            try:
                text = scalars[v]
            except KeyError:
                text = _str_miss(v, indent)
            append(kp + text)
        elif t is dict:
            if v:
                append(kp[:-1])
                _emit_dict(v, depth + 1, out)
            else:
                append(kp + "{}")
        elif t is list:
            if v:
                append(kp[:-1])
                _emit_list(v, depth, out)
            else:
                append(kp + "[]")
        elif t is int:
            append(kp + int.__repr__(v))
        elif t is bool:
            append(kp + ("true" if v else "false"))
        elif v is None:
            append(kp + "null")
        elif t is float:
            append(kp + _number(v))
        elif isinstance(v, Mapping | list):
            if not v:
                append(kp + ("{}" if isinstance(v, Mapping) else "[]"))
            else:
                append(kp[:-1])
                _emit_any(v, depth if isinstance(v, list) else depth + 1, out)
        else:
            append(kp + _value(v, indent))


def _emit_list(obj: list[Any], depth: int, out: list[str]) -> None:
    try:
        _, dash, _ = _LEVELS[depth]
    except IndexError:
        _, dash, _ = _level(depth)
    cut = len(dash)
    scalars = _SCALARS
    append = out.append
    for item in obj:
        t = type(item)
        if t is dict:
            if item:
                start = len(out)
                _emit_dict(item, depth + 1, out)
                out[start] = dash + out[start][cut:]
            else:
                append(dash + "{}")
        elif t is str:
            try:
                text = scalars[item]
            except KeyError:
                text = _str_miss(item, _level(depth + 1)[0])
            append(dash + text)
        elif t is list:
            if item:
                start = len(out)
                _emit_list(item, depth + 1, out)
                out[start] = dash + out[start][cut:]
            else:
                append(dash + "[]")
        elif t is int:
            append(dash + int.__repr__(item))
        elif t is bool:
            append(dash + ("true" if item else "false"))
        elif item is None:
            append(dash + "null")
        elif t is float:
            append(dash + _number(item))
        elif isinstance(item, Mapping | list):
            if not item:
                append(dash + ("{}" if isinstance(item, Mapping) else "[]"))
            else:
                start = len(out)
                _emit_any(item, depth + 1, out)
                out[start] = dash + out[start][cut:]
        else:
            append(dash + _value(item, _level(depth + 1)[0]))


def _emit_any(obj: Any, depth: int, out: list[str]) -> None:
    """Any value at ``depth``: other Mappings become dicts, list subclasses lists."""
    t = type(obj)
    if t is not dict and t is not list:
        if isinstance(obj, Mapping):
            obj, t = dict(obj), dict
        elif isinstance(obj, list):
            obj, t = list(obj), list
    if t is dict:
        _emit_dict(obj, depth, out)
    elif t is list:
        _emit_list(obj, depth, out)
    else:
        indent = _level(depth)[0]
        out.append(indent + _value(obj, indent))


def emit_yaml(obj: Any) -> str:
    """Block YAML for JSON-shaped ``obj``; key order is preserved."""
    out: list[str] = []
    t = type(obj)
    if t is dict:
        if not obj:
            return "{}\n"
        _emit_dict(obj, 0, out)
    elif t is list:
        if not obj:
            return "[]\n"
        _emit_list(obj, 0, out)
    else:
        if isinstance(obj, Mapping | list) and not obj:
            return "{}\n" if isinstance(obj, Mapping) else "[]\n"
        _emit_any(obj, 0, out)
    # Every line ends with a newline, also the last; nothing at all only for a Mapping
    # that claims items but yields none.
    return "\n".join(out) + "\n" if out else ""

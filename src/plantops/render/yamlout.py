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
# Conservative: characters that can never start or end a special plain scalar.
_PLAIN = re.compile(r"^[A-Za-z0-9_/$(][A-Za-z0-9_./@$+=()%*,\-\[\] :']*$")
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


def _emit(obj: Any, indent: str, out: list[str]) -> None:
    # Exact type checks first: abc isinstance checks dominated a fleet render.
    t = type(obj)
    if t is not dict and t is not list:
        if isinstance(obj, Mapping):
            obj, t = dict(obj), dict
        elif isinstance(obj, list):
            obj, t = list(obj), list
    if t is dict:
        inner = indent + "  "
        for k, v in obj.items():
            key = _scalar(k) if type(k) is str else _value(k, indent)
            tv = type(v)
            if tv is dict or tv is list or isinstance(v, Mapping | list):
                if not v:
                    out.append(
                        f"{indent}{key}: {{}}\n"
                        if isinstance(v, Mapping)
                        else f"{indent}{key}: []\n"
                    )
                else:
                    out.append(f"{indent}{key}:\n")
                    _emit(v, indent if isinstance(v, list) else inner, out)
            else:
                out.append(f"{indent}{key}: {_value(v, indent)}\n")
    elif t is list:
        inner = indent + "  "
        cut = len(indent) + 2
        for item in obj:
            ti = type(item)
            if ti is dict or ti is list or isinstance(item, Mapping | list):
                if not item:
                    out.append(
                        f"{indent}- {{}}\n" if isinstance(item, Mapping) else f"{indent}- []\n"
                    )
                    continue
                sub: list[str] = []
                _emit(item, inner, sub)
                sub[0] = f"{indent}- {sub[0][cut:]}"
                out.extend(sub)
            else:
                out.append(f"{indent}- {_value(item, inner)}\n")
    else:
        out.append(f"{indent}{_value(obj, indent)}\n")


def emit_yaml(obj: Any) -> str:
    """Block YAML for JSON-shaped ``obj``; key order is preserved."""
    if isinstance(obj, Mapping | list) and not obj:
        return "{}\n" if isinstance(obj, Mapping) else "[]\n"
    out: list[str] = []
    _emit(obj, "", out)
    return "".join(out)

"""Safe reading of Odoo addon manifests (``__manifest__.py``).

Odoo itself reads a manifest with ``ast.literal_eval`` (odoo/modules/module.py
``load_manifest``): a manifest is a Python *literal*, never code. plantops does the same,
but bounded first, because an addons path is as untrusted as any input: the file is read
through :func:`plantops.inputs.read_text` (regular files only, size-bounded, links kept in
the tree), parsed with ``ast.parse`` (the parser itself refuses nesting deeper than 200
brackets), and its syntax tree is walked iteratively with a node and depth budget *before*
``ast.literal_eval`` builds a single object. Any node that is not a literal (a call, a
name, an attribute, a comprehension…) is refused with its line and column.

The line of every top-level key and of every item in ``depends`` is kept so findings can
point at the manifest line that causes them. Nothing here executes, prints or writes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manifestoo_core.exceptions import InvalidManifest
from manifestoo_core.manifest import Manifest

from plantops.inputs import BadInput, Limits, read_text

# Odoo 17+ reads ``__manifest__.py`` and, deprecated, ``__openerp__.py``
# (odoo/modules/module.py MANIFEST_NAMES); the first present wins.
MANIFEST_NAMES = ("__manifest__.py", "__openerp__.py")

# The largest real OCA manifest is a few KiB; 1 MiB leaves room and refuses a blob at once.
MANIFEST_LIMITS = Limits(max_bytes=1024 * 1024, max_nodes=50_000, max_depth=32)

_LITERAL_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Constant,
    ast.Load,
)


@dataclass(frozen=True)
class ParsedManifest:
    """A manifest's literal value with the source lines of what findings point at."""

    file: str
    """As shown in messages (relative to the working directory where possible)."""
    data: dict[str, Any]
    manifest: Manifest
    """manifestoo-core's typed view (``depends``, ``version``, ``license``…)."""
    key_lines: dict[str, int] = field(default_factory=dict)
    depend_lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, 1)


def _check_tree(tree: ast.AST, shown: str, limits: Limits) -> None:
    """Refuse a syntax tree that is not a bounded literal, before evaluating it."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0) + 1
        if nodes > limits.max_nodes:
            raise BadInput(shown, line, column, f"manifest holds over {limits.max_nodes:,} values")
        if depth > limits.max_depth:
            raise BadInput(
                shown, line, column, f"manifest nested deeper than {limits.max_depth} levels"
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            if not isinstance(node.operand, ast.Constant):
                raise _not_literal(shown, node)
            continue
        if not isinstance(node, _LITERAL_NODES):
            raise _not_literal(shown, node)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _not_literal(shown: str, node: ast.AST) -> BadInput:
    text = type(node).__name__
    if isinstance(node, ast.Call):
        text = f"a function call ({ast.unparse(node.func)[:40]}(…))"
    elif isinstance(node, ast.Name):
        text = f"a name ({node.id[:40]})"
    return BadInput(
        shown,
        getattr(node, "lineno", 1),
        getattr(node, "col_offset", 0) + 1,
        f"manifest is not a Python literal: {text}",
        "Odoo reads manifests with ast.literal_eval; write the value out",
    )


def parse_manifest_text(
    text: str, shown: str, *, limits: Limits = MANIFEST_LIMITS
) -> ParsedManifest:
    """Parse a manifest's text safely (see the module docstring)."""
    if len(text) > limits.max_bytes:
        raise BadInput(shown, 1, 1, f"manifest is over {limits.max_bytes:,} characters")
    try:
        tree = ast.parse(text, filename=shown, mode="eval")
    except SyntaxError as exc:
        raise BadInput(
            shown, exc.lineno or 1, exc.offset or 1, f"manifest is not valid Python: {exc.msg}"
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise BadInput(shown, 1, 1, f"manifest cannot be parsed: {type(exc).__name__}") from None
    _check_tree(tree, shown, limits)
    body = tree.body
    if not isinstance(body, ast.Dict):
        raise BadInput(
            shown,
            getattr(body, "lineno", 1),
            1,
            "manifest is not a dictionary",
            "a manifest is one {…} literal",
        )
    key_lines: dict[str, int] = {}
    depend_lines: dict[str, int] = {}
    for key, value in zip(body.keys, body.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            line = key.lineno if key is not None else body.lineno
            raise BadInput(shown, line, 1, "manifest keys must be strings")
        if key.value in key_lines:
            raise BadInput(
                shown,
                key.lineno,
                key.col_offset + 1,
                f"key {key.value!r} given twice (first on line {key_lines[key.value]})",
                "Python keeps the last silently; remove one",
            )
        key_lines[key.value] = key.lineno
        if key.value == "depends" and isinstance(value, ast.List | ast.Tuple):
            for item in value.elts:
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    depend_lines.setdefault(item.value, item.lineno)
    try:
        data = ast.literal_eval(tree)
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:  # pragma: no cover
        raise BadInput(shown, 1, 1, f"manifest is not a literal: {exc}") from None
    manifest = Manifest.from_dict(data, source=shown)
    parsed = ParsedManifest(shown, data, manifest, key_lines, depend_lines)
    _check_types(parsed)
    return parsed


def _check_types(parsed: ParsedManifest) -> None:
    """The fields the checks read, typed as Odoo expects (manifestoo-core's getters)."""
    m = parsed.manifest
    for key, getter in (
        ("depends", lambda: m.depends),
        ("version", lambda: m.version),
        ("installable", lambda: m.installable),
        ("license", lambda: m.license),
        ("external_dependencies", lambda: m.external_dependencies),
        ("development_status", lambda: m.development_status),
    ):
        try:
            getter()
        except InvalidManifest:
            raise BadInput(
                parsed.file,
                parsed.line_of(key),
                1,
                f"{key!r} has the wrong type ({type(parsed.data[key]).__name__})",
            ) from None
    if any(not isinstance(d, str) for d in m.depends):
        raise BadInput(parsed.file, parsed.line_of("depends"), 1, "'depends' must list names")
    for kind, deps in m.external_dependencies.items():
        if not isinstance(deps, list | tuple) or any(not isinstance(d, str) for d in deps):
            raise BadInput(
                parsed.file,
                parsed.line_of("external_dependencies"),
                1,
                f"external_dependencies[{kind!r}] must list names",
            )


def read_manifest(path: Path, shown: str, *, root: Path | None) -> ParsedManifest:
    """Read and parse one manifest file; a link in it must stay inside ``root``."""
    text = read_text(path, shown, limits=MANIFEST_LIMITS, root=root)
    return parse_manifest_text(text, shown)


__all__ = [
    "MANIFEST_LIMITS",
    "MANIFEST_NAMES",
    "ParsedManifest",
    "parse_manifest_text",
    "read_manifest",
]

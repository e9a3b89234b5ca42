"""Bounded reading of untrusted input files: fleet specs, manifests, later policies and reports.

Every reader of a file a user hands plantops goes through here, so one set of rules
holds everywhere:

- only regular files are read (a FIFO, socket or device would block or never end);
  the file is opened non-blocking and checked again on the open descriptor, so a file
  swapped for a FIFO between the check and the open is refused too;
- a symbolic link is followed only when its target stays inside the tree being read
  (``root``); a loop or a dangling link is named as such;
- size is bounded before anything is parsed;
- YAML is composed by libyaml (which itself refuses nesting deeper than 1,000) and its
  node graph is checked before any Python object is built: nesting depth, the number
  of nodes *after alias expansion* (a "billion laughs" document is tiny as text and as
  a graph, and explodes only when copied or validated) and recursive aliases;
- JSON nesting is bounded the same way.

A refusal is a :class:`BadInput` (a :class:`~plantops.errors.UserError`, exit 2) with
the file, the line and what to do. Nothing here prints; nothing here writes.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from plantops.errors import Problem, UserError, resolve_path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds for one kind of input. Defaults are generous for hand-written files:
    the largest rendered manifest file of a 1,000-plant fleet is under 100 KiB."""

    max_bytes: int = 16 * MIB
    max_nodes: int = 2_000_000
    """YAML/JSON nodes after alias expansion (scalars, items, keys and values)."""
    max_depth: int = 64
    max_documents: int = 100_000


# A plant file is a few hundred nodes, fleet.yaml of a 1,000-plant group a few thousand.
SPEC_LIMITS = Limits(max_bytes=4 * MIB, max_nodes=100_000, max_depth=48, max_documents=16)
MANIFEST_LIMITS = Limits()


class BadInput(UserError):
    """An input file refused before or while parsing, located (exit 2)."""

    def __init__(self, file: str, line: int, column: int, message: str, hint: str = "") -> None:
        self.file, self.line, self.column, self.message, self.hint = (
            file,
            line,
            column,
            message,
            hint,
        )
        text = f"{file}:{line}:{column}: {message}"
        super().__init__(f"{text} (hint: {hint})" if hint else text)

    def problem(self) -> Problem:
        return Problem(self.file, self.line, self.column, "", self.message, self.hint)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    return next((word for test, word in _KINDS if test(mode)), "not a regular file")


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def confined_target(
    path: Path, shown: str, root: Path | None, resolved: dict[Path, Path] | None = None
) -> Path:
    """``path``, or where its symbolic links lead when that stays inside ``root``.

    ``resolved`` memoises resolved folders over one batch of reads (one fleet load): a
    file that is not itself a link resolves to its resolved folder joined with its name,
    so a thousand files of one folder cost one ``resolve`` of it, not two each."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise BadInput(shown, 1, 1, "no such file") from None
    except OSError as exc:
        raise BadInput(shown, 1, 1, f"cannot read: {exc.strerror}") from exc
    if root is None and not stat.S_ISLNK(info.st_mode):
        return path
    try:
        if (
            resolved is not None
            and not stat.S_ISLNK(info.st_mode)
            and path.name not in ("", ".", "..")
        ):
            target = _resolved(path.parent, resolved) / path.name
        else:
            target = path.resolve(strict=True)
    except RuntimeError:
        raise BadInput(shown, 1, 1, "symbolic link loop", "point the link at a file") from None
    except FileNotFoundError:
        raise BadInput(
            shown, 1, 1, f"dangling symbolic link to {str(path.readlink())!r}", "fix or remove it"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput(shown, 1, 1, "symbolic link loop", "point the link at a file") from None
        raise BadInput(shown, 1, 1, f"cannot follow link: {exc.strerror}") from exc
    if root is not None and not _within(target, _resolved(root, resolved, strict=False)):
        raise BadInput(
            shown,
            1,
            1,
            f"symbolic link leads outside {root.as_posix()!r} (to {target.as_posix()!r})",
            "copy the file into the tree; links out of it are not followed",
        )
    return target


def resolved_folder(folder: Path, memo: dict[Path, Path]) -> Path:
    """Where ``folder`` resolves to (links followed), once per ``memo`` (one fleet load)."""
    return _resolved(folder, memo)


def _resolved(folder: Path, memo: dict[Path, Path] | None, *, strict: bool = True) -> Path:
    def resolve() -> Path:
        return folder.resolve(strict=True) if strict else resolve_path(folder)

    if memo is None:
        return resolve()
    found = memo.get(folder)
    if found is None:
        found = memo[folder] = resolve()
    return found


def read_text(
    path: Path,
    shown: str,
    *,
    limits: Limits,
    root: Path | None = None,
    resolved: dict[Path, Path] | None = None,
) -> str:
    """The UTF-8 text of a regular file of at most ``limits.max_bytes`` bytes
    (``resolved``: see ``confined_target``)."""
    target = confined_target(path, shown, root, resolved)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput(shown, 1, 1, "symbolic link swapped in while reading") from exc
        raise BadInput(shown, 1, 1, f"cannot read: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(
                shown, 1, 1, f"is {file_kind(info.st_mode)}, not a regular file", "remove it"
            )
        if info.st_size > limits.max_bytes:
            raise _too_big(shown, info.st_size, limits)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 * MIB):
            size += len(chunk)
            if size > limits.max_bytes:  # grew while read
                raise _too_big(shown, size, limits)
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BadInput(
            shown, line, column, f"not UTF-8 text: {exc.reason} at byte {exc.start}"
        ) from exc


def _too_big(shown: str, size: int, limits: Limits) -> BadInput:
    return BadInput(
        shown,
        1,
        1,
        f"file is {size:,} bytes, over the limit of {limits.max_bytes:,}",
        "split it into smaller files",
    )


def check_yaml_graph(root: yaml.Node, file: str, limits: Limits) -> None:
    """Refuse a composed document that is too deep, recursive, or too large once its
    aliases are expanded — before a single Python object is built from it.

    Iterative, and linear in the number of *distinct* nodes: each node's expanded size is
    computed once (aliases share the node object, as PyYAML's composer makes them).
    """
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    # (node, depth, children still to visit or None when first met)
    stack: list[tuple[yaml.Node, int, list[yaml.Node] | None]] = [(root, 1, None)]
    while stack:
        node, depth, pending = stack.pop()
        ident = id(node)
        if pending is None:
            if ident in expanded:
                continue
            if ident in on_path:
                raise _at(file, node, "recursive alias: a node contains itself", limits)
            if depth > limits.max_depth:
                raise _at(
                    file, node, f"nested deeper than {limits.max_depth} levels", limits, "flatten"
                )
            if isinstance(node, yaml.ScalarNode):
                expanded[ident] = 1
                continue
            children: list[yaml.Node] = (
                [n for pair in node.value for n in pair]
                if isinstance(node, yaml.MappingNode)
                else list(node.value)
            )
            on_path.add(ident)
            stack.append((node, depth, children))
            stack.extend((child, depth + 1, None) for child in reversed(children))
            continue
        total = 1 + sum(expanded[id(child)] for child in pending)
        on_path.discard(ident)
        if total > limits.max_nodes:
            raise _at(
                file,
                node,
                f"expands to over {limits.max_nodes:,} nodes (aliases of aliases: a YAML bomb?)",
                limits,
                "write the values out instead of nesting aliases",
            )
        expanded[ident] = total


def _at(file: str, node: yaml.Node, message: str, limits: Limits, hint: str = "") -> BadInput:
    _ = limits
    mark = node.start_mark
    return BadInput(file, mark.line + 1, mark.column + 1, message, hint)


class DuplicateKey(Exception):
    """A mapping names one key twice (PyYAML would silently keep the last)."""

    def __init__(self, key: str, line: int, column: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.column, self.first = key, line, column, first


class UniqueKeyLoader(yaml.CSafeLoader):
    """libyaml's parser with the safe constructor, refusing duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Scalar keys compare by tag and text, before construction: cheap, and exactly
        # what makes two keys equal for plain-text keys.
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            ident = (key_node.tag, key_node.value)
            mark = key_node.start_mark
            if ident in seen:
                raise DuplicateKey(key_node.value, mark.line + 1, mark.column + 1, seen[ident])
            seen[ident] = mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def yaml_documents(
    text: str,
    file: str,
    *,
    limits: Limits,
    loader_class: type[yaml.CSafeLoader] = UniqueKeyLoader,
    construct: Callable[[Any, yaml.Node], Any] | None = None,
) -> list[tuple[int, int, Any]]:
    """``(index, line, value)`` of every non-empty document (``index`` counts every
    document from 0, empty ones too), each bounded before it is built.

    ``construct(loader, node)`` builds the value (default: the loader's safe
    constructor). YAML errors are left to the caller, which locates them its own way.
    """
    loader = loader_class(text)
    out: list[tuple[int, int, Any]] = []
    try:
        count = 0
        while loader.check_node():
            node = loader.get_node()
            count += 1
            if node is None:
                continue
            if count > limits.max_documents:
                raise _at(file, node, f"more than {limits.max_documents:,} documents", limits)
            check_yaml_graph(node, file, limits)
            value = construct(loader, node) if construct else loader.construct_document(node)
            if value is None:  # an empty document (``---`` alone)
                continue
            out.append((count - 1, node.start_mark.line + 1, value))
    finally:
        loader.dispose()
    return out


def yaml_documents_located(text: str, file: str, *, limits: Limits) -> list[tuple[int, int, Any]]:
    """:func:`yaml_documents` for readers with no locating of their own: a syntax error
    (libyaml's own nesting limit included) is a :class:`BadInput` at its line and column."""
    try:
        return yaml_documents(text, file, limits=limits)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise BadInput(file, line, column, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise BadInput(file, 1, 1, f"invalid YAML: {exc}") from exc


def json_value(text: str, file: str, *, limits: Limits) -> Any:
    """A JSON document, with its nesting bounded."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(file, exc.lineno, exc.colno, f"invalid JSON: {exc.msg}") from exc
    except RecursionError:
        raise BadInput(
            file, 1, 1, f"JSON nested deeper than {limits.max_depth} levels", "flatten it"
        ) from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > limits.max_depth:
            raise BadInput(
                file, 1, 1, f"JSON nested deeper than {limits.max_depth} levels", "flatten it"
            )
        if nodes > limits.max_nodes:
            raise BadInput(file, 1, 1, f"JSON holds over {limits.max_nodes:,} values")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


__all__ = [
    "MANIFEST_LIMITS",
    "SPEC_LIMITS",
    "BadInput",
    "DuplicateKey",
    "Limits",
    "UniqueKeyLoader",
    "check_yaml_graph",
    "confined_target",
    "file_kind",
    "json_value",
    "read_text",
    "yaml_documents",
]

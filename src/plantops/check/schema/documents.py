"""Reading manifest files: YAML (multi-document) and JSON, files or whole trees.

This is the input edge of ``validate-manifests``. A file that does not parse is
bad input (``UserError``, exit 2) reported with its file and line — never a
traceback, never a silent skip. Files are read through :mod:`plantops.inputs`:
regular files only, links followed only inside the directory being read, size,
nesting and alias expansion bounded. YAML is parsed by libyaml (PyYAML's C loader),
as YAML 1.1 like Kubernetes' own sigs.k8s.io/yaml, and duplicate keys are refused.
"""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from plantops.check.schema.validator import ManifestDocument
from plantops.errors import UserError, display_path
from plantops.inputs import (
    MANIFEST_LIMITS,
    BadInput,
    DuplicateKey,
    confined_target,
    file_kind,
    json_value,
    read_text,
    yaml_documents,
)

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def discover_manifest_files(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, plus every *.yaml/*.yml/*.json under directories (sorted).

    Hidden files and directories (``.git``) inside a directory are skipped. Inside a
    directory, a link that leads out of it, a link that is broken and any entry that is
    not a regular file (FIFO, socket, device) is an error naming it, never a silent skip.
    """
    found: list[Path] = []
    missing: list[str] = []
    refused: list[str] = []
    for path in paths:
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.suffix.lower() not in MANIFEST_SUFFIXES or not _visible(p, path):
                    continue
                try:
                    target = confined_target(p, p.as_posix(), path)
                    mode = target.stat().st_mode
                except BadInput as exc:
                    refused.append(str(exc))
                    continue
                if stat.S_ISDIR(mode):
                    continue
                if not stat.S_ISREG(mode):
                    refused.append(f"{p.as_posix()}: is {file_kind(mode)}, not a regular file")
                    continue
                found.append(p)
        elif path.is_file():
            found.append(path)
        elif path.is_symlink():
            refused.append(f"{path.as_posix()}: broken symbolic link or link loop")
        elif path.exists():
            refused.append(f"{path.as_posix()}: is {file_kind(path.stat().st_mode)}")
        else:
            missing.append(str(path))
    if missing:
        refused.insert(0, f"no such file or directory: {', '.join(missing)}")
    if refused:
        raise UserError("\n".join(refused))
    return list(dict.fromkeys(found))


def _plain(value: Any) -> Any:
    """YAML timestamps become strings, as they are to the API server."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def parse_manifest_text(text: str, file: str, *, is_json: bool = False) -> list[ManifestDocument]:
    """Documents of one file's text; empty documents keep their index but are dropped."""
    if is_json:
        return [ManifestDocument(file, 0, json_value(text, file, limits=MANIFEST_LIMITS), 1)]
    try:
        return [
            ManifestDocument(file, index, _plain(data), line)
            for index, line, data in yaml_documents(text, file, limits=MANIFEST_LIMITS)
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"{where}: invalid YAML: {problem}") from exc
    except DuplicateKey as dup:
        raise UserError(
            f"{file}:{dup.line}:{dup.column}: duplicate key {dup.key!r} (first at line "
            f"{dup.first}); the API server would keep only one of them"
        ) from dup
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{file}: invalid YAML: {first}") from exc


def load_manifests(paths: Sequence[Path], base: Path | None = None) -> list[ManifestDocument]:
    """Every document of every manifest file under ``paths``.

    All unparsable files are reported together in one ``UserError``.
    """
    documents: list[ManifestDocument] = []
    problems: list[str] = []
    for path in discover_manifest_files(paths):
        shown = display_path(path, base)
        try:
            text = read_text(path, shown, limits=MANIFEST_LIMITS)
            documents += parse_manifest_text(text, shown, is_json=path.suffix.lower() == ".json")
        except UserError as exc:
            problems.append(str(exc))
    if problems:
        raise UserError("\n".join(problems))
    return documents


__all__ = [
    "MANIFEST_SUFFIXES",
    "discover_manifest_files",
    "load_manifests",
    "parse_manifest_text",
]

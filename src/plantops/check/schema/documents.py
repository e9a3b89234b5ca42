"""Reading manifest files: YAML (multi-document) and JSON, files or whole trees.

This is the input edge of ``validate-manifests``. A file that does not parse is
bad input (``UserError``, exit 2) reported with its file and line — never a
traceback, never a silent skip.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plantops.check.schema.validator import ManifestDocument
from plantops.errors import UserError, display_path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def discover_manifest_files(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, plus every *.yaml/*.yml/*.json under directories (sorted).

    Hidden files and directories (``.git``) inside a directory are skipped.
    """
    found: list[Path] = []
    missing: list[str] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in MANIFEST_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            missing.append(str(path))
    if missing:
        raise UserError(f"no such file or directory: {', '.join(missing)}")
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
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{file}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
        return [ManifestDocument(file, 0, data)]
    from ruamel.yaml import YAML  # here: only validate-manifests reads YAML this way
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    documents: list[ManifestDocument] = []
    try:
        for index, data in enumerate(yaml.load_all(text)):
            if data is not None:
                documents.append(ManifestDocument(file, index, _plain(data)))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserError(f"{where}: invalid YAML: {problem}") from exc
    except YAMLError as exc:
        raise UserError(f"{file}: invalid YAML: {exc}") from exc
    return documents


def load_manifests(paths: Sequence[Path], base: Path | None = None) -> list[ManifestDocument]:
    """Every document of every manifest file under ``paths``.

    All unparsable files are reported together in one ``UserError``.
    """
    documents: list[ManifestDocument] = []
    problems: list[str] = []
    for path in discover_manifest_files(paths):
        shown = display_path(path, base)
        try:
            text = path.read_text(encoding="utf-8")
            documents += parse_manifest_text(text, shown, is_json=path.suffix.lower() == ".json")
        except UnicodeDecodeError as exc:
            problems.append(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})")
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

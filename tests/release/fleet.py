"""A copy of the example fleet (with its ``releases`` section), and helpers to make locks,
probe runs and rehearsal results for it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.addons.test_addons import addon
from tests.conftest import EXAMPLE

DIGEST = "sha256:" + "cd" * 32
IMAGE = f"registry.acme.example/odoo/odoo:17.0@{DIGEST}"


def release_fleet(tmp: Path, section: str | None = None) -> Path:
    """The example fleet (which has a ``releases:`` section) under ``tmp/fleet``; with
    ``section``, that text replaces the example's ``releases:`` section."""
    root = tmp / "fleet"
    shutil.copytree(EXAMPLE, root)
    if section is not None:
        path = root / "fleet.yaml"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        start = lines.index("releases:\n")
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i][:1] not in (" ", "#", "\n")),
            len(lines),
        )
        path.write_text("".join(lines[:start] + lines[end:]) + section, encoding="utf-8")
    return root


def addons_repo(tmp: Path, name: str = "addons") -> Path:
    root = tmp / name
    addon(root, "acme_mrp", depends=["mrp"])
    addon(root, "acme_qc", depends=["acme_mrp"], version="17.0.2.1.0")
    return root


def probe_run(
    targets: list[tuple[str, str]], *, ok: bool = True, serie: str = "17.0"
) -> dict[str, Any]:
    """A ``plantops.io/probe-run/v1`` document for (plant, environment) targets."""
    checks = [
        {"check": "health", "status": "pass", "detail": "status pass", "data": {}},
        {
            "check": "version",
            "status": "pass" if ok else "fail",
            "detail": "ok" if ok else "server_serie 16.0, the release says 17.0",
            "data": {"server_serie": serie},
        },
    ]
    return {
        "schema": "plantops.io/probe-run/v1",
        "started_at": "2026-12-01T00:00:00+00:00",
        "ok": ok,
        "targets": [
            {
                "name": f"{p}-{e}",
                "plant": p,
                "environment": e,
                "expected_version": "17.0",
                "ok": ok,
                "checks": checks,
            }
            for p, e in targets
        ],
    }


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path

"""A copy of the example fleet with a ``releases`` section, and helpers to make locks,
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

RELEASES = """
releases:
  shift_change_margin_minutes: 30
  stages:
    dev:
      gates: [addons]
    test:
      gates: [addons, smoke, soak]
      soak_hours: 2
    staging:
      gates: [addons, vulnerabilities, smoke, approvals, soak]
      approvals: {count: 1, roles: [qa]}
      soak_hours: 24
    prod:
      gates: [addons, vulnerabilities, rehearsal, smoke, approvals, soak, windows]
      approvals: {count: 2, roles: [plant-manager, release-manager]}
      approvals_by_tier:
        pilot: {count: 1, roles: [release-manager]}
      soak_hours: 48
      wave_soak_hours: 4
      windows:
        - {name: weekend, rrule: "FREQ=WEEKLY;BYDAY=SA,SU", at: "00:00", duration_hours: 24}
"""


def release_fleet(tmp: Path, extra: str = RELEASES) -> Path:
    """The example fleet under ``tmp/fleet`` with the releases section appended."""
    root = tmp / "fleet"
    shutil.copytree(EXAMPLE, root)
    with (root / "fleet.yaml").open("a", encoding="utf-8") as fh:
        fh.write(extra)
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

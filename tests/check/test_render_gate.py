"""The plan's schema and capacity gates return their findings as data, not only as text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EXAMPLE, TODAY
from typer.testing import CliRunner

from plantops import services
from plantops.check.schema import SchemaFinding
from plantops.cli.main import app
from plantops.render import RenderContext
from plantops.render.assemble import RenderedDeployment

real_render = services.render_deployment_full


def _typo_in_web_deployment(dep: Any, ctx: RenderContext) -> RenderedDeployment:
    """The real renderer, with a renderer bug: ``replicass`` in every web Deployment."""
    rendered = real_render(dep, ctx)
    for _, obj in rendered.objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"].endswith("-web"):
            obj["spec"]["replicass"] = obj["spec"].pop("replicas", 1)
    return rendered


@pytest.fixture
def broken_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "render_deployment_full", _typo_in_web_deployment)


@pytest.mark.usefixtures("broken_renderer")
def test_schema_findings_are_carried_by_the_gate_failure(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(EXAMPLE, out, today=TODAY)
    gate = caught.value
    assert gate.exit_code == 1 and gate.capacity == ()
    assert gate.schema, "findings as data"
    assert all(isinstance(f, SchemaFinding) for f in gate.schema)
    first = gate.schema[0]
    assert first.kind == "Deployment" and first.path == "spec.replicass"
    assert first.message == 'unknown field "replicass" (did you mean "replicas"?)'
    assert first.file.endswith(".yaml") and first.name.endswith("-web")
    # the message is the same findings as text, for a human
    assert str(gate).startswith(f"{len(gate.schema)} schema finding(s) in rendered objects")
    assert first.render() in str(gate)
    assert not out.exists()


@pytest.mark.usefixtures("broken_renderer")
def test_plan_json_prints_the_findings_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["plan", str(EXAMPLE), "--out", str(out), "--format", "json"]
    result = CliRunner().invoke(app, [*args, "--today", TODAY.isoformat()])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    found = payload["schema_findings"]
    assert found and {f["path"] for f in found} == {"spec.replicass"}
    assert {"file", "document_index", "kind", "name", "message", "line"} <= set(found[0])
    assert payload["capacity_findings"] == []
    assert not out.exists()


def test_capacity_findings_are_data_too(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace(
            "{name: odoo, vcpu: 16, memory_gib: 64,", "{name: odoo, vcpu: 8, memory_gib: 32,"
        )
    )
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    capacity = caught.value.capacity
    assert capacity and any(f.where == "clusters/eu-lyon-meddev/lyon-meddev-prod" for f in capacity)
    assert str(caught.value).startswith(f"{len(capacity)} capacity finding(s)")
    assert caught.value.to_dict()["capacity_findings"][0].keys() == {"where", "resource", "message"}

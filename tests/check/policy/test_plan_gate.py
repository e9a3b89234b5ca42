"""The policy gate inside ``plan``: baseline and fleet CEL rules on the rendered
deployments, exceptions and thresholds as ``check`` applies them; a failing finding
refuses the write (exit 1) with the findings as data; re-plans check only what they
render."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EXAMPLE, TODAY
from typer.testing import CliRunner

from plantops import services
from plantops.check.policy.gate import document_lines
from plantops.cli.main import app

CRON_EXCEPTION = """  - rule: PO-POD-008
    object: Deployment/*/*-odoo-cron
    owner: platform-team@acme.example
    reason: cron pods serve no HTTP; liveness comes from the cron heartbeat alert
    expires: 2027-06-30
"""


def fleet_copy(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    return root


def exceptions_file(root: Path) -> Path:
    return root / "policies" / "exceptions.yaml"


def without_cron_exception(root: Path, prod: str = "low", others: str = "low") -> None:
    """Drop the cron-probe exception; PO-POD-008 is low, so fail prod (and the others)
    at ``prod`` (``others``) and above."""
    path = exceptions_file(root)
    path.write_text(path.read_text().replace(CRON_EXCEPTION, ""))
    (root / "policies" / "settings.yaml").write_text(
        "registries: [registry.acme.example, docker.io]\n"
        f"default_threshold: {others}\nthresholds: {{prod: {prod}}}\n"
    )


def test_example_plans_through_the_gate_with_its_exceptions(tmp_path: Path) -> None:
    calls: list[int] = []
    real = services.policy_gate_findings

    def counting(gate: Any, dep: Any, rendered: Any) -> Any:
        calls.append(len(rendered.objects))
        return real(gate, dep, rendered)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(services, "policy_gate_findings", counting)
        res = services.plan_fleet(EXAMPLE, tmp_path / "out", today=TODAY)
    assert len(calls) == len(res.plan.deployments) and sum(calls) > 1000


def test_finding_without_exception_refuses_the_write(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    without_cron_exception(root)
    out = tmp_path / "out"
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, out, today=TODAY)
    gate = caught.value
    assert gate.exit_code == 1 and gate.schema == () and gate.capacity == ()
    assert gate.policy and {f.rule for f in gate.policy} == {"PO-POD-008"}
    first = gate.policy[0]
    assert first.kind == "Deployment" and first.name.endswith("-odoo-cron")
    assert first.file.endswith(".yaml") and first.line >= 1
    assert first.path.startswith("$.spec.template.spec.containers[")
    assert first.remediation
    # The file and line point at the object's document (the same file the example writes).
    ok = tmp_path / "ok"
    services.plan_fleet(EXAMPLE, ok, today=TODAY)
    lines = (ok / first.file).read_text().splitlines()[first.line - 1 :]
    document = lines[: next((i for i, ln in enumerate(lines) if ln == "---"), len(lines))]
    assert f"  name: {first.name}" in document and "kind: Deployment" in document
    assert str(gate).startswith(f"{len(gate.policy)} policy finding(s)")
    assert not out.exists()


def test_expired_exception_stops_covering_at_plan_time(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    path = exceptions_file(root)
    path.write_text(path.read_text().replace("expires: 2027-06-30", "expires: 2026-11-01"))
    without_cron_exception(root)  # thresholds at low; the edited (expired) entry stays
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    assert {f.rule for f in caught.value.policy} == {"PO-POD-008"}
    assert all("expired 2026-11-01" in f.message for f in caught.value.policy)


def test_user_cel_rules_gate_the_plan_and_carry_the_spec_location(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    (root / "policies" / "team.yaml").write_text(
        "rules:\n"
        "  - id: TEAM-001\n"
        "    severity: high\n"
        "    match: {kinds: [Deployment], labels: {plantops.io/plant: lyon-meddev}}\n"
        "    expression: \"has(object.metadata.labels) && 'team' in object.metadata.labels\"\n"
        "    message: every Lyon deployment names its team\n"
        "    remediation: add a team label\n"
    )
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    found = caught.value.policy
    assert found and {f.rule for f in found} == {"TEAM-001"}
    assert {f.plant for f in found} == {"lyon-meddev"}


def test_thresholds_per_environment_decide_what_fails(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    without_cron_exception(root, prod="low", others="critical")
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    assert {f.environment for f in caught.value.policy} == {"prod"}
    # The example's own thresholds (medium and above): a low finding does not stop a plan.
    medium = fleet_copy(tmp_path / "medium")
    without_cron_exception(medium, prod="medium", others="medium")
    services.plan_fleet(medium, tmp_path / "out-medium", today=TODAY)


def test_plan_json_prints_policy_findings_and_exits_1(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    without_cron_exception(root)
    out = tmp_path / "out"
    args = ["plan", str(root), "--out", str(out), "--format", "json"]
    result = CliRunner().invoke(app, [*args, "--today", TODAY.isoformat()])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert payload["schema_findings"] == [] and payload["capacity_findings"] == []
    found = payload["policy_findings"]
    assert found and {f["rule"] for f in found} == {"PO-POD-008"}
    assert {"rule", "severity", "object", "file", "line", "path", "remediation"} <= set(found[0])
    assert not out.exists()


def test_replan_checks_only_the_deployments_it_renders(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    out = tmp_path / "out"
    services.plan_fleet(root, out, today=TODAY)
    plant = root / "plants" / "brno-components.yaml"
    plant.write_text(plant.read_text().replace("orders_per_day: ", "orders_per_day: 1", 1))
    seen: list[str] = []
    real = services.policy_gate_findings

    def recording(gate: Any, dep: Any, rendered: Any) -> Any:
        seen.append(dep.id)
        return real(gate, dep, rendered)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(services, "policy_gate_findings", recording)
        res = services.plan_fleet(root, out, today=TODAY)
    brno = {d.id for d in res.plan.deployments if "brno-components" in d.id}
    assert seen and set(seen) <= brno | {d.id for d in res.plan.for_plant("brno-components")}
    assert len(seen) < len(res.plan.deployments)


def test_a_policy_change_rechecks_every_deployment(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    out = tmp_path / "out"
    services.plan_fleet(root, out, today=TODAY)
    without_cron_exception(root)
    with pytest.raises(services.RenderGateFailed):
        services.plan_fleet(root, out, today=TODAY)


def test_document_lines() -> None:
    text = "# head\napiVersion: v1\nkind: A\n---\n\napiVersion: v1\n---\nkind: B\n"
    assert document_lines(text) == [2, 6, 8]


def low_thresholds(root: Path) -> None:
    """Fail every environment at low and above, keeping every exception."""
    (root / "policies" / "settings.yaml").write_text(
        "registries: [registry.acme.example, docker.io]\ndefault_threshold: low\n"
    )


def test_an_exception_expiring_fails_the_next_plan_though_no_file_changed(
    tmp_path: Path,
) -> None:
    root = fleet_copy(tmp_path)
    low_thresholds(root)
    out = tmp_path / "out"
    first = services.plan_fleet(root, out, today=TODAY)
    assert first.tree.rendered == len(first.plan.deployments)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # The cron probe exception runs until 2027-06-30: the day after, every deployment is
    # checked again (nothing else changed) and its findings fail the plan.
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, out, today=dt.date(2027, 7, 1))
    found = caught.value.policy
    assert found and {(f.rule, f.kind) for f in found} == {("PO-POD-008", "Deployment")}
    assert all("expired 2027-06-30" in f.message for f in found)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing written


def test_exceptions_expiring_within_30_days_are_plan_warnings(tmp_path: Path) -> None:
    res = services.plan_fleet(EXAMPLE, tmp_path / "out", today=dt.date(2027, 6, 14))
    notes = [w for w in res.warnings if "policy exception" in w.message]
    assert [(w.file, w.severity) for w in notes] == [("policies/exceptions.yaml", "warning")]
    (note,) = notes
    assert "PO-POD-008" in note.message and "expires in 16 day(s) (2027-06-30)" in note.message
    assert note.line == 4 and "platform-team@acme.example" in note.message
    assert "cron" in note.hint
    quiet = services.plan_fleet(EXAMPLE, tmp_path / "quiet", today=TODAY)
    assert not [w for w in quiet.warnings if "policy exception" in w.message]


def test_plan_text_names_the_object_line_and_fix_and_exits_1(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    without_cron_exception(root)
    out = tmp_path / "out"
    args = ["plan", str(root), "--out", str(out), "--today", TODAY.isoformat()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())  # Rich wraps long lines
    assert "policy finding(s) at their environment's threshold" in text
    assert "PO-POD-008 [low] Deployment/" in text and "-odoo-cron" in text
    assert "fix: add readinessProbe and livenessProbe" in text
    assert "odoo.yaml:" in text and not out.exists()


def test_check_reports_a_fleet_the_plan_gate_would_refuse(tmp_path: Path) -> None:
    """``check`` renders without the gate and reports every finding in its own format."""
    root = fleet_copy(tmp_path)
    without_cron_exception(root)
    result = services.check_target(root, today=TODAY)
    failing = result.failing
    assert failing and {f.rule for f in failing} == {"PO-POD-008"}
    assert {f.kind for f in failing} == {"Deployment"}  # the cron pods, nothing else
    assert not result.suppressed  # that was the example's only exception


def test_the_gate_runs_for_fleets_with_a_policies_folder(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    shutil.rmtree(root / "policies")
    fleet = root / "fleet.yaml"
    text = fleet.read_text()
    pinned = "docker.io/library/redis:7.4@sha256:"
    start = text.index(pinned)
    fleet.write_text(text[:start] + "docker.io/library/redis:7.4" + text[text.index("\n", start) :])
    services.plan_fleet(root, tmp_path / "no-policies", today=TODAY)  # no gate: written
    (root / "policies").mkdir()
    (root / "policies" / "settings.yaml").write_text("default_threshold: high\n")
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, tmp_path / "gated", today=TODAY)
    found = caught.value.policy
    assert {f.rule for f in found} == {"PO-IMG-001"}
    assert {f.kind for f in found} == {"StatefulSet"}
    assert all("redis:7.4'" in f.message for f in found)


def test_a_platform_image_finding_points_at_its_own_spec_line(tmp_path: Path) -> None:
    root = fleet_copy(tmp_path)
    fleet_yaml = root / "fleet.yaml"
    lines = fleet_yaml.read_text(encoding="utf-8").splitlines(keepends=True)
    (n,) = [i for i, line in enumerate(lines) if line.lstrip().startswith("redis: docker.io")]
    lines[n] = "    redis: docker.io/library/redis:7.4\n"  # a tag, no digest
    fleet_yaml.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(services.RenderGateFailed) as caught:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    found = [f for f in caught.value.policy if f.rule == "PO-IMG-001"]
    assert found and {f.kind for f in found} == {"StatefulSet"}
    # the redis line of fleet.yaml (platform.images.redis), not odoo.digest
    assert {f.spec_location for f in found} == {f"fleet.yaml:{n + 1}:5"}
    assert all("redis:7.4" in f.message for f in found)

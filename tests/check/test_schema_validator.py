"""SchemaValidator: strict core and CRD validation, findings as data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from schema_samples import (
    CORE_FACTORIES,
    CR_FACTORIES,
    cnpg_cluster,
    config_map,
    deployment,
    middleware,
    mutated,
    service,
)

from plantops.check.schema import SchemaFinding, SchemaValidator
from plantops.errors import UserError


def paths(findings: list[SchemaFinding]) -> list[str]:
    return [f.path for f in findings]


@pytest.mark.parametrize("factory", CORE_FACTORIES + CR_FACTORIES, ids=lambda f: f.__name__)
def test_realistic_objects_are_valid(validator: SchemaValidator, factory: Any) -> None:
    assert validator.validate(factory()) == []
    assert validator.is_valid(factory())


def test_unknown_field_on_deployment_is_rejected_with_a_hint(validator: SchemaValidator) -> None:
    obj = mutated(deployment(), "spec.replicass", 3)
    (finding,) = validator.validate(obj, file="web.yaml", document_index=2)
    assert finding == SchemaFinding(
        file="web.yaml",
        document_index=2,
        api_version="apps/v1",
        kind="Deployment",
        name="lyon-odoo-web",
        path="spec.replicass",
        message='unknown field "replicass" (did you mean "replicas"?)',
    )
    assert not validator.is_valid(obj)


def test_unknown_field_deep_in_a_pod_template(validator: SchemaValidator) -> None:
    obj = mutated(deployment(), "spec.template.spec.containers[0].securityContext.runAsRoot", True)
    assert paths(validator.validate(obj)) == [
        "spec.template.spec.containers[0].securityContext.runAsRoot"
    ]


def test_wrong_types_are_rejected(validator: SchemaValidator) -> None:
    obj = mutated(deployment(), "spec.replicas", "2")
    obj = mutated(obj, "spec.template.spec.containers[0].ports[0].containerPort", 80.5)
    findings = validator.validate(obj)
    assert paths(findings) == [
        "spec.replicas",
        "spec.template.spec.containers[0].ports[0].containerPort",
    ]
    assert findings[0].message == 'expected integer, got string "2"'


def test_missing_required_field(validator: SchemaValidator) -> None:
    obj = deployment()
    del obj["spec"]["template"]["spec"]["containers"][0]["name"]
    (finding,) = validator.validate(obj)
    assert finding.path == "spec.template.spec.containers[0]"
    assert finding.message == 'missing required field "name"'


def test_every_problem_of_an_object_is_reported(validator: SchemaValidator) -> None:
    obj = mutated(service(), "spec.typo", 1)
    obj = mutated(obj, "spec.ports[0].port", "http")
    obj = mutated(obj, "metadata.labelz", {})
    assert paths(validator.validate(obj)) == ["metadata.labelz", "spec.ports[0].port", "spec.typo"]


def test_typo_in_cloudnativepg_cluster_is_rejected(validator: SchemaValidator) -> None:
    obj = mutated(cnpg_cluster(), "spec.postgresql.paramters", {"work_mem": "4MB"})
    (finding,) = validator.validate(obj)
    assert finding.path == "spec.postgresql.paramters"
    assert '"parameters"' in finding.message


def test_unknown_top_level_field_in_a_custom_resource(validator: SchemaValidator) -> None:
    obj = mutated(cnpg_cluster(), "specs", {})
    assert paths(validator.validate(obj)) == ["specs"]


def test_custom_resource_metadata_is_checked_as_object_meta(validator: SchemaValidator) -> None:
    obj = mutated(cnpg_cluster(), "metadata.label", {"a": "b"})
    obj = mutated(obj, "metadata.annotations", {"a": 1})
    assert paths(validator.validate(obj)) == ["metadata.annotations.a", "metadata.label"]


def test_traefik_ip_allow_list_not_ip_white_list(validator: SchemaValidator) -> None:
    assert validator.validate(middleware()) == []
    wrong = middleware()
    wrong["spec"] = {"IPWhiteList": wrong["spec"]["ipAllowList"]}
    (finding,) = validator.validate(wrong)
    assert finding.path == "spec.IPWhiteList"
    # The hint points at the current field, not at the deprecated ipWhiteList.
    assert 'did you mean "ipAllowList"' in finding.message


def test_preserve_unknown_fields_stays_open(validator: SchemaValidator) -> None:
    # Traefik's Middleware "plugin" preserves unknown fields: anything goes there.
    obj = middleware()
    obj["spec"] = {"plugin": {"my-plugin": {"anything": [1, {"goes": True}]}}}
    assert validator.validate(obj) == []


def test_kind_without_schema_is_a_finding_unless_ignored() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    (finding,) = SchemaValidator("1.30").validate(obj)
    assert finding.kind == "Widget"
    assert finding.message.startswith("no schema for Widget (example.com/v1)")
    assert "--schemas DIR" in finding.message
    assert SchemaValidator("1.30", ignore_missing_schemas=True).validate(obj) == []


def test_removed_core_api_version_is_a_finding(validator: SchemaValidator) -> None:
    obj = {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "x"}}
    (finding,) = validator.validate(obj)
    assert "no schema for Ingress (extensions/v1beta1) in Kubernetes 1.30" in finding.message


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ([1, 2], ""),
        ({"kind": "ConfigMap"}, "apiVersion"),
        ({"apiVersion": "v1", "kind": 3}, "kind"),
    ],
)
def test_non_objects_are_findings(validator: SchemaValidator, obj: Any, path: str) -> None:
    (finding,) = validator.validate(obj)
    assert finding.path == path


def test_validate_many_numbers_plain_objects(validator: SchemaValidator) -> None:
    objs = [config_map(), mutated(config_map(), "data", {"a": 1}), service()]
    findings = validator.validate_many(objs)
    assert [(f.document_index, f.path) for f in findings] == [(1, "data.a")]


def test_list_objects_are_validated_item_by_item(validator: SchemaValidator) -> None:
    obj = {"apiVersion": "v1", "kind": "List", "items": [config_map(), mutated(service(), "x", 1)]}
    assert paths(validator.validate(obj)) == ["items[1].x"]


def test_validator_does_not_modify_objects(validator: SchemaValidator) -> None:
    obj = cnpg_cluster()
    before = json.dumps(obj, sort_keys=True)
    validator.validate(obj)
    assert json.dumps(obj, sort_keys=True) == before


@pytest.mark.parametrize(
    ("requested", "resolved"), [("1.30", "1.30"), ("v1.30.4", "1.30"), ("1.99", None)]
)
def test_kubernetes_version_resolution(requested: str, resolved: str | None) -> None:
    validator = SchemaValidator(requested)
    if resolved is None:  # newer than anything shipped: the newest shipped
        assert validator.resolved_version != requested
        assert validator.resolved_version.startswith("1.")
    else:
        assert validator.resolved_version == resolved


@pytest.mark.parametrize("requested", ["1.2", "banana", "2"])
def test_unavailable_or_malformed_version_is_a_user_error(requested: str) -> None:
    with pytest.raises(UserError, match="Kubernetes"):
        SchemaValidator(requested)


def test_schema_directory_takes_precedence(tmp_path: Path) -> None:
    group = tmp_path / "example.com"
    group.mkdir()
    (group / "widget_v1.json").write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                },
            }
        )
    )
    validator = SchemaValidator("1.30", crd_dirs=[tmp_path])
    ok = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
    }
    assert validator.validate(ok) == []
    # Strictness is added where the CRD schema is structural but left open.
    assert paths(validator.validate(mutated(ok, "spec.colour", "red"))) == ["spec.colour"]
    assert paths(validator.validate(mutated(ok, "metadata.nme", "x"))) == ["metadata.nme"]


def test_missing_schema_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        SchemaValidator("1.30", crd_dirs=[tmp_path / "nope"])


def test_broken_schema_file_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "example.com").mkdir()
    (tmp_path / "example.com" / "widget_v1.json").write_text("{not json")
    validator = SchemaValidator("1.30", crd_dirs=[tmp_path])
    with pytest.raises(UserError, match=r"widget_v1\.json:1:2"):
        validator.validate({"apiVersion": "example.com/v1", "kind": "Widget"})


def test_prepared_schemas_are_kept_on_disk_and_a_damaged_entry_is_prepared_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plantops.check.schema import validator as module

    monkeypatch.setenv("PLANTOPS_VALIDATOR_CACHE", str(tmp_path))
    monkeypatch.setattr(module, "_COMPILED", {})
    ok = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    bad = dict(ok, datta={})
    assert SchemaValidator("1.30").is_valid(ok)
    (entry,) = tmp_path.glob("prepared-*.json")
    assert "$defs" in json.loads(entry.read_text())  # refs inlined, one document

    # A new process (an empty in-process cache) compiles the kept text: nothing prepared.
    monkeypatch.setattr(module, "_COMPILED", {})
    calls = []
    real_inline = module.KubernetesSchemas.load

    def counting_load(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real_inline(self, *args, **kwargs)

    monkeypatch.setattr(module.KubernetesSchemas, "load", counting_load)
    again = SchemaValidator("1.30")
    assert again.is_valid(ok) and not again.is_valid(bad)
    assert calls == []
    assert [f.path for f in again.validate(bad)] == ["datta"]  # explained from the kept text

    entry.write_text("{not json")
    monkeypatch.setattr(module, "_COMPILED", {})
    third = SchemaValidator("1.30")
    assert third.is_valid(ok) and not third.is_valid(bad)
    assert len(calls) == 1  # prepared again
    assert json.loads(entry.read_text())  # and rewritten


@pytest.mark.parametrize(
    ("obj", "finding"),
    [
        (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "a/b"},
            },
            ("metadata.name", "'a/b' is not a valid name: no '/', '%', '.' or '..'"),
        ),
        (
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": ".."},
            },
            ("metadata.name", "'..' is not a valid name: no '/', '%', '.' or '..'"),
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"labels": {}}},
            ("metadata.name", "metadata.name is missing or not a string"),
        ),
        (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ""}},
            ("metadata.name", "metadata.name is missing or not a string"),
        ),
        (
            {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "Pg"}},
            (
                "metadata.name",
                "'Pg' is not a valid Cluster name: it must be a DNS-1123 subdomain of at most "
                "253 characters: lowercase letters, digits and '-', '.'",
            ),
        ),
    ],
)
def test_object_names_are_checked_for_core_and_custom_kinds(
    validator: SchemaValidator, obj: dict[str, Any], finding: tuple[str, str]
) -> None:
    found = [(f.path, f.message) for f in validator.validate(obj)]
    assert finding in found
    assert not validator.is_valid(obj)


def test_generate_name_stands_in_for_a_name(validator: SchemaValidator) -> None:
    job = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "odoo-"}}
    assert validator.validate(job) == []


def test_a_bad_name_is_reported_with_every_other_problem(validator: SchemaValidator) -> None:
    obj = mutated(config_map(), "metadata.name", "Bad_Name")
    obj = mutated(obj, "datta", {})
    assert paths(validator.validate(obj)) == ["datta", "metadata.name"]


def test_the_fast_path_never_skips_the_identity_check() -> None:
    validator = SchemaValidator("1.30")
    assert not validator.has_schema("", "ConfigMap")
    assert validator.has_schema("v1", "ConfigMap")
    (finding,) = validator.validate({"apiVersion": "", "kind": "ConfigMap"})
    assert finding.path == "apiVersion"
    assert not validator.is_valid({"apiVersion": "", "kind": "ConfigMap"})
    # a List of known kinds is still checked item by item
    items = [config_map(), mutated(config_map(), "datta", {})]
    assert paths(validator.validate({"apiVersion": "v1", "kind": "List", "items": items})) == [
        "items[1].datta"
    ]

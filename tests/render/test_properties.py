"""Invariants over every object rendered for the example fleet."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantops.check.compose import validate_compose
from plantops.check.schema import SchemaValidator
from plantops.render import render_deployment_full, standard_labels
from tests.render.conftest import Rendered

SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY)", re.IGNORECASE)


def test_every_object_has_the_standard_labels(example: Rendered) -> None:
    for dep, path, obj in example.objects:
        labels = obj["metadata"]["labels"]
        expected = standard_labels(dep, labels["app.kubernetes.io/component"])
        missing = {k for k in expected if k not in labels}
        assert not missing, f"{path}: missing labels {sorted(missing)}"
        for key in ("plantops.io/environment", "plantops.io/tier", "plantops.io/pattern"):
            assert labels[key] == expected[key], path


def test_fleet_objects_carry_the_fleet_labels(example: Rendered) -> None:
    for path, obj in example.fleet_objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "plantops", path
        # a project belongs to one tier; an ApplicationSet to one cluster, of any tier
        scope = "plantops.io/tier" if obj["kind"] == "AppProject" else "plantops.io/cluster"
        assert scope in labels, path


def test_every_object_passes_schema_validation(example: Rendered, shared_crds: Path | None) -> None:
    dirs = [shared_crds] if shared_crds else []
    validators: dict[str, SchemaValidator] = {}
    findings = []
    for dep, path, obj in example.objects:
        assert dep.cluster is not None
        version = dep.cluster.kubernetes_version
        v = validators.setdefault(version, SchemaValidator(version, crd_dirs=dirs))
        findings += v.validate(obj, file=path)
    v = SchemaValidator("1.31", crd_dirs=dirs)
    for path, obj in example.fleet_objects:
        findings += v.validate(obj, file=path)
    assert not findings, "\n".join(f.render() for f in findings)
    kinds = {obj["kind"] for _, _, obj in example.objects}
    assert {"Cluster", "ObjectStore", "IngressRoute", "Middleware", "ExternalSecret"} <= kinds


def test_compose_files_pass_the_compose_spec(example: Rendered) -> None:
    assert example.compose, "the example has a VM plant"
    for _, path, doc in example.compose:
        assert validate_compose(doc) == [], path


def test_compose_validation_reports_problems() -> None:
    assert validate_compose({"services": {"x": {"image": 3}}})


def _walk(node: object, path: str = ""):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
        yield path, node
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_no_secret_value_reaches_output(example: Rendered) -> None:
    for _, path, obj in example.objects:
        assert obj["kind"] != "Secret", path
        for where, node in _walk(obj):
            name = node.get("name")
            if isinstance(name, str) and "value" in node and SECRET_NAME.search(name):
                pytest.fail(f"{path}{where}: {name} has a literal value")
        if obj["kind"] == "ExternalSecret":
            template = obj["spec"]["target"].get("template", {}).get("data", {})
            for key, value in template.items():
                if SECRET_NAME.search(key):
                    assert value.startswith("{{") and value.endswith("}}"), path
    for _, path, doc in example.compose:
        for svc in doc["services"].values():
            for var in svc.get("environment", {}):
                assert not SECRET_NAME.search(var) or var.endswith("_FILE"), (path, var)
    literal = re.compile(r"^\s*(admin_passwd|db_password)\s*=", re.MULTILINE)
    for path, text in example.files.items():
        assert not literal.search(text), f"{path} sets a password in a config file"


def test_rendering_twice_is_identical(example: Rendered) -> None:
    for dep in example.deployments[:6]:
        a = render_deployment_full(dep, example.ctx).files
        b = render_deployment_full(dep, example.ctx).files
        assert a == b


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_deployment_renders_deterministically(example: Rendered, data: st.DataObject) -> None:
    dep = data.draw(st.sampled_from(example.deployments))
    first = [(f.path, f.content) for f in render_deployment_full(dep, example.ctx).files]
    second = [(f.path, f.content) for f in render_deployment_full(dep, example.ctx).files]
    assert first == second
    paths = [p for p, _ in first]
    assert len(paths) == len(set(paths)), "one object per file, no clashes"
    deployment_json = json.loads(dict(first)[f"{dep.dir}/deployment.json"])
    assert deployment_json["namespace"] == dep.namespace

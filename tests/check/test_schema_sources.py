"""Schema sources, bundled CRDs, transforms, and parity with kubernetes-validate."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from schema_samples import CORE_FACTORIES, CR_FACTORIES, deployment, mutated, network_policy, pdb

from plantops.check.schema import (
    GroupVersionKind,
    PackageSource,
    SchemaValidator,
    UrlTemplateSource,
)
from plantops.check.schema.sources import catalog_path, normalize_url_template
from plantops.check.schema.transform import (
    forbid_unknown_fields,
    int_or_string,
    strip_annotations,
)
from plantops.errors import TransientError, UserError

BUNDLED = Path(__file__).resolve().parents[2] / "src/plantops/check/schema/crds"


# --- bundled CRD schemas -------------------------------------------------------------


def test_bundled_crds_are_verbatim_copies_of_the_shared_catalog(shared_crds: Path) -> None:
    bundled = sorted(p.relative_to(BUNDLED) for p in BUNDLED.rglob("*.json"))
    assert bundled, "no bundled CRD schemas"
    for rel in bundled:
        assert (BUNDLED / rel).read_bytes() == (shared_crds / rel).read_bytes(), rel
    assert (BUNDLED / "LICENSE").read_bytes() == (shared_crds / "LICENSE").read_bytes()


@pytest.mark.parametrize(
    "gvk",
    [
        GroupVersionKind("postgresql.cnpg.io", "v1", "Cluster"),
        GroupVersionKind("postgresql.cnpg.io", "v1", "ScheduledBackup"),
        GroupVersionKind("postgresql.cnpg.io", "v1", "Pooler"),
        GroupVersionKind("barmancloud.cnpg.io", "v1", "ObjectStore"),
        GroupVersionKind("traefik.io", "v1alpha1", "IngressRoute"),
        GroupVersionKind("traefik.io", "v1alpha1", "Middleware"),
        GroupVersionKind("traefik.io", "v1alpha1", "TLSOption"),
        GroupVersionKind("cert-manager.io", "v1", "Certificate"),
        GroupVersionKind("external-secrets.io", "v1", "ExternalSecret"),
        GroupVersionKind("monitoring.coreos.com", "v1", "ServiceMonitor"),
        GroupVersionKind("monitoring.coreos.com", "v1", "PodMonitor"),
        GroupVersionKind("monitoring.coreos.com", "v1", "PrometheusRule"),
        GroupVersionKind("argoproj.io", "v1alpha1", "Application"),
        GroupVersionKind("argoproj.io", "v1alpha1", "AppProject"),
    ],
    ids=str,
)
def test_rendered_custom_resources_have_bundled_schemas(
    validator: SchemaValidator, gvk: GroupVersionKind
) -> None:
    assert PackageSource().load(gvk) is not None
    assert validator.has_schema(gvk.api_version, gvk.kind)


def test_every_shared_catalog_schema_compiles(shared_crds: Path) -> None:
    validator = SchemaValidator("1.30", crd_dirs=[shared_crds], bundled_crds=False)
    for path in sorted(shared_crds.rglob("*.json")):
        group = path.parent.name
        kind, version = path.stem.rsplit("_", 1)
        assert validator.has_schema(f"{group}/{version}", kind), path


def test_samples_validate_against_the_shared_catalog(shared_crds: Path) -> None:
    validator = SchemaValidator("1.30", crd_dirs=[shared_crds], bundled_crds=False)
    for factory in CR_FACTORIES:
        assert validator.validate(factory()) == [], factory.__name__


def test_go_regex_patterns_from_crds_work(validator: SchemaValidator) -> None:
    # PrometheusRule's partial_response_strategy pattern is "^(?i)(abort|warn)?$" (RE2).
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "odoo"},
        "spec": {
            "groups": [
                {
                    "name": "odoo",
                    "partial_response_strategy": "WARN",
                    "rules": [{"alert": "OdooDown", "expr": "up == 0", "for": "5m"}],
                }
            ]
        },
    }
    assert validator.validate(rule) == []
    bad = mutated(rule, "spec.groups[0].partial_response_strategy", "ignore")
    assert [f.path for f in validator.validate(bad)] == ["spec.groups[0].partial_response_strategy"]


# --- URL template source -------------------------------------------------------------


class FakeFetcher:
    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes | None:
        self.calls.append(url)
        return self.bodies.get(url)


WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
    },
}


def test_url_template_downloads_once_and_caches(tmp_path: Path) -> None:
    url = "https://schemas.example.org/example.com/widget_v1.json"
    fetcher = FakeFetcher({url: json.dumps(WIDGET_SCHEMA).encode()})
    template = (
        "https://schemas.example.org/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    )
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": "big"}}

    first = SchemaValidator("1.30", url_template=template, cache_dir=tmp_path, fetcher=fetcher)
    assert [f.path for f in first.validate(obj)] == ["spec.size"]
    assert fetcher.calls == [url]

    offline = FakeFetcher({})
    second = SchemaValidator("1.30", url_template=template, cache_dir=tmp_path, fetcher=offline)
    assert [f.path for f in second.validate(obj)] == ["spec.size"]
    assert offline.calls == []  # served from the cache


def test_url_template_404_is_a_missing_schema(tmp_path: Path) -> None:
    validator = SchemaValidator(
        "1.30",
        url_template="https://x.example/{group}/{kind}_{version}.json",
        cache_dir=tmp_path,
        fetcher=FakeFetcher({}),
    )
    (finding,) = validator.validate({"apiVersion": "example.com/v1", "kind": "Widget"})
    assert "no schema for Widget" in finding.message
    assert "https://x.example/{group}/{kind}_{version}.json" in finding.message


def test_core_kinds_never_touch_the_network(tmp_path: Path) -> None:
    fetcher = FakeFetcher({})
    validator = SchemaValidator(
        "1.30",
        url_template="https://x.example/{group}/{kind}_{version}.json",
        cache_dir=tmp_path,
        fetcher=fetcher,
    )
    assert validator.validate(deployment()) == []
    assert fetcher.calls == []


def test_cache_dir_defaults_to_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLANTOPS_SCHEMA_CACHE", str(tmp_path / "c"))
    assert UrlTemplateSource("https://x/{group}/{kind}_{version}.json").cache_dir == tmp_path / "c"


def test_unreachable_url_is_a_transient_error(tmp_path: Path) -> None:
    source = UrlTemplateSource("http://127.0.0.1:9/{group}/{kind}_{version}.json", tmp_path)
    with pytest.raises(TransientError, match="offline"):
        source.load(GroupVersionKind("example.com", "v1", "Widget"))


@pytest.mark.parametrize(
    "template", ["https://x/{group}/{kind}.json", "https://x/{group}/{kind}_{version}{ext}"]
)
def test_bad_url_templates_are_user_errors(template: str) -> None:
    with pytest.raises(UserError):
        normalize_url_template(template)


def test_catalog_path_lowercases_kind() -> None:
    assert catalog_path(GroupVersionKind("traefik.io", "v1alpha1", "IngressRoute")) == (
        "traefik.io/ingressroute_v1alpha1.json"
    )


# --- transforms ----------------------------------------------------------------------


def test_strip_annotations_keeps_properties_named_like_annotations() -> None:
    schema = {
        "description": "drop me",
        "x-kubernetes-list-type": "atomic",
        "properties": {"description": {"type": "string", "description": "drop"}},
    }
    assert strip_annotations(schema) == {"properties": {"description": {"type": "string"}}}


def test_forbid_unknown_fields_respects_preserve_unknown_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "open": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"a": {}},
            },
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "closed": {"type": "object", "properties": {"b": {}}},
        },
    }
    strict = forbid_unknown_fields(schema)
    assert strict["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["open"]
    assert strict["properties"]["map"]["additionalProperties"] == {"type": "string"}
    assert strict["properties"]["closed"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # input untouched


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        # Go (RE2) scopes a mid-pattern flag to the rest of its group; Python's re refused
        # these, the Rust engine reads them as Go does.
        ("^(?i)(abort|warn)?$", "ABORT", "ignore"),
        ("^((?i)sun|mon)day$", "SUNday", "Tuesday"),
        ("^[a-z]+$", "abc", "ABC"),
    ],
)
def test_go_patterns_in_crd_schemas_mean_what_they_mean_in_go(
    tmp_path: Path, pattern: str, yes: str, no: str
) -> None:
    group = tmp_path / "example.com"
    group.mkdir()
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"mode": {"type": "string", "pattern": pattern}},
            },
        },
    }
    (group / "widget_v1.json").write_text(json.dumps(schema))
    validator = SchemaValidator("1.30", crd_dirs=[tmp_path], bundled_crds=False)

    def widget(mode: str) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"mode": mode},
        }

    assert validator.validate(widget(yes)) == []
    (finding,) = validator.validate(widget(no))
    assert finding.path == "spec.mode"
    assert finding.message == f'"{no}" does not match the pattern "{pattern}"'


def test_int_or_string_extension_alone_admits_only_integers_and_strings() -> None:
    schema = {
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "both": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "pattern": "^[0-9]+%?$",
            },
        },
    }
    strict = int_or_string(schema)
    assert strict["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert strict["properties"]["both"] == schema["properties"]["both"]  # already explicit
    assert "anyOf" not in schema["properties"]["port"]  # input untouched


def test_int_or_string_extension_is_enforced_on_custom_resources(tmp_path: Path) -> None:
    group = tmp_path / "example.com"
    group.mkdir()
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"port": {"x-kubernetes-int-or-string": True}},
            },
        },
    }
    (group / "widget_v1.json").write_text(json.dumps(schema))
    validator = SchemaValidator("1.30", crd_dirs=[tmp_path], bundled_crds=False)
    base = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validator.validate({**base, "spec": {"port": 8080}}) == []
    assert validator.validate({**base, "spec": {"port": "http"}}) == []
    (finding,) = validator.validate({**base, "spec": {"port": True}})
    assert (finding.path, finding.message) == (
        "spec.port",
        "expected integer or string, got boolean true",
    )


# --- parity with kubernetes-validate ------------------------------------------------


def _reference_verdict(obj: dict[str, Any]) -> bool:
    try:
        kubernetes_validate.validate(copy.deepcopy(obj), "1.30", strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


def _core_sample() -> list[dict[str, Any]]:
    sample: list[dict[str, Any]] = [f() for f in CORE_FACTORIES]
    sample += [
        mutated(deployment(), "spec.replicass", 1),
        mutated(deployment(), "spec.replicas", "1"),
        mutated(deployment(), "spec.replicas", None),
        mutated(deployment(), "spec.replicas", True),
        mutated(deployment(), "spec.template.spec.containers[0].resources.limits.cpu", None),
        mutated(deployment(), "spec.template.spec.containers[0].resources.limits.cpu", [1]),
        mutated(deployment(), "spec.strategy.rollingUpdate.maxSurge", "25%"),
        mutated(deployment(), "spec.strategy.rollingUpdate.maxSurge", 1.5),
        mutated(deployment(), "metadata.labels", {"a": 1}),
        mutated(deployment(), "metadata.creationTimestamp", None),
        mutated(deployment(), "status", {"replicas": 1}),
        mutated(network_policy(), "spec.policyTypes", "Ingress"),
        mutated(network_policy(), "spec.ingress[0].ports[0].port", "http"),
        mutated(network_policy(), "spec.egress[1].to[0].ipBlock.cidrs", "x"),
        mutated(pdb(), "spec.minAvailable", "50%"),
        mutated(pdb(), "spec.maxUnavailable", {"n": 1}),
        mutated(pdb(), "apiVersion", "policy/v1"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x"},
            "binaryData": {"a": 1},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": None}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "x"},
            "automountServiceAccountToken": "no",
        },
    ]
    return sample


def test_same_verdicts_as_kubernetes_validate(validator: SchemaValidator) -> None:
    sample = _core_sample()
    ours = [validator.is_valid(obj) for obj in sample]
    theirs = [_reference_verdict(obj) for obj in sample]
    assert ours == theirs
    assert any(ours) and not all(ours)  # the sample holds both verdicts
    # and the explaining pass agrees with the fast one
    assert [not validator.validate(obj) for obj in sample] == ours

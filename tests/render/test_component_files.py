"""Deployment directories: one multi-document YAML file per component, in apply order."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from plantops import services
from plantops.cli.main import app
from plantops.render import render_components, render_deployment_full, render_kubernetes_objects
from plantops.spec.models import ObjectStorage
from tests.conftest import EXAMPLE, TODAY
from tests.render.conftest import Rendered

APPLY_ORDER = [
    "namespace",
    "secrets",
    "config",
    "network-policies",
    "filestore",
    "postgresql",
    "redis",
    "db-init",
    "odoo",
    "monitoring",
    "ingress",
]
# Which component each kind of object is written to (Redis's ConfigMap and Services go
# with Redis, the odoo.conf ConfigMap and Odoo's Service are told apart by name below;
# the secret store's ServiceAccount goes with its SecretStore).
KIND_COMPONENT = {
    "Namespace": "namespace",
    "ResourceQuota": "namespace",
    "LimitRange": "namespace",
    "ServiceAccount": "namespace",
    "ExternalSecret": "secrets",
    "SecretStore": "secrets",
    "NetworkPolicy": "network-policies",
    "PersistentVolumeClaim": "filestore",
    "Cluster": "postgresql",
    "ObjectStore": "postgresql",
    "ScheduledBackup": "postgresql",
    "Pooler": "postgresql",
    "Database": "postgresql",
    "StatefulSet": "redis",
    "Job": "db-init",
    "Deployment": "odoo",
    "PodDisruptionBudget": "odoo",
    "HorizontalPodAutoscaler": "odoo",
    "ServiceMonitor": "monitoring",
    "PodMonitor": "monitoring",
    "PrometheusRule": "monitoring",
    "Probe": "monitoring",
    "Middleware": "ingress",
    "TLSOption": "ingress",
    "Certificate": "ingress",
    "Issuer": "redis",
    "IngressRoute": "ingress",
}


def _dir_files(example: Rendered, directory: str) -> list[str]:
    prefix = f"{directory}/"
    return sorted(
        p[len(prefix) :]
        for p in example.files
        if p.startswith(prefix) and "/" not in p[len(prefix) :]
    )


def test_a_deployment_dir_holds_exactly_the_component_files(example: Rendered) -> None:
    deps = [d for d in example.deployments if d.cluster is not None]
    assert deps
    for dep in deps:
        expected = sorted(
            [f"{c}.yaml" for c in APPLY_ORDER] + ["deployment.json", "kustomization.yaml"]
        )
        assert _dir_files(example, dep.dir) == expected, dep.dir
        kustomization = yaml.safe_load(example.files[f"{dep.dir}/kustomization.yaml"])
        assert kustomization["resources"] == [f"{c}.yaml" for c in APPLY_ORDER], dep.dir


def test_files_in_kustomization_order_give_the_objects_in_apply_order(example: Rendered) -> None:
    for dep in example.deployments:
        if dep.cluster is None:
            continue
        kustomization = yaml.safe_load(example.files[f"{dep.dir}/kustomization.yaml"])
        stream = "---\n".join(example.files[f"{dep.dir}/{f}"] for f in kustomization["resources"])
        assert list(yaml.safe_load_all(stream)) == render_kubernetes_objects(dep, example.ctx)


def test_component_files_are_plain_multi_document_streams(example: Rendered) -> None:
    for dep in example.deployments:
        if dep.cluster is None:
            continue
        for component, objects in render_components(dep, example.ctx).items():
            text = example.files[f"{dep.dir}/{component}.yaml"]
            assert not text.startswith("---") and text.endswith("\n"), component
            assert text.count("\n---\n") == len(objects) - 1, component
            assert list(yaml.safe_load_all(text)) == objects, component


def test_objects_are_grouped_by_the_component_that_renders_them(example: Rendered) -> None:
    for _dep, path, obj in example.objects:
        if path.startswith("argocd/"):
            assert obj["kind"] == "Application"
            continue
        component = Path(path).stem
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "ConfigMap":
            assert component == ("config" if name.endswith("odoo-conf") else "redis"), name
        elif kind == "Service":
            assert component == ("redis" if "redis" in name else "odoo"), name
        elif kind == "Certificate" and "redis" in name:
            assert component == "redis", name
        elif kind == "ServiceAccount" and name.endswith("-secret-store"):
            assert component == "secrets", name
        else:
            assert component == KIND_COMPONENT[kind], (kind, name)


def test_document_indexes_point_at_the_object_in_its_file(example: Rendered) -> None:
    for dep in example.deployments[:6]:
        rendered = render_deployment_full(dep, example.ctx)
        files = {f.path: f.content for f in rendered.files}
        documents = rendered.documents()
        assert [(p, o) for p, _, o in documents] == rendered.objects
        for path, index, obj in documents:
            assert list(yaml.safe_load_all(files[path]))[index] == obj, (path, index)


def test_a_component_without_objects_gets_no_file(example: Rendered) -> None:
    storage = example.ctx.platform.storage.model_copy(
        update={"filestore": "s3", "filestore_bucket": ObjectStorage(destination="s3://acme-files")}
    )
    ctx = dataclasses.replace(
        example.ctx, platform=example.ctx.platform.model_copy(update={"storage": storage})
    )
    dep = next(d for d in example.deployments if d.cluster is not None)
    assert "filestore" not in render_components(dep, ctx)
    rendered = render_deployment_full(dep, ctx)
    names = {f.path.rsplit("/", 1)[1] for f in rendered.files if f.path.startswith(f"{dep.dir}/")}
    assert "filestore.yaml" not in names and "network-policies.yaml" in names
    (kustomization,) = [f for f in rendered.files if f.path.endswith("/kustomization.yaml")]
    assert yaml.safe_load(kustomization.content)["resources"] == [
        f"{c}.yaml" for c in APPLY_ORDER if c != "filestore"
    ]


def test_the_rendered_example_tree_passes_validate_manifests(
    example: Rendered, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    services.plan_fleet(EXAMPLE, out, today=TODAY)
    r = CliRunner().invoke(
        app,
        [
            "validate-manifests",
            str(out / "clusters"),
            "--kubernetes-version",
            "1.30",
            "--format",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    kubernetes = [d for d in example.deployments if d.cluster is not None]
    assert report["files"] == len(kubernetes) * (len(APPLY_ORDER) + 2)
    assert report["objects"] == sum(1 for _, p, _ in example.objects if p.startswith("clusters/"))
    assert report["findings"] == []

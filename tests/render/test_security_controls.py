"""The remaining issue-#11 controls, each proved on the rendered example fleet.

Commit signatures on every AppProject, namespaced SecretStores, and platform images by
digest from the fleet's registry allowlist.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from plantops.check.policy import BASELINE, Document, PolicyConfig, PolicyContext, evaluate_policies
from plantops.check.policy.workloads import containers
from plantops.check.schema import SchemaValidator
from plantops.render.kubernetes.externalsecrets import render_external_secrets
from plantops.spec.models import PlatformImages, SecretsSettings, image_allowed
from tests.conftest import TODAY
from tests.render.conftest import Rendered


def test_every_app_project_requires_the_fleets_commit_signatures(example: Rendered) -> None:
    keys = sorted(k.upper() for k in example.ctx.platform.gitops_signature_keys)
    assert keys, "the example fleet sets platform.gitops_signature_keys"
    projects = [o for _, o in example.fleet_objects if o["kind"] == "AppProject"]
    assert projects
    for proj in projects:
        assert proj["spec"]["signatureKeys"] == [{"keyID": k} for k in keys], proj["metadata"]


def test_each_namespace_reads_its_secrets_through_its_own_secret_store(example: Rendered) -> None:
    assert example.ctx.platform.secrets is not None, "the example fleet sets platform.secrets"
    stores: dict[str, dict[str, Any]] = {}
    accounts: dict[tuple[str, str], dict[str, Any]] = {}
    externals = []
    for _, _, obj in example.objects:
        meta = obj["metadata"]
        if obj["kind"] == "SecretStore":
            assert meta["namespace"] not in stores, "one store per namespace"
            stores[meta["namespace"]] = obj
        elif obj["kind"] == "ServiceAccount":
            accounts[(meta["namespace"], meta["name"])] = obj
        elif obj["kind"] == "ExternalSecret":
            externals.append(obj)
    assert externals and stores
    for es in externals:
        ns = es["metadata"]["namespace"]
        ref = es["spec"]["secretStoreRef"]
        assert ref == {"kind": "SecretStore", "name": stores[ns]["metadata"]["name"]}, ns
    for ns, store in stores.items():
        auth = store["spec"]["provider"]["vault"]["auth"]["kubernetes"]
        # the Vault role is the namespace's own, and so is the identity it logs in with
        assert auth["role"].endswith(f"-{ns}")
        sa = accounts[(ns, auth["serviceAccountRef"]["name"])]
        assert sa["automountServiceAccountToken"] is False
        assert "namespace" not in auth["serviceAccountRef"]
    # roles never repeat across namespaces: no two namespaces share a provider identity
    roles = [s["spec"]["provider"]["vault"]["auth"]["kubernetes"]["role"] for s in stores.values()]
    assert len(set(roles)) == len(roles)


@pytest.mark.parametrize("provider", ["aws", "gcp", None])
def test_secret_store_providers_and_the_shared_store_fallback(
    example: Rendered, provider: str | None
) -> None:
    given: dict[str, Any] = {
        "aws": {
            "provider": "aws",
            "aws": {
                "region": "eu-central-1",
                "role_arn": "arn:aws:iam::123456789012:role/pl-{cluster}-{namespace}",
            },
        },
        "gcp": {
            "provider": "gcp",
            "gcp": {
                "project_id": "acme-plants",
                "service_account": "{namespace}@acme-plants.iam.gserviceaccount.com",
            },
        },
    }
    secrets = SecretsSettings.model_validate(given[provider]) if provider else None
    ctx = replace(
        example.ctx, platform=example.ctx.platform.model_copy(update={"secrets": secrets})
    )
    dep = next(d for d in example.deployments if d.cluster is not None)
    objs = render_external_secrets(dep, ctx)
    # every variant is a valid object (external-secrets v1 CRD schemas, unknown fields refused)
    assert dep.cluster is not None
    validator = SchemaValidator(dep.cluster.kubernetes_version)
    findings = [f for o in objs for f in validator.validate(o, file="secrets.yaml")]
    assert not findings, "\n".join(f.render() for f in findings)
    kinds = [o["kind"] for o in objs]
    if provider is None:
        assert "SecretStore" not in kinds and "ServiceAccount" not in kinds
        for o in objs:
            assert o["spec"]["secretStoreRef"] == {
                "kind": ctx.secret_store.kind,
                "name": ctx.secret_store.name,
            }
        return
    sa, store = objs[0], objs[1]
    assert (sa["kind"], store["kind"]) == ("ServiceAccount", "SecretStore")
    annotations = sa["metadata"]["annotations"]
    if provider == "aws":
        assert annotations["eks.amazonaws.com/role-arn"].endswith(f"-{dep.namespace}")
        assert store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"] == {
            "name": sa["metadata"]["name"]
        }
    else:
        assert annotations["iam.gke.io/gcp-service-account"].startswith(f"{dep.namespace}@")
        wi = store["spec"]["provider"]["gcpsm"]["auth"]["workloadIdentity"]
        assert wi["serviceAccountRef"] == {"name": sa["metadata"]["name"]}
    assert (
        all(o["spec"]["secretStoreRef"]["kind"] == "SecretStore" for o in objs[2:])
        and len(objs) > 2
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"provider": "vault"}, "needs its own block"),
        (
            {"provider": "vault", "vault": {"server": "https://v", "role": "r-{plant}"}},
            "unknown placeholder {plant}",
        ),
        ({"provider": "aws", "aws": {"region": "eu-central-1", "role_arn": "x"}}, "pattern"),
    ],
)
def test_bad_secret_provider_settings_are_refused(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        SecretsSettings.model_validate(given)


IMAGE_RULES = [r for r in BASELINE if r.id in ("PO-IMG-001", "PO-IMG-002")]
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet", "Pod")


def _image_findings(objects: list[dict[str, Any]], registries: tuple[str, ...]) -> list[str]:
    docs = [Document(f"obj-{i}.yaml", 0, o, 1) for i, o in enumerate(objects)]
    result = evaluate_policies(
        docs, PolicyContext(registries=registries), PolicyConfig(), today=TODAY, rules=IMAGE_RULES
    )
    return sorted(f"{f.rule}: {f.message}" for f in result.findings)


def test_every_platform_image_is_pinned_and_from_the_fleets_allowlist(example: Rendered) -> None:
    registries = tuple(example.ctx.platform.images.registries)
    assert registries, "the example fleet sets platform.images.registries"
    workloads = [o for _, _, o in example.objects if o["kind"] in WORKLOADS]
    images = {c["image"] for o in workloads for _, c in containers(o)}
    assert any("redis_exporter" in i for i in images) and any("/redis:" in i for i in images)
    assert _image_findings(workloads, registries) == []
    # Compose (VM plants): every pulled image is pinned; the only other one is the stack's
    # own PostgreSQL + pgBackRest build, tagged by its Dockerfile's digest, whose FROM line
    # is the pinned platform postgres image.
    for _, _, stack in example.compose:
        for svc in stack["services"].values():
            if "build" in svc:
                assert svc["image"].startswith("plantops.local/")
                continue
            assert "@sha256:" in svc["image"] and image_allowed(svc["image"], registries)

    # the baseline flags a tag-only image and one from another registry
    sts = next(
        o for o in workloads if o["kind"] == "StatefulSet" and "redis" in o["metadata"]["name"]
    )
    bad = copy.deepcopy(sts)
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/evil/redis:7.4"
    found = _image_findings([bad], registries)
    assert any(f.startswith("PO-IMG-001") for f in found)
    assert any(f.startswith("PO-IMG-002") for f in found)


def test_a_platform_image_outside_the_allowlist_is_refused() -> None:
    with pytest.raises(ValidationError, match="redis: 'quay.io/x/redis:7@sha256:"):
        PlatformImages.model_validate(
            {"registries": ["docker.io"], "redis": "quay.io/x/redis:7@sha256:" + "a" * 64}
        )
    assert PlatformImages.model_validate({"registries": ["docker.io"]}).redis.startswith(
        "docker.io/"
    )

"""ExternalSecret objects: every credential comes from the fleet's secret store.

Manifests carry only references (store, remote key, property); the External Secrets
Operator creates the Secrets in the cluster. Never a Secret with data in the tree.

Isolation: everything a deployment's namespace reads lives under one path of its own,
``<fleet>/<cluster>/<namespace>/`` (a plant and environment), the object-store
credentials included: each deployment gets its own key pair, which the platform team
issues limited to that deployment's backup prefix (``<destination>/<cluster>/<namespace>``)
— no namespace can read another plant's secrets or touch its backups with what it is
given. A path per namespace is what a namespaced ``SecretStore`` (its own provider
role, e.g. a Vault policy on that path) or a ``ClusterSecretStore`` bound with
``spec.conditions`` can enforce; docs/security.md says how.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import WAVE_FOUNDATION, name, role_name, runtime_role, wave

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext

REFRESH = "1h"


def remote_key(dep: Deployment, ctx: RenderContext, what: str) -> str:
    cluster = dep.cluster.name if dep.cluster else "vm"
    return f"{ctx.slug}/{cluster}/{dep.namespace}/{what}"


def db_secret(dep: Deployment, role: str) -> str:
    return name(dep, f"db-{role.replace('_', '-')}")


def admin_secret(dep: Deployment) -> str:
    return name(dep, "odoo-admin")


def redis_secret(dep: Deployment) -> str:
    return name(dep, "redis")


def backup_secret(dep: Deployment) -> str:
    return name(dep, "backup-s3")


def filestore_secret(dep: Deployment) -> str:
    return name(dep, "filestore-s3")


def secret_store_name(dep: Deployment) -> str:
    return name(dep, "secret-store")


def _template(value: str, dep: Deployment, ctx: RenderContext) -> str:
    cluster = dep.cluster.name if dep.cluster else "vm"
    return value.format(fleet=ctx.slug, cluster=cluster, namespace=dep.namespace)


def render_secret_store(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    """The namespace's own SecretStore and the ServiceAccount it authenticates as."""
    spec = ctx.platform.secrets
    if spec is None:
        return []
    sa = secret_store_name(dep)
    sa_annotations = dict(wave(WAVE_FOUNDATION))
    sa_ref = {"serviceAccountRef": {"name": sa}}
    provider: dict[str, Any]
    if spec.vault is not None:
        # external-secrets providers/v1/vault: Kubernetes auth with a TokenRequest token
        # of serviceAccountRef; the Vault role binds that ServiceAccount and namespace.
        v = spec.vault
        provider = {
            "vault": {
                "auth": {
                    "kubernetes": {
                        "mountPath": _template(v.auth_mount, dep, ctx),
                        "role": _template(v.role, dep, ctx),
                        **sa_ref,
                    }
                },
                "path": v.path,
                "server": v.server,
                "version": v.version,
            }
        }
    elif spec.aws is not None:
        # providers/v1/aws: JWT auth assumes the role annotated on the ServiceAccount (IRSA)
        sa_annotations["eks.amazonaws.com/role-arn"] = _template(spec.aws.role_arn, dep, ctx)
        provider = {
            "aws": {"auth": {"jwt": sa_ref}, "region": spec.aws.region, "service": spec.aws.service}
        }
    else:
        assert spec.gcp is not None
        g = spec.gcp
        sa_annotations["iam.gke.io/gcp-service-account"] = _template(g.service_account, dep, ctx)
        provider = {
            "gcpsm": {
                # providers/v1/gcp/secretmanager: cluster name, location and project are
                # read from the GKE metadata server when not given (CRD field docs).
                "auth": {"workloadIdentity": sa_ref},
                "projectID": g.project_id,
            }
        }
    return [
        k8s_object(
            dep,
            "v1",
            "ServiceAccount",
            sa,
            "secrets",
            annotations=sa_annotations,
            body={"automountServiceAccountToken": False},
        ),
        k8s_object(
            dep,
            "external-secrets.io/v1",
            "SecretStore",
            sa,
            "secrets",
            annotations=wave(WAVE_FOUNDATION),
            body={"spec": {"provider": provider}},
        ),
    ]


def db_roles(dep: Deployment) -> list[str]:
    """Every PostgreSQL role of the deployment: one owner per tenant, plus the shared runtime."""
    roles = [role_name(t.database) for t in dep.tenants]
    runtime = runtime_role(dep)
    if runtime not in roles:
        roles.append(runtime)
    return roles


def _external_secret(
    dep: Deployment,
    ctx: RenderContext,
    target: str,
    data: list[tuple[str, str, str]],
    *,
    template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    store_ref = (
        {"kind": "SecretStore", "name": secret_store_name(dep)}
        if ctx.platform.secrets
        else {"kind": ctx.secret_store.kind, "name": ctx.secret_store.name}
    )
    target_spec: dict[str, Any] = {
        "creationPolicy": "Owner",
        "deletionPolicy": "Retain",
        "name": target,
    }
    if template:
        target_spec["template"] = template
    return k8s_object(
        dep,
        "external-secrets.io/v1",
        "ExternalSecret",
        target,
        "secrets",
        annotations=wave(WAVE_FOUNDATION),
        body={
            "spec": {
                "data": [
                    {"remoteRef": {"key": key, "property": prop}, "secretKey": secret_key}
                    for secret_key, key, prop in data
                ],
                "refreshInterval": REFRESH,
                "secretStoreRef": store_ref,
                "target": target_spec,
            }
        },
    )


def render_external_secrets(dep: Deployment, ctx: RenderContext) -> list[dict[str, Any]]:
    out = render_secret_store(dep, ctx)
    for role in db_roles(dep):
        # CloudNativePG wants basic-auth Secrets for managed roles; the user name is not secret.
        out.append(
            _external_secret(
                dep,
                ctx,
                db_secret(dep, role),
                [("password", remote_key(dep, ctx, f"postgres/{role}"), "password")],
                template={
                    "data": {"password": "{{ .password }}", "username": role},
                    "type": "kubernetes.io/basic-auth",
                },
            )
        )
    out.append(
        _external_secret(
            dep,
            ctx,
            admin_secret(dep),
            [("admin_passwd", remote_key(dep, ctx, "odoo-admin"), "admin_passwd")],
        )
    )
    out.append(
        _external_secret(
            dep, ctx, redis_secret(dep), [("password", remote_key(dep, ctx, "redis"), "password")]
        )
    )
    store = ctx.backup_store
    # ``credentials_key`` set means static keys (null: workload identity); they are the
    # deployment's own, never one fleet-wide pair.
    if store.credentials_key:
        key = remote_key(dep, ctx, "object-storage/backup")
        out.append(
            _external_secret(
                dep,
                ctx,
                backup_secret(dep),
                [
                    ("ACCESS_KEY_ID", key, "ACCESS_KEY_ID"),
                    ("ACCESS_SECRET_KEY", key, "ACCESS_SECRET_KEY"),
                ],
            )
        )
    bucket = ctx.platform.storage.filestore_bucket
    if ctx.platform.storage.filestore == "s3" and bucket and bucket.credentials_key:
        key = remote_key(dep, ctx, "object-storage/filestore")
        out.append(
            _external_secret(
                dep,
                ctx,
                filestore_secret(dep),
                [
                    ("AWS_ACCESS_KEY_ID", key, "ACCESS_KEY_ID"),
                    ("AWS_SECRET_ACCESS_KEY", key, "ACCESS_SECRET_KEY"),
                ],
            )
        )
    return out

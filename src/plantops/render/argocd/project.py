"""AppProjects: one per deployment unit (a plant, or a tenant group sharing one Odoo).

A project lists exactly the destinations of its deployments, allows as its only
cluster-scoped objects the Namespaces of those destinations *by name* (so one tenant's
project cannot relabel another tenant's namespace, Pod Security labels included), and
whitelists exactly the namespaced kinds plantops renders into a deployment's folder:
no Secret (they come from External Secrets), no Role or RoleBinding, nothing else. It
carries the sync windows of its production applications. Its
size is bounded by its unit (a few environments, the windows of its plants), never by
the fleet: every object must fit the 262,144 bytes of kubectl's last-applied annotation.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plantops.caches import warm_table
from plantops.render.argocd.application import application_name, project_name
from plantops.render.argocd.windows import sync_windows
from plantops.render.core import MANAGED_BY

if TYPE_CHECKING:
    from plantops.plan import Deployment
    from plantops.render.context import RenderContext


# Every namespaced kind plantops renders into a deployment's folder (the Argo CD
# Application's source), sync hooks included: gitops-engine's syncContext.getSyncTasks
# (pkg/sync/sync_context.go) runs the permission validator over every task, hooks among
# them; Argo CD's validator (controller/sync.go) calls AppProject.IsGroupKindNamePermitted,
# i.e. isResourceInList over namespaceResourceWhitelist, and fails the sync on a kind not
# listed. So the PreSync Backup and Job of a migrating release must be here. tests/render/test_tenant_isolation.py walks every rendered tree
# and proves the list is exact: each kind is rendered, and nothing rendered is missing.
TENANT_KINDS: tuple[tuple[str, str], ...] = (
    ("", "ConfigMap"),
    ("", "LimitRange"),
    ("", "PersistentVolumeClaim"),
    ("", "ResourceQuota"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("barmancloud.cnpg.io", "ObjectStore"),
    # The odoo --update Job of a migrating release (a PreSync hook, render/kubernetes/upgrade).
    ("batch", "Job"),
    ("cert-manager.io", "Certificate"),
    # The namespace's own CA for Redis TLS (render/kubernetes/redis.py).
    ("cert-manager.io", "Issuer"),
    ("external-secrets.io", "ExternalSecret"),
    ("external-secrets.io", "SecretStore"),
    ("monitoring.coreos.com", "PodMonitor"),
    ("monitoring.coreos.com", "Probe"),
    ("monitoring.coreos.com", "PrometheusRule"),
    ("monitoring.coreos.com", "ServiceMonitor"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
    # The pre-upgrade on-demand Backup a migrating release's PreSync hook takes.
    ("postgresql.cnpg.io", "Backup"),
    ("postgresql.cnpg.io", "Cluster"),
    ("postgresql.cnpg.io", "Database"),
    ("postgresql.cnpg.io", "Pooler"),
    ("postgresql.cnpg.io", "ScheduledBackup"),
    ("traefik.io", "IngressRoute"),
    ("traefik.io", "Middleware"),
    ("traefik.io", "TLSOption"),
)


def _labels(deps: Sequence[Deployment]) -> dict[str, str]:
    first = deps[0]
    labels = {
        "app.kubernetes.io/component": "gitops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "odoo",
        "app.kubernetes.io/part-of": "plantops",
        "plantops.io/tier": first.tier,
    }
    labels["plantops.io/pattern"] = first.pattern
    if first.pattern == "shared-multitenant":
        labels["plantops.io/tenant-group"] = first.unit.removeprefix("shared-")
    else:
        labels["plantops.io/plant"] = first.unit
    return labels


SECRET_STORE_KIND = ("external-secrets.io", "SecretStore")


def tenant_kinds(ctx: RenderContext) -> tuple[tuple[str, str], ...]:
    """TENANT_KINDS, without SecretStore unless the fleet renders one per namespace
    (``platform.secrets``): a tenant then cannot add a store of its own through Git."""
    if ctx.platform.secrets is not None:
        return TENANT_KINDS
    return tuple(k for k in TENANT_KINDS if k != SECRET_STORE_KIND)


def render_projects(deps: Sequence[Deployment], ctx: RenderContext) -> list[dict[str, Any]]:
    groups: dict[str, list[Deployment]] = {}
    for dep in deps:
        if dep.cluster is not None:
            groups.setdefault(project_name(dep), []).append(dep)
    out = []
    # the process memo (plantops.services.warm): a project is a pure function of its
    # (frozen) member deployments and the context; kept while they are the very same
    # objects (an unchanged unit's deployments are, see plan.build_plan), handed out as
    # a fresh copy
    table = warm_table("argocd-projects")
    for proj, members in sorted(groups.items()):
        members.sort(key=lambda d: d.id)
        found = table.get(proj) if table is not None else None
        if (
            found is not None
            and len(found[0]) == len(members)
            and all(a is b for a, b in zip(found[0], members, strict=True))
            and found[1] == ctx
        ):
            out.append(pickle.loads(found[2]))
            continue
        project = _project(proj, members, ctx)
        if table is not None:
            table.put(proj, (tuple(members), ctx, pickle.dumps(project, protocol=5)))
        out.append(project)
    return out


def _project(proj: str, members: list[Deployment], ctx: RenderContext) -> dict[str, Any]:
    windows = [w for d in members for w in sync_windows(d, application_name(d))]
    namespaces = sorted({d.namespace for d in members})
    spec: dict[str, Any] = {
        # ClusterResourceRestrictionItem.name (Argo CD 3.x, filepath.Match): without
        # it any project could create, relabel or delete any Namespace.
        "clusterResourceWhitelist": [
            {"group": "", "kind": "Namespace", "name": ns} for ns in namespaces
        ],
        "description": (f"plantops {proj}: {len(members)} deployment(s)"),
        "destinations": [
            {"name": d.cluster.name, "namespace": d.namespace}
            for d in members
            if d.cluster is not None
        ],
        # A whitelist: a kind not listed (Secret, Role, RoleBinding…) cannot be synced.
        "namespaceResourceWhitelist": [{"group": g, "kind": k} for g, k in tenant_kinds(ctx)],
        "orphanedResources": {"warn": True},
        "sourceRepos": [ctx.gitops_repo],
    }
    if windows:
        spec["syncWindows"] = windows
    if ctx.platform.gitops_signature_keys:
        # Argo CD (controller/state.go, CompareAppState → verifyGnuPGSignature) refuses
        # to sync a revision whose HEAD commit is unsigned, or signed by a key not in
        # signatureKeys (compared as long key ids, util/gpg KeyID). Deprecated by
        # sourceIntegrity but still honoured by every 3.x release.
        keys = sorted({k.upper() for k in ctx.platform.gitops_signature_keys})
        spec["signatureKeys"] = [{"keyID": k} for k in keys]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {
            "labels": _labels(members),
            "name": proj,
            "namespace": ctx.platform.argocd_namespace,
        },
        "spec": spec,
    }

"""Namespace (Pod Security labels), ResourceQuota and LimitRange of a deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import WAVE_FOUNDATION, wave

if TYPE_CHECKING:
    from plantops.plan import Deployment

POD_SECURITY = "restricted"


def render_namespace(dep: Deployment) -> dict[str, Any]:
    labels = {
        "pod-security.kubernetes.io/enforce": POD_SECURITY,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": POD_SECURITY,
        "pod-security.kubernetes.io/warn": POD_SECURITY,
    }
    return k8s_object(
        dep,
        "v1",
        "Namespace",
        dep.namespace,
        "namespace",
        namespaced=False,
        labels=labels,
        # Deleting a Namespace deletes everything in it, whatever their own sync options
        # say: the PostgreSQL Cluster with its volumes, the filestore, Redis. So the
        # Namespace is protected like the data it holds (see common.PROTECTED_SYNC_OPTIONS).
        annotations=wave(WAVE_FOUNDATION - 1, protect=True),
    )


def render_resource_quota(dep: Deployment) -> dict[str, Any]:
    q = dep.sizing.quota
    hard = {
        "limits.cpu": f"{q.cpu_limit_m}m",
        "limits.memory": f"{q.memory_limit_mib}Mi",
        "persistentvolumeclaims": str(q.pvcs),
        "pods": str(q.pods),
        "requests.cpu": f"{q.cpu_request_m}m",
        "requests.memory": f"{q.memory_request_mib}Mi",
        "requests.storage": f"{q.storage_gib}Gi",
    }
    return k8s_object(
        dep,
        "v1",
        "ResourceQuota",
        "plantops-quota",
        "quota",
        annotations=wave(WAVE_FOUNDATION),
        body={"spec": {"hard": hard}},
    )


def render_limit_range(dep: Deployment) -> dict[str, Any]:
    # Defaults only catch containers a user adds by hand; rendered ones set their own.
    spec = {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "500m", "memory": "512Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
                "max": {
                    "cpu": f"{max(dep.sizing.web.cpu_limit_m, dep.sizing.postgres.cpu_limit_m)}m",
                    "memory": (
                        f"{max(dep.sizing.web.memory_limit_mib, dep.sizing.postgres.memory_limit_mib)}Mi"
                    ),
                },
            },
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
        ]
    }
    return k8s_object(
        dep,
        "v1",
        "LimitRange",
        "plantops-limits",
        "quota",
        annotations=wave(WAVE_FOUNDATION),
        body={"spec": spec},
    )

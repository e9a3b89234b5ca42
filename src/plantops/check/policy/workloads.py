"""Where pod specs and containers live in workload objects, for rules and their CEL.

The CEL variables are those every exported ValidatingAdmissionPolicy declares, so a
rule's expression reads ``variables.podSpec`` / ``variables.containers`` whatever the kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from plantops.check.policy.model import Obj

WORKLOAD_KINDS = frozenset(
    {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
)
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})

CEL_VARIABLES = (
    (
        "podSpec",
        "object.kind == 'Pod' ? object.spec : (object.kind == 'CronJob' ? "
        "object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)",
    ),
    (
        "containers",
        "variables.podSpec.containers + (has(variables.podSpec.initContainers) ? "
        "variables.podSpec.initContainers : [])",
    ),
)


def pod_spec(obj: Obj) -> tuple[str, Mapping[str, Any]]:
    """``(json path, pod spec)`` of a workload object (empty when it has none)."""
    kind = obj.get("kind")
    spec: Any = obj.get("spec") or {}
    if kind == "Pod":
        return "$.spec", spec if isinstance(spec, Mapping) else {}
    path = "$.spec.template.spec"
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        path = "$.spec.jobTemplate.spec.template.spec"
    found = ((spec.get("template") or {}).get("spec")) if isinstance(spec, Mapping) else None
    return path, found if isinstance(found, Mapping) else {}


def containers(obj: Obj, *, init: bool = True) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(json path, container)`` of every container (and init container)."""
    base, spec = pod_spec(obj)
    keys = ("containers", "initContainers") if init else ("containers",)
    for key in keys:
        for i, c in enumerate(spec.get(key) or ()):
            if isinstance(c, Mapping):
                yield f"{base}.{key}[{i}]", c


def security(c: Mapping[str, Any]) -> Mapping[str, Any]:
    sc = c.get("securityContext")
    return sc if isinstance(sc, Mapping) else {}


def effective(c: Mapping[str, Any], pod: Mapping[str, Any], key: str) -> Any:
    """A container's security setting, else the pod's (PodSecurityContext fallback)."""
    sc = security(c)
    if key in sc:
        return sc[key]
    return security(pod).get(key)


__all__ = [
    "CEL_VARIABLES",
    "LONG_RUNNING_KINDS",
    "WORKLOAD_KINDS",
    "containers",
    "effective",
    "pod_spec",
    "security",
]

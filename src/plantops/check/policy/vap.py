"""The baseline and the fleet's CEL rules as ValidatingAdmissionPolicy objects
(admissionregistration.k8s.io/v1, Kubernetes >= 1.30) with their bindings.

A rule becomes one policy: matchConstraints from the kinds it reads, matchConditions
from where it applies (environment, tier), the shared ``podSpec``/``containers``
variables for workloads, and its CEL as the validation. High and critical rules deny;
the others warn and audit. Bindings select the namespaces and objects plantops manages.
Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from plantops.check.policy.cel import VapProgram
from plantops.check.policy.config import UserRule
from plantops.check.policy.model import PolicyContext, Rule, Severity
from plantops.check.policy.workloads import CEL_VARIABLES, WORKLOAD_KINDS

# kind -> (API group, resource); what matchConstraints.resourceRules names.
RESOURCES: dict[str, tuple[str, str]] = {
    "Pod": ("", "pods"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "IngressRoute": ("traefik.io", "ingressroutes"),
    "Cluster": ("postgresql.cnpg.io", "clusters"),
    "Database": ("postgresql.cnpg.io", "databases"),
    "ObjectStore": ("barmancloud.cnpg.io", "objectstores"),
}
LABELS = {
    "app.kubernetes.io/managed-by": "plantops",
    "app.kubernetes.io/part-of": "plantops",
    "app.kubernetes.io/name": "plantops-policy",
}


def program_of(rule: Rule, ctx: PolicyContext) -> VapProgram | None:
    """The CEL a rule runs at admission (None: not expressible per object)."""
    if rule.cel is None:
        return None
    needs_pod = bool(rule.kinds) and rule.kinds <= WORKLOAD_KINDS
    variables = list(CEL_VARIABLES) if needs_pod else []
    match = [rule.cel_match(ctx)] if rule.cel_match else []
    return VapProgram(variables, match, [(rule.cel(ctx), "")])


def resource_rules(kinds: Sequence[str]) -> list[dict[str, Any]]:
    if not kinds:
        return [
            {
                "apiGroups": ["*"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["*"],
            }
        ]
    groups: dict[str, list[str]] = {}
    for kind in sorted(kinds):
        group, resource = RESOURCES[kind]
        groups.setdefault(group, []).append(resource)
    return [
        {
            "apiGroups": [g],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": sorted(r),
        }
        for g, r in sorted(groups.items())
    ]


def spec_parts(program: VapProgram, message: str) -> dict[str, Any]:
    """``matchConditions``, ``variables`` and ``validations`` as a VAP spec writes them
    (a Kyverno ValidatingPolicy spec has the same three fields)."""
    spec: dict[str, Any] = {}
    if program.match_conditions:
        spec["matchConditions"] = [
            {"name": f"applies-{i}", "expression": e}
            for i, e in enumerate(program.match_conditions)
        ]
    if program.variables:
        spec["variables"] = [{"name": n, "expression": e} for n, e in program.variables]
    spec["validations"] = [
        {
            "expression": e,
            "message": message,
            "reason": "Invalid",
            **({"messageExpression": m} if m else {}),
        }
        for e, m in program.validations
    ]
    return spec


# Only what plantops renders (and the pods of its workloads, which inherit the template
# labels): the operators' own pods (CloudNativePG instances, PgBouncer) come from their
# images and are not the renderer's to fix.
def managed_selector() -> dict[str, Any]:
    """A fresh label selector for what plantops manages (fresh: YAML dumpers alias
    shared objects)."""
    return {"matchLabels": {"app.kubernetes.io/managed-by": "plantops"}}


def _policy(
    name: str, kinds: Sequence[str], program: VapProgram, severity: Severity, message: str
) -> list[dict[str, Any]]:
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": resource_rules(kinds)},
        **spec_parts(program, message),
    }
    actions = ["Deny"] if severity >= Severity.HIGH else ["Warn", "Audit"]
    meta = {"name": name, "labels": dict(LABELS) | {"plantops.io/severity": severity.label}}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": meta,
            "spec": spec,
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": dict(LABELS)},
            "spec": {
                "policyName": name,
                "validationActions": actions,
                "matchResources": {
                    "namespaceSelector": managed_selector(),
                    "objectSelector": managed_selector(),
                },
            },
        },
    ]


@dataclass(frozen=True)
class AdmissionRule:
    """One rule as it runs at admission, whatever the admission controller."""

    name: str
    """``plantops-<rule id>`` (``plantops-user-<id>`` for the fleet's rules)."""
    rule_id: str
    kinds: Sequence[str]
    program: VapProgram
    severity: Severity
    message: str

    @property
    def actions(self) -> list[str]:
        return ["Deny"] if self.severity >= Severity.HIGH else ["Warn", "Audit"]


def admission_rules(
    rules: Sequence[Rule], user_rules: Sequence[UserRule], ctx: PolicyContext
) -> list[AdmissionRule]:
    """Every rule expressible in CEL per object, sorted by name (built-in first)."""
    out: list[AdmissionRule] = []
    for rule in sorted(rules, key=lambda r: r.id):
        program = program_of(rule, ctx)
        if program is None:
            continue
        kinds = sorted(rule.kinds)
        if any(k not in RESOURCES for k in kinds):
            continue
        out.append(
            AdmissionRule(
                f"plantops-{rule.id.lower()}",
                rule.id,
                kinds,
                program,
                rule.severity,
                f"{rule.id} {rule.title}: {rule.remediation}",
            )
        )
    for u in sorted(user_rules, key=lambda r: r.id):
        program = VapProgram(
            u.program.variables,
            [
                *(_label_condition(k, v) for k, v in sorted(u.labels.items())),
                *u.program.match_conditions,
            ],
            u.program.validations,
        )
        out.append(
            AdmissionRule(
                f"plantops-user-{u.id.lower()}",
                u.id,
                sorted(k for k in u.kinds if k in RESOURCES),
                program,
                u.severity,
                u.message or u.id,
            )
        )
    return out


def export_vap(
    rules: Sequence[Rule], user_rules: Sequence[UserRule], ctx: PolicyContext
) -> list[dict[str, Any]]:
    """Policies and bindings, sorted by name, for every rule expressible in CEL."""
    out: list[dict[str, Any]] = []
    for a in admission_rules(rules, user_rules, ctx):
        out += _policy(a.name, a.kinds, a.program, a.severity, a.message)
    return out


def _label_condition(key: str, value: str) -> str:
    return f"has(object.metadata.labels) && {key!r} in object.metadata.labels && object.metadata.labels[{key!r}] == {value!r}"


__all__ = [
    "LABELS",
    "RESOURCES",
    "AdmissionRule",
    "admission_rules",
    "export_vap",
    "managed_selector",
    "program_of",
    "resource_rules",
    "spec_parts",
]

"""The baseline and the fleet's CEL rules as Kyverno ``ValidatingPolicy`` objects, the
fleet's exceptions as Kyverno ``PolicyException`` objects (``policies.kyverno.io/v1``).

Why ValidatingPolicy, not ClusterPolicy: a ClusterPolicy validates with patterns or
``validate.cel`` inside rules; a ValidatingPolicy is Kyverno's superset of the Kubernetes
ValidatingAdmissionPolicy (same ``matchConstraints``, ``matchConditions``, ``variables``,
``validations``, ``validationActions``; kyverno.io/docs/policy-types/validating-policy),
so it carries the very CEL the VAP export writes, and ``tests/check/policy`` runs that
CEL against the Python rules. No binding is needed: the selectors live in
``matchConstraints``. Its object selector also keeps Kyverno from generating pod
controller variants of a rule (``autogen.CanAutoGen`` in pkg/cel/autogen/support.go
refuses policies with an object selector): the rules already read ``variables.podSpec``
whatever the kind.

An exception becomes a PolicyException naming the policies of its rule
(``spec.policyRefs`` by kind and name) with its scope as CEL ``matchConditions`` (plant
and environment labels, the object's kind/namespace/name globs as anchored RE2), and its
owner, reason and expiry as annotations and ``spec.properties``; ``spec.expiresAt`` makes
the cluster drop it on the day it expires (``ListExceptions`` in pkg/cel/engine/exception.go
skips ``IsExpired()`` exceptions; the field is in the CRD from Kyverno 1.19). Exceptions
already expired on export day are not written. Kyverno reads exceptions from one
namespace (its ``--exceptionNamespace`` flag, cmd/internal/flag.go), given as
``namespace``. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from plantops.check.policy.config import UserRule
from plantops.check.policy.model import PolicyContext, PolicyException, Rule
from plantops.check.policy.vap import (
    LABELS,
    AdmissionRule,
    admission_rules,
    managed_selector,
    resource_rules,
    spec_parts,
)

API_VERSION = "policies.kyverno.io/v1"
"""GA from Kyverno 1.17; ``spec.expiresAt`` on exceptions from 1.19."""
DEFAULT_EXCEPTION_NAMESPACE = "kyverno"
_RE2_SPECIAL = frozenset(".^$*+?()[]{}|\\")
ANNOTATIONS = ("plantops.io/owner", "plantops.io/reason", "plantops.io/expires")


def validating_policy(a: AdmissionRule) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingPolicy",
        "metadata": {
            "name": a.name,
            "labels": dict(LABELS) | {"plantops.io/severity": a.severity.label},
            "annotations": {"plantops.io/rule": a.rule_id},
        },
        "spec": {
            "failurePolicy": "Fail",
            "validationActions": a.actions,
            "matchConstraints": {
                "resourceRules": resource_rules(a.kinds),
                "namespaceSelector": managed_selector(),
                "objectSelector": managed_selector(),
            },
            **spec_parts(a.program, a.message),
        },
    }


def _cel_string(text: str) -> str:
    """A CEL string literal (single-quoted, backslash escapes)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _label_is(key: str, value: str) -> str:
    k = _cel_string(key)
    return (
        f"has(object.metadata.labels) && {k} in object.metadata.labels && "
        f"object.metadata.labels[{k}] == {_cel_string(value)}"
    )


def glob_regex(pattern: str) -> str:
    """An fnmatch glob as an anchored RE2 regular expression (``fnmatch.translate``
    writes Python-only syntax: atomic groups, ``\\Z``)."""
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 1)) != -1:
            body = pattern[i:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append("\\" + c if c in _RE2_SPECIAL else c)
    return "".join(out) + "$"


def _glob(field: str, pattern: str) -> str:
    if pattern == "*":
        return "true"
    if not any(c in pattern for c in "*?["):
        return f"{field} == {_cel_string(pattern)}"
    return f"{field}.matches({_cel_string(glob_regex(pattern))})"


def exception_conditions(e: PolicyException) -> list[str]:
    """The exception's scope as CEL on the admitted object (what ``exception_matches``
    decides from the finding; plant and environment come from the standard labels)."""
    out: list[str] = []
    if e.plant:
        out.append(_label_is("plantops.io/plant", e.plant))
    if e.environment:
        out.append(_label_is("plantops.io/environment", e.environment))
    if e.object:
        parts = e.object.split("/")
        kind, namespace, name = (parts[0], "", parts[1]) if len(parts) == 2 else parts[:3]
        ns = "(has(object.metadata.namespace) ? object.metadata.namespace : '')"
        out += [
            _glob("object.kind", kind),
            _glob(ns, namespace),
            _glob("object.metadata.name", name),
        ]
    return [c for c in out if c != "true"]


def policy_exception(
    e: PolicyException, policies: Sequence[str], namespace: str, index: int
) -> dict[str, Any]:
    notes = {
        "plantops.io/owner": e.owner,
        "plantops.io/reason": e.reason,
        "plantops.io/expires": e.expires.isoformat(),
    }
    spec: dict[str, Any] = {
        "policyRefs": [{"kind": "ValidatingPolicy", "name": p} for p in policies],
        "expiresAt": f"{e.expires.isoformat()}T23:59:59Z",
        "properties": {k.removeprefix("plantops.io/"): v for k, v in notes.items()}
        | {"source": e.where},
    }
    conditions = exception_conditions(e)
    if conditions:
        spec["matchConditions"] = [
            {"name": f"scope-{i}", "expression": c} for i, c in enumerate(conditions)
        ]
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyException",
        "metadata": {
            "name": f"plantops-{e.rule.lower().replace('*', 'all')}-{index}",
            "namespace": namespace,
            "labels": dict(LABELS),
            "annotations": notes,
        },
        "spec": spec,
    }


def export_kyverno(
    rules: Sequence[Rule],
    user_rules: Sequence[UserRule],
    exceptions: Sequence[PolicyException],
    ctx: PolicyContext,
    *,
    today: dt.date,
    namespace: str = DEFAULT_EXCEPTION_NAMESPACE,
) -> list[dict[str, Any]]:
    """ValidatingPolicies sorted by name, then the exceptions in force today that name
    an exported policy, in file order."""
    admitted = admission_rules(rules, user_rules, ctx)
    out = [validating_policy(a) for a in admitted]
    by_rule: dict[str, list[str]] = {}
    for a in admitted:
        by_rule.setdefault(a.rule_id, []).append(a.name)
    every = [a.name for a in admitted]
    live = sorted((e for e in exceptions if e.expires >= today), key=lambda e: (e.file, e.line))
    for i, e in enumerate(live):
        policies = every if e.rule == "*" else by_rule.get(e.rule, [])
        if policies:
            out.append(policy_exception(e, policies, namespace, i))
    return out


__all__ = [
    "ANNOTATIONS",
    "API_VERSION",
    "DEFAULT_EXCEPTION_NAMESPACE",
    "exception_conditions",
    "export_kyverno",
    "glob_regex",
    "policy_exception",
    "validating_policy",
]

"""Each built-in rule: the rendered example passes it, a tampered copy fails it; and the
exported CEL gives the Python rule's verdict on every object (the same rule at admission)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from tests.conftest import EXAMPLE, TODAY

from plantops.check.policy import (
    BASELINE,
    PolicyConfig,
    PolicyContext,
    evaluate_policies,
    load_policy_config,
    program_of,
)
from plantops.check.policy.model import Document

NS = "rotterdam-dc-prod"
Edit = Callable[[dict[str, Any]], None]


def _pod(o: dict[str, Any]) -> dict[str, Any]:
    return o["spec"]["template"]["spec"]


def _c0(o: dict[str, Any]) -> dict[str, Any]:
    return _pod(o)["containers"][0]


def _web(d: Document) -> bool:
    return d.kind == "Deployment" and d.namespace == NS and d.name.endswith("odoo-web")


def _kind(kind: str, ns: str = NS) -> Callable[[Document], bool]:
    return lambda d: d.kind == kind and d.namespace == ns


def _name(kind: str, suffix: str, ns: str = NS) -> Callable[[Document], bool]:
    return lambda d: d.kind == kind and d.namespace == ns and d.name.endswith(suffix)


def _set(path: str, value: Any) -> Edit:
    def edit(o: dict[str, Any]) -> None:
        *head, last = path.split(".")
        cur = o
        for k in head:
            cur = cur[int(k)] if k.isdigit() else cur[k]
        cur[last] = value

    return edit


def _conf(old: str, new: str, key: str = "odoo.conf") -> Edit:
    def edit(o: dict[str, Any]) -> None:
        o["data"][key] = o["data"][key].replace(old, new)

    return edit


def _drop(pred: Callable[[Document], bool]) -> tuple[Callable[[Document], bool], None]:
    return pred, None


SEC = "spec.template.spec.containers.0.securityContext"
# rule -> (which object to tamper with, how; None removes it)
TAMPER: dict[str, tuple[Callable[[Document], bool], Edit | None]] = {
    "PO-IMG-001": (
        _web,
        _set("spec.template.spec.containers.0.image", "registry.acme.example/odoo/odoo:latest"),
    ),
    "PO-IMG-002": (
        _web,
        _set("spec.template.spec.containers.0.image", "quay.io/x/odoo@sha256:" + "a" * 64),
    ),
    "PO-POD-001": (
        _web,
        lambda o: (
            _c0(o)["securityContext"].pop("runAsNonRoot"),
            _pod(o)["securityContext"].pop("runAsNonRoot"),
        ),
    ),
    "PO-POD-002": (_web, _set(f"{SEC}.allowPrivilegeEscalation", True)),
    "PO-POD-003": (_web, _set(f"{SEC}.capabilities", {"add": ["NET_ADMIN"]})),
    "PO-POD-004": (_web, _set(f"{SEC}.readOnlyRootFilesystem", False)),
    "PO-POD-005": (
        _web,
        lambda o: (
            _c0(o)["securityContext"].pop("seccompProfile"),
            _pod(o)["securityContext"].pop("seccompProfile"),
        ),
    ),
    "PO-POD-006": (_web, lambda o: _c0(o)["resources"].pop("requests")),
    "PO-POD-007": (_web, lambda o: _c0(o)["resources"].pop("limits")),
    "PO-POD-008": (_web, lambda o: _c0(o).pop("livenessProbe")),
    "PO-POD-009": (_web, _set("spec.template.spec.hostNetwork", True)),
    "PO-POD-010": (
        _web,
        lambda o: _pod(o)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    ),
    "PO-POD-011": (_web, _set(f"{SEC}.privileged", True)),
    "PO-NET-001": _drop(_name("NetworkPolicy", "default-deny-all")),
    "PO-NET-002": (_name("Service", "odoo"), _set("spec.type", "NodePort")),
    "PO-NET-003": (
        _name("NetworkPolicy", "odoo-egress"),
        lambda o: o["spec"]["egress"].append({"ports": [{"port": 22, "protocol": "TCP"}]}),
    ),
    "PO-ING-001": (
        lambda d: d.kind == "IngressRoute" and d.namespace == NS and d.name == "rotterdam-dc",
        lambda o: o["spec"].pop("tls"),
    ),
    "PO-ING-002": (
        lambda d: d.kind == "IngressRoute" and d.namespace == NS and d.name == "rotterdam-dc",
        lambda o: o["spec"]["routes"][2].__setitem__("middlewares", []),
    ),
    "PO-ING-003": (
        lambda d: d.kind == "IngressRoute" and d.namespace == NS and d.name == "rotterdam-dc",
        _set("spec.routes.2.match", "Host(`rotterdam-dc.erp.acme.example`)"),
    ),
    "PO-ING-004": (
        lambda d: d.kind == "IngressRoute" and d.namespace == NS and d.name == "rotterdam-dc",
        lambda o: o["spec"]["routes"][0]["middlewares"].pop(),
    ),
    "PO-DATA-001": (_kind("Cluster"), _set("spec.instances", 1)),
    "PO-DATA-002": _drop(_kind("ScheduledBackup")),
    "PO-DATA-003": (_kind("Cluster"), lambda o: o["spec"].pop("plugins")),
    "PO-DATA-004": (_kind("PersistentVolumeClaim"), _set("spec.storageClassName", "fast-local")),
    "PO-DATA-005": (
        _name("ConfigMap", "redis-conf"),
        lambda o: o["data"].__setitem__(
            "redis.conf", o["data"]["redis.conf"].replace("appendonly yes", "appendonly no")
        ),
    ),
    "PO-ODOO-001": (_name("ConfigMap", "odoo-conf"), _conf("list_db = False", "list_db = True")),
    "PO-ODOO-002": (
        _name("ConfigMap", "odoo-conf"),
        _conf("proxy_mode = True", "proxy_mode = False"),
    ),
    "PO-ODOO-003": (_name("ConfigMap", "odoo-conf"), _conf("workers = 3", "workers = 0")),
    "PO-ODOO-004": (_name("ConfigMap", "odoo-conf"), _conf("db_maxconn = 11", "db_maxconn = 64")),
    "PO-ODOO-005": (
        _name("ConfigMap", "odoo-conf"),
        _conf("[options]\n", "[options]\nadmin_passwd = hunter2\n"),
    ),
    "PO-AVAIL-001": _drop(_kind("PodDisruptionBudget")),
    "PO-AVAIL-002": (_web, _set("spec.replicas", 1)),
    "PO-AVAIL-003": (_web, lambda o: _pod(o).pop("topologySpreadConstraints")),
    "PO-SEC-001": (
        _name("ServiceAccount", "odoo"),
        lambda o: o.update(kind="Secret", data={"password": "aHVudGVyMg=="}),
    ),
    "PO-SEC-002": (
        _web,
        lambda o: _c0(o)["env"].append({"name": "SMTP_PASSWORD", "value": "hunter2"}),
    ),
    "PO-GITOPS-001": (
        lambda d: d.kind == "AppProject" and d.name == "plant-detroit-stamping",
        lambda o: o["spec"].pop("syncWindows"),
    ),
    "PO-GITOPS-002": (
        _kind("Cluster"),
        lambda o: o["metadata"]["annotations"].pop("argocd.argoproj.io/sync-options"),
    ),
    "PO-CAP-001": (_kind("ResourceQuota"), _set("spec.hard.pods", "3")),
    "PO-CAP-002": (
        _web,
        lambda o: _c0(o)["resources"].update(
            requests={"cpu": "64", "memory": "4096Mi"}, limits={"cpu": "64", "memory": "4096Mi"}
        ),
    ),
    "PO-OWN-001": (_web, lambda o: o["metadata"]["labels"].pop("app.kubernetes.io/part-of")),
}


def tampered(docs: list[Document], rule_id: str) -> tuple[list[Document], Document | None]:
    pred, edit = TAMPER[rule_id]
    targets = [d for d in docs if pred(d)]
    assert targets, f"no object to tamper with for {rule_id}"
    target = targets[0]
    if edit is None:
        return [d for d in docs if d is not target], None
    obj = copy.deepcopy(dict(target.obj))
    edit(obj)
    changed = Document(target.file, target.index, obj, target.line)
    return [changed if d is target else d for d in docs], changed


def test_baseline_has_at_least_30_rules_each_with_a_fixture() -> None:
    ids = [r.id for r in BASELINE]
    assert len(ids) >= 30 and len(set(ids)) == len(ids)
    assert sorted(TAMPER) == sorted(ids)


@pytest.mark.parametrize("rule", BASELINE, ids=lambda r: r.id)
def test_rule_passes_rendered_and_fails_tampered(
    rule: Any, rendered: tuple[list[Document], PolicyContext]
) -> None:
    docs, ctx = rendered
    # The example's exceptions (cron probes, standard-tier spread) apply to the clean tree.
    clean = evaluate_policies(docs, ctx, load_policy_config(EXAMPLE), today=TODAY, rules=[rule])
    assert clean.findings == (), [f.message for f in clean.findings]
    bad, _ = tampered(docs, rule.id)
    found = evaluate_policies(bad, ctx, PolicyConfig(), today=TODAY, rules=[rule]).findings
    assert found, f"{rule.id} did not fire on its tampered fixture"
    assert all(f.rule == rule.id and f.message and f.remediation for f in found)


def _python_verdict(rule: Any, doc: Document, ctx: PolicyContext) -> bool:
    return not list(rule.check(doc, ctx))


def _cel_verdict(rule: Any, doc: Document, ctx: PolicyContext) -> bool:
    program = program_of(rule, ctx)
    assert program is not None
    return not program.run(doc.obj)


CEL_RULES = [r for r in BASELINE if r.cel is not None]


def test_most_rules_are_exported_to_admission() -> None:
    assert len(CEL_RULES) >= 25


@pytest.mark.parametrize("rule", CEL_RULES, ids=lambda r: r.id)
def test_cel_gives_the_python_verdict(
    rule: Any, rendered: tuple[list[Document], PolicyContext]
) -> None:
    docs, ctx = rendered
    bad_docs, changed = tampered(docs, rule.id)
    cases = [d for d in docs if not rule.kinds or d.kind in rule.kinds]
    if changed is not None:
        cases.append(changed)
    failing = 0
    for doc in cases:
        py = _python_verdict(rule, doc, ctx)
        assert _cel_verdict(rule, doc, ctx) is py, f"{rule.id} on {doc.kind}/{doc.name} {doc.file}"
        failing += not py
    assert failing >= 1  # the tampered object, at least: both engines said no


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("shared-group-0025-eu-central-staging", False),  # a Redis key prefix: a name
        ("detroit_stamping_prod_sessions", False),
        ("q8x2k9z7m4v1n6b3c5l0p2w8", True),  # one long generated run
        ("sk_LiVe_4eC39HqLyjWDarjtT1zdp7dc", True),  # mixed case and symbols
    ],
)
def test_names_are_not_credentials_but_tokens_are(value: str, secret: bool) -> None:
    from plantops.check.policy.baseline import looks_like_credential

    assert looks_like_credential("ODOO_SESSION_REDIS_PREFIX", value) is secret

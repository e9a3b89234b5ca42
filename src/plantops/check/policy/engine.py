"""Evaluate the baseline and the fleet's CEL rules over manifests; apply exceptions.

``read_manifest_tree`` is the edge (it reads files); ``evaluate_policies`` is pure.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from plantops.check.policy.baseline import BASELINE
from plantops.check.policy.config import PolicyConfig, UserRule, exception_matches
from plantops.check.policy.model import (
    Document,
    Finding,
    PolicyContext,
    PolicyException,
    PolicyResult,
    Rule,
    SkippedFile,
    UnitInfo,
)
from plantops.check.schema import discover_manifest_files, parse_manifest_text
from plantops.errors import UserError, display_path
from plantops.inputs import MANIFEST_LIMITS, read_text

EXPIRY_WARNING_DAYS = 30

SpecLocator = Callable[[str, str, str], str]
"""``(plant, tier, rule.spec_field) -> "file:line:col"`` or ""."""


def unit_info(data: Any) -> UnitInfo | None:
    """The facts of a ``deployment.json`` (None: not one)."""
    if not isinstance(data, Mapping) or "namespace" not in data or "tier" not in data:
        return None
    return UnitInfo(
        environment=str(data.get("environment", "")),
        production=bool(data.get("production")),
        tier=str(data.get("tier", "")),
        series=str((data.get("odoo") or {}).get("series", "")),
        cluster=str(data.get("cluster") or ""),
        plants=tuple(
            str(t.get("plant")) for t in data.get("tenants") or () if isinstance(t, Mapping)
        ),
    )


def _read_one(root: Path, path: Path) -> tuple[str, list[Any] | str]:
    """One file's documents (``(file, index, obj, line)``), or why it was skipped."""
    shown = display_path(path, root)
    try:
        text = read_text(path, shown, limits=MANIFEST_LIMITS, root=root)
        parsed = parse_manifest_text(text, shown, is_json=path.suffix.lower() == ".json")
    except UserError as exc:
        return shown, str(exc).splitlines()[0]
    return shown, [(d.file, d.index, d.obj, d.line) for d in parsed]


def read_manifest_tree(
    root: Path,
) -> tuple[list[Document], list[SkippedFile], dict[str, UnitInfo], dict[str, Any], int]:
    """Kubernetes objects under ``root`` (paths relative to it), the files skipped with
    why, each deployment directory's ``deployment.json`` facts (and raw data), and the
    number of files read. Unparsable or non-Kubernetes files are skipped, never fatal."""
    docs: list[Document] = []
    skipped: list[SkippedFile] = []
    units: dict[str, UnitInfo] = {}
    raw: dict[str, Any] = {}
    files = discover_manifest_files([root])
    # Parsing is most of a check's time; forked readers did not pay for pickling the
    # objects back on 2 cores (measured), so files are read in order here.
    for shown, parsed in (_read_one(root, p) for p in files):
        if isinstance(parsed, str):
            skipped.append(SkippedFile(shown, parsed))
            continue
        if shown.endswith("deployment.json") and parsed:
            info = unit_info(parsed[0][2])
            if info is not None:
                unit = shown.rpartition("/")[0]
                units[unit] = info
                raw[unit] = parsed[0][2]
                continue
        objects = build_files = 0
        for file, index, obj, line in parsed:
            if not (isinstance(obj, Mapping) and isinstance(obj.get("kind"), str)):
                continue
            api = obj.get("apiVersion")
            if not isinstance(api, str):
                continue
            if api.startswith("kustomize.config.k8s.io"):
                build_files += 1  # a build file for kustomize, never sent to the API server
                continue
            docs.append(Document(file, index, obj, line))
            objects += 1
        if not objects and not build_files:
            skipped.append(
                SkippedFile(shown, "no Kubernetes object (a document needs apiVersion and kind)")
            )
    return docs, skipped, units, raw, len(files)


def _applies(rule: Rule, doc: Document) -> bool:
    return not rule.kinds or doc.kind in rule.kinds


def _user_applies(rule: UserRule, doc: Document) -> bool:
    if rule.kinds and doc.kind not in rule.kinds:
        return False
    return all(doc.labels.get(k) == v for k, v in rule.labels.items())


def _user_rule_as_rule(u: UserRule) -> Rule:
    return Rule(
        u.id,
        u.message or u.id,
        u.severity,
        u.remediation,
        frozenset(u.kinds),
        source=f"{u.file}:{u.line}",
    )


def _plant(doc: Document, ctx: PolicyContext) -> str:
    plant = doc.labels.get("plantops.io/plant", "")
    if plant:
        return plant
    plants = ctx.unit(doc).plants
    return plants[0] if len(plants) == 1 else ""


def evaluate_policies(
    docs: Sequence[Document],
    ctx: PolicyContext,
    config: PolicyConfig,
    *,
    today: dt.date,
    rules: Sequence[Rule] = BASELINE,
    skipped: Sequence[SkippedFile] = (),
    files: int = 0,
    spec_location: SpecLocator | None = None,
) -> PolicyResult:
    """Every finding of every rule, exceptions applied; pure."""
    raw: list[tuple[Rule, Document, str, str]] = []
    by_kind: dict[str, list[Rule]] = {}
    for doc in docs:
        applicable = by_kind.get(doc.kind)
        if applicable is None:
            applicable = by_kind[doc.kind] = [r for r in rules if r.check and _applies(r, doc)]
        for rule in applicable:
            assert rule.check is not None
            for path, message in rule.check(doc, ctx):
                raw.append((rule, doc, path, message))
    for rule in rules:
        if rule.group is not None:
            for doc, path, message in rule.group(docs, ctx):
                raw.append((rule, doc, path, message))
    for u in config.rules:
        as_rule = _user_rule_as_rule(u)
        for doc in docs:
            if _user_applies(u, doc):
                for message in u.program.run(doc.obj):
                    raw.append(
                        (
                            as_rule,
                            doc,
                            "$",
                            message
                            if message != u.program.validations[0][0]
                            else (u.message or message),
                        )
                    )
    active: list[Finding] = []
    suppressed: list[Finding] = []
    warnings: list[str] = []
    used: set[PolicyException] = set()
    expired_hits: set[PolicyException] = set()
    for rule, doc, path, message in raw:
        plant = _plant(doc, ctx)
        env = ctx.environment(doc)
        finding = Finding(
            plant=plant,
            rule=rule.id,
            file=doc.file,
            index=doc.index,
            path=path,
            severity=rule.severity,
            kind=doc.kind,
            namespace=doc.namespace,
            name=doc.name,
            message=message,
            remediation=rule.remediation,
            environment=env,
            line=doc.line,
            spec_location=spec_location(
                plant,
                doc.labels.get("plantops.io/tier") or ctx.unit(doc).tier,
                (rule.spec_field_at and rule.spec_field_at(doc, path, ctx)) or rule.spec_field,
            )
            if spec_location and plant
            else "",
        )
        ref = (doc.kind, doc.namespace, doc.name)
        matching = [e for e in config.exceptions if exception_matches(e, rule.id, plant, env, ref)]
        live = [e for e in matching if e.expires >= today]
        if live:
            used.add(live[0])
            suppressed.append(_with(finding, excepted_by=live[0].label))
            continue
        if matching:
            e = matching[0]
            expired_hits.add(e)
            finding = _with(
                finding,
                message=f"{message} (exception by {e.owner} at {e.where} expired {e.expires.isoformat()})",
            )
        active.append(finding)
    for e in sorted(expired_hits, key=lambda e: (e.file, e.line)):
        warnings.append(
            f"{e.where}: exception for {e.rule} by {e.owner} expired on {e.expires.isoformat()}; its findings are back"
        )
    soon = today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    for e in sorted(config.exceptions, key=lambda e: (e.file, e.line)):
        if today <= e.expires <= soon:
            days = (e.expires - today).days
            warnings.append(
                f"{e.where}: exception for {e.rule} by {e.owner} expires in {days} day(s) ({e.expires.isoformat()}): {e.reason}"
            )
    return PolicyResult(
        findings=tuple(sorted(active)),
        suppressed=tuple(sorted(suppressed)),
        warnings=tuple(warnings),
        rules=(*rules, *(_user_rule_as_rule(u) for u in config.rules)),
        objects=len(docs),
        files=files,
        skipped=tuple(skipped),
        thresholds=dict(config.settings.thresholds),
        default_threshold=config.settings.default_threshold,
    )


def _with(f: Finding, **changes: Any) -> Finding:
    from dataclasses import replace

    return replace(f, **changes)


def unit_json(raw: Mapping[str, Any]) -> str:
    return json.dumps(raw, sort_keys=True)


__all__ = [
    "EXPIRY_WARNING_DAYS",
    "SpecLocator",
    "evaluate_policies",
    "read_manifest_tree",
    "unit_info",
]

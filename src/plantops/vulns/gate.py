"""The vulnerability gate: a policy per tier and environment over normalized findings.

Pure apart from :func:`load_policy`, which reads the policy file through
:mod:`plantops.inputs`. The verdict is data; the CLI turns a failed gate into exit 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from plantops.errors import Problem, SpecError, UserError, display_path
from plantops.inputs import SPEC_LIMITS, read_text, yaml_documents_located
from plantops.vulns.model import SEVERITIES, Vulnerability
from plantops.vulns.readers import VexStatement


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """Maximum counts by severity (absent: unlimited) and whether unfixable ones count."""

    max: dict[str, int] | None = None
    fixable_only: bool | None = None


class AllowEntry(_Strict):
    id: str
    package: str | None = None
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: dt.date


class Policy(_Strict):
    version: int = 1
    default: Rule = Rule(max={"critical": 0, "high": 0}, fixable_only=True)
    tiers: dict[str, Rule] = {}
    environments: dict[str, Rule] = {}
    allowlist: list[AllowEntry] = []


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class EffectiveRule:
    max: Mapping[str, int]
    fixable_only: bool
    applied: tuple[str, ...]


def effective_rule(
    policy: Policy, tier: str | None, env: str | None, *, require: bool = True
) -> EffectiveRule:
    """default, then the tier's rule, then the environment's: each given field replaces.

    ``require``: a tier or environment the policy has no rule for is an error (a typo on
    the command line); off when they come from the fleet, where a missing rule means
    "the default applies"."""
    limits = dict(policy.default.max or {})
    fixable_only = bool(policy.default.fixable_only)
    applied = ["default"]
    for label, table, key in (
        ("tier", policy.tiers, tier),
        ("environment", policy.environments, env),
    ):
        if key is None:
            continue
        if key not in table and not require:
            applied.append(f"{label} {key} (no rule)")
            continue
        if key not in table:
            known = ", ".join(sorted(table)) or "none"
            raise UserError(
                f"--{'env' if label == 'environment' else label} {key}: not in the policy ({known})"
            )
        rule = table[key]
        if rule.max is not None:
            limits.update(rule.max)
        if rule.fixable_only is not None:
            fixable_only = rule.fixable_only
        applied.append(f"{label} {key}")
    return EffectiveRule(limits, fixable_only, tuple(applied))


def load_policy(path: Path) -> Policy:
    shown = display_path(path, Path.cwd())
    text = read_text(path, shown, limits=SPEC_LIMITS)
    docs = yaml_documents_located(text, shown, limits=SPEC_LIMITS)
    data = docs[0][2] if docs else {}
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [
                Problem(shown, 1, 1, ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()
            ]
        ) from None
    bad = [
        Problem(
            shown, 1, 1, f"{where}.max.{sev}", f"unknown severity {sev!r}", ", ".join(SEVERITIES)
        )
        for where, rule in (
            ("default", policy.default),
            *((f"tiers.{k}", r) for k, r in policy.tiers.items()),
            *((f"environments.{k}", r) for k, r in policy.environments.items()),
        )
        for sev in (rule.max or {})
        if sev not in SEVERITIES
    ]
    if bad:
        raise SpecError(bad)
    return policy


@dataclass(frozen=True)
class GateResult:
    rule: EffectiveRule
    counted: tuple[Vulnerability, ...]
    blocking: tuple[Vulnerability, ...]
    ignored: tuple[Vulnerability, ...]
    counts: Mapping[str, int]
    exceeded: Mapping[str, int]
    """Severity → count, where the count is over the rule's maximum."""
    reports: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.exceeded

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rule": {
                "max": dict(self.rule.max),
                "fixable_only": self.rule.fixable_only,
                "applied": list(self.rule.applied),
            },
            "reports": list(self.reports),
            "counts": dict(self.counts),
            "exceeded": dict(self.exceeded),
            "blocking": [v.to_dict() for v in self.blocking],
            "counted": [v.to_dict() for v in self.counted],
            "ignored": [v.to_dict() for v in self.ignored],
        }


def _dedupe(rows: Iterable[Vulnerability]) -> list[Vulnerability]:
    """One row per (id, package, installed); the sources of duplicates are joined."""
    merged: dict[tuple[str, str, str], Vulnerability] = {}
    for row in sorted(rows):
        first = merged.get(row.key)
        if first is None:
            merged[row.key] = row
        elif row.source not in first.source.split("; "):
            merged[row.key] = replace(first, source=f"{first.source}; {row.source}")
    return list(merged.values())


def evaluate_gate(
    rows: Sequence[Vulnerability],
    policy: Policy,
    *,
    tier: str | None,
    env: str | None,
    today: dt.date,
    vex: Sequence[VexStatement] = (),
    reports: Sequence[str] = (),
    require: bool = True,
) -> GateResult:
    rule = effective_rule(policy, tier, env, require=require)
    expired = [a for a in policy.allowlist if a.expires < today]
    if expired:
        a = expired[0]
        raise UserError(
            f"allowlist entry {a.id}{f' ({a.package})' if a.package else ''} owned by {a.owner} "
            f"expired on {a.expires.isoformat()}: renew it with a new reason or remove it"
        )
    counted: list[Vulnerability] = []
    ignored: list[Vulnerability] = []
    for row in _dedupe(rows):
        v = row
        if v.status == "affected":
            statement = next((s for s in vex if s.matches(v)), None)
            if statement is not None and statement.state in (
                "not_affected",
                "false_positive",
                "resolved",
                "resolved_with_pedigree",
            ):
                v = replace(
                    v, status=statement.state, reason=f"VEX {statement.file}: {statement.reason}"
                )
        if v.status == "affected":
            allowed = next(
                (a for a in policy.allowlist if a.id == v.id and a.package in (None, v.package)),
                None,
            )
            if allowed is not None:
                v = replace(
                    v,
                    status="allowlisted",
                    reason=f"{allowed.reason} (owner {allowed.owner}, until {allowed.expires})",
                )
        if v.status != "affected":
            ignored.append(v)
        elif rule.fixable_only and not v.fixable:
            ignored.append(replace(v, status="unfixable", reason="no fixed version (fixable_only)"))
        else:
            counted.append(v)
    counts = {s: sum(1 for v in counted if v.severity == s) for s in SEVERITIES}
    exceeded = {s: n for s, n in counts.items() if s in rule.max and n > rule.max[s]}
    blocking = tuple(v for v in counted if v.severity in exceeded)
    return GateResult(
        rule,
        tuple(counted),
        blocking,
        tuple(ignored),
        counts,
        exceeded,
        tuple(reports),
    )


__all__ = [
    "DEFAULT_POLICY",
    "AllowEntry",
    "EffectiveRule",
    "GateResult",
    "Policy",
    "Rule",
    "effective_rule",
    "evaluate_gate",
    "load_policy",
]

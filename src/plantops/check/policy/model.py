"""The data of policy checking: severities, findings, rules, the context rules read.

Pure: nothing here reads files or prints. A rule is a Python check (the reference) and,
where the rule is expressible per object, the ValidatingAdmissionPolicy CEL that
``policy export`` writes; ``tests/check/policy`` proves the two give the same verdicts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

Obj = Mapping[str, Any]


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Document:
    """One Kubernetes object as read or rendered: where it is, what it is."""

    file: str
    index: int
    obj: Obj
    line: int = 0

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def meta(self) -> Obj:
        m = self.obj.get("metadata")
        return m if isinstance(m, Mapping) else {}

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.meta.get("namespace", ""))

    @property
    def labels(self) -> Mapping[str, str]:
        labels = self.meta.get("labels")
        return labels if isinstance(labels, Mapping) else {}

    @property
    def unit(self) -> str:
        """The deployment directory the object belongs to (its file's folder)."""
        return self.file.rpartition("/")[0]


@dataclass(frozen=True, order=True)
class Finding:
    """One rule violated by one object, with what to do about it."""

    plant: str
    rule: str
    file: str
    index: int
    path: str
    """JSON path inside the object, e.g. ``$.spec.template.spec.containers[0].image``."""
    severity: Severity = field(compare=False)
    kind: str = field(compare=False)
    namespace: str = field(compare=False)
    name: str = field(compare=False)
    message: str = field(compare=False)
    remediation: str = field(compare=False)
    environment: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)
    spec_location: str = field(default="", compare=False)
    """``plants/x.yaml:12:3`` where the fleet spec caused the object (fleet runs)."""
    excepted_by: str = field(default="", compare=False)
    """The exception that suppresses this finding (``owner: reason``), if any."""

    @property
    def object_ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.label,
            "object": {"kind": self.kind, "namespace": self.namespace, "name": self.name},
            "file": self.file,
            "document": self.index,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "remediation": self.remediation,
            "plant": self.plant,
            "environment": self.environment,
            "spec_location": self.spec_location,
            **({"excepted_by": self.excepted_by} if self.excepted_by else {}),
        }


@dataclass(frozen=True)
class TierInfo:
    ha: bool = False
    pitr: bool = False
    rpo_minutes: int = 1440
    postgres_instances: int = 1


@dataclass(frozen=True)
class UnitInfo:
    """What a deployment directory's ``deployment.json`` says about it."""

    environment: str = ""
    production: bool = False
    tier: str = ""
    series: str = ""
    cluster: str = ""
    plants: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyContext:
    """Fleet facts rules compare against. Empty collections mean "unknown": the rules
    that need them do not run (a manifest directory checked without its fleet)."""

    registries: tuple[str, ...] = ()
    storage_classes: tuple[str, ...] = ()
    tiers: Mapping[str, TierInfo] = field(default_factory=dict)
    units: Mapping[str, UnitInfo] = field(default_factory=dict)
    freeze_plants: frozenset[str] = frozenset()
    node_pools: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    """Cluster name → its spec NodePools, for the node-fit rule."""
    dev_environments: tuple[str, ...] = ("dev",)
    open_egress_ports: tuple[int, ...] = (53, 443, 587, 6443)
    ingress_controllers: tuple[str, ...] = ("traefik",)
    image_fields: Mapping[str, str] = field(default_factory=dict)
    """Image repository (no tag or digest) → the fleet spec field that names it
    (``odoo.image``, ``platform.images.redis``…), for the image rules' spec location."""

    def unit(self, doc: Document) -> UnitInfo:
        return self.units.get(doc.unit, UnitInfo())

    def environment(self, doc: Document) -> str:
        return doc.labels.get("plantops.io/environment") or self.unit(doc).environment

    def tier(self, doc: Document) -> TierInfo | None:
        name = doc.labels.get("plantops.io/tier") or self.unit(doc).tier
        return self.tiers.get(name)

    def production(self, doc: Document) -> bool:
        env = self.environment(doc)
        return self.unit(doc).production or env in ("prod", "production")


Violation = tuple[str, str]
"""``(json path, message)``."""
ObjectCheck = Callable[[Document, PolicyContext], Iterable[Violation]]
GroupCheck = Callable[[Sequence[Document], PolicyContext], Iterable[tuple[Document, str, str]]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    remediation: str
    kinds: frozenset[str] = frozenset()
    """Kinds the rule looks at; empty = every kind."""
    check: ObjectCheck | None = None
    group: GroupCheck | None = None
    """A rule over a deployment directory's objects together (one namespace)."""
    cel: Callable[[PolicyContext], str] | None = None
    """The same rule as a VAP validation expression (true = compliant)."""
    cel_match: Callable[[PolicyContext], str] | None = None
    """A VAP matchCondition: the rule applies only where this is true."""
    spec_field: str = ""
    """Where in the fleet spec the cause lives: ``plant``, ``tier.<field>``, ``fleet.<path>``."""
    spec_field_at: Callable[[Document, str, PolicyContext], str] | None = None
    """The same, per finding (its object and JSON path), where one rule has several
    causes; ``""`` falls back to ``spec_field``."""
    source: str = "builtin"


@dataclass(frozen=True)
class PolicyException:
    rule: str
    owner: str
    reason: str
    expires: dt.date
    plant: str = ""
    environment: str = ""
    object: str = ""
    """``Kind/namespace/name`` or ``Kind/name``; each part a glob (``*-odoo-cron``)."""
    file: str = ""
    line: int = 0

    @property
    def label(self) -> str:
        return f"{self.owner}: {self.reason} (until {self.expires.isoformat()})"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class SkippedFile:
    file: str
    reason: str


@dataclass(frozen=True)
class PolicyResult:
    findings: tuple[Finding, ...]
    """Findings in force (no exception, or an expired one)."""
    suppressed: tuple[Finding, ...]
    warnings: tuple[str, ...]
    rules: tuple[Rule, ...]
    objects: int
    files: int
    skipped: tuple[SkippedFile, ...] = ()
    thresholds: Mapping[str, Severity] = field(default_factory=dict)
    default_threshold: Severity = Severity.MEDIUM

    def threshold(self, environment: str) -> Severity:
        return self.thresholds.get(environment, self.default_threshold)

    @functools.cached_property
    def failing(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= self.threshold(f.environment))

    @property
    def ok(self) -> bool:
        return not self.failing


__all__ = [
    "Document",
    "Finding",
    "GroupCheck",
    "Obj",
    "ObjectCheck",
    "PolicyContext",
    "PolicyException",
    "PolicyResult",
    "Rule",
    "Severity",
    "SkippedFile",
    "TierInfo",
    "UnitInfo",
    "Violation",
]

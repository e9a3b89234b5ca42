"""``plantops metrics serve``: the control plane's own facts as Prometheus metrics
(prometheus-client), read at each scrape so they are never staler than their source.

* probe results: the newest ``plantops probe run --out FILE`` document (run it from a
  timer); a skipped check is not exported, a failed one is 0;
* release per plant and stage: the deployed image and Odoo series from the plan;
* backups per plant and stage from the backup catalog (``backupfacts``): newest backup
  and newest verified backup age, the last verification's result and measured RPO/RTO,
  with the tier's objectives beside them;
* business events from the plant calendars (``events``): shifts, MRP runs, month-end
  close, shutdowns — active now, last and next start;
* policy: the findings in force per deployment and rule, how many of them fail the
  stage's threshold (the ones ``plan``'s gate and ``check`` refuse), and when each
  exception expires — from the newest evaluation (the services layer re-runs it);
* gate states per plant and stage from the release ledger: the release promoted last,
  when, each gate's result in that promotion, and whether it was a break-glass.

Every source is read at scrape time through a callable, so a catalog or file that cannot
be read yields ``plantops_source_up{source} 0`` instead of a failed scrape.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from plantops.errors import PlantopsError, UserError
from plantops.inputs import MANIFEST_LIMITS, json_value, read_text
from plantops.observe.backupfacts import BackupFacts, backup_facts
from plantops.observe.events import plant_events

if TYPE_CHECKING:
    from plantops.model import Plant
    from plantops.plan import Deployment
    from plantops.store import BackupRecord

TARGET_LABELS = ("target", "plant", "environment", "tier")


@dataclass(frozen=True)
class ReleaseRow:
    plant: str
    environment: str
    tier: str
    namespace: str
    series: str
    image: str


def release_rows(deployments: Sequence[Deployment]) -> tuple[ReleaseRow, ...]:
    return tuple(
        ReleaseRow(
            t.plant, d.environment.name, d.tier, d.namespace, d.series, f"{d.image}@{d.digest}"
        )
        for d in deployments
        for t in d.tenants
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Sources:
    """What the exporter reads besides the plan; each optional."""

    deployments: Sequence[Deployment] = ()
    backups: Callable[[], Sequence[BackupRecord]] | None = None  # the catalog, read per scrape
    plants: Sequence[Plant] = ()  # calendars for the business-event series
    policy: Callable[[], PolicyFacts] | None = None  # newest evaluation (cheap to call)
    promotions: Callable[[], Sequence[PromotionRow]] | None = None  # the ledger, per scrape
    clock: Callable[[], dt.datetime] = field(default=_utcnow)


@dataclass(frozen=True)
class PolicyRow:
    """One policy finding in force (no unexpired exception covers it)."""

    plant: str
    environment: str
    rule: str
    severity: str
    failing: bool  # at or above the stage's threshold


@dataclass(frozen=True)
class ExceptionRow:
    rule: str
    where: str  # plant/environment/object the exception names ("*" for any)
    owner: str
    expires: dt.date


@dataclass(frozen=True)
class PolicyFacts:
    evaluated_at: dt.datetime
    findings: tuple[PolicyRow, ...]
    exceptions: tuple[ExceptionRow, ...]


@dataclass(frozen=True)
class PromotionRow:
    """The newest promotion of one plant into one stage (from the release ledger)."""

    plant: str
    environment: str
    release: str
    promoted_at: dt.datetime
    gates: tuple[tuple[str, bool], ...]
    break_glass: bool


DEP_LABELS = ["plant", "environment", "tier"]


def _backup_families(facts: Sequence[BackupFacts]) -> Iterator[Metric]:
    def family(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=DEP_LABELS)

    newest = family(
        "plantops_backup_newest_age_seconds", "Age of the newest complete backup (absent: none)."
    )
    verified = family(
        "plantops_backup_newest_verified_age_seconds",
        "Age of the newest backup whose restore verification passed (absent: none ever did).",
    )
    passed = family(
        "plantops_backup_last_verify_success", "1 when the last restore verification passed."
    )
    rpo = family("plantops_backup_verify_rpo_seconds", "RPO measured by the last verification.")
    rto = family("plantops_backup_verify_rto_seconds", "RTO measured by the last verification.")
    rpo_obj = family("plantops_backup_rpo_objective_seconds", "The tier's RPO.")
    rto_obj = family("plantops_backup_rto_objective_seconds", "The tier's RTO.")
    ver_obj = family(
        "plantops_restore_verification_objective_seconds",
        "Oldest the newest verified restore may be (backup interval + RTO, + 7 days for weekly).",
    )
    for f in facts:
        labels = [f.plant, f.environment, f.tier]
        rpo_obj.add_metric(labels, f.rpo_objective_s)
        rto_obj.add_metric(labels, f.rto_objective_s)
        ver_obj.add_metric(labels, f.verify_objective_s)
        for fam, value in (
            (newest, f.newest_age_s),
            (verified, f.newest_verified_age_s),
            (rpo, f.last_verify_rpo_s),
            (rto, f.last_verify_rto_s),
        ):
            if value is not None:
                fam.add_metric(labels, value)
        if f.last_verify_passed is not None:
            passed.add_metric(labels, 1 if f.last_verify_passed else 0)
    yield from (newest, verified, passed, rpo, rto, rpo_obj, rto_obj, ver_obj)


class PlantopsCollector(Collector):
    def __init__(
        self,
        releases: Sequence[ReleaseRow],
        probe_results: Path | None,
        sources: Sources | None = None,
    ) -> None:
        self.releases = tuple(releases)
        self.probe_results = probe_results
        self.sources = sources or Sources()

    def _probe_doc(self) -> dict[str, Any] | None:
        if self.probe_results is None:
            return None
        shown = self.probe_results.as_posix()
        try:
            # Bounded: a FIFO or a huge file in its place must not stall the scrape.
            text = read_text(self.probe_results, shown, limits=MANIFEST_LIMITS)
            doc = json_value(text, shown, limits=MANIFEST_LIMITS)
        except UserError:
            return None  # absent or half-written: plantops_probe_results_readable says so
        return doc if isinstance(doc, dict) else None

    def collect(self) -> Iterator[Metric]:
        release = GaugeMetricFamily(
            "plantops_release_info",
            "The release each plant runs per stage (1 per plant and stage).",
            labels=["plant", "environment", "tier", "namespace", "series", "image"],
        )
        for r in self.releases:
            release.add_metric([r.plant, r.environment, r.tier, r.namespace, r.series, r.image], 1)
        yield release
        yield from self._sources()
        if self.probe_results is None:
            return
        doc = self._probe_doc()
        readable = GaugeMetricFamily(
            "plantops_probe_results_readable", "1 when the probe results file could be read."
        )
        readable.add_metric([], 1 if doc is not None else 0)
        yield readable
        if doc is None:
            return
        success = GaugeMetricFamily(
            "plantops_probe_success",
            "1 when the synthetic check passed, 0 when it failed (skips are absent).",
            labels=[*TARGET_LABELS, "check"],
        )
        latency = GaugeMetricFamily(
            "plantops_probe_duration_seconds",
            "Wall time of the check, retries included.",
            labels=[*TARGET_LABELS, "check"],
        )
        cert = GaugeMetricFamily(
            "plantops_probe_tls_cert_days_left",
            "Days until the target's TLS certificate expires.",
            labels=list(TARGET_LABELS),
        )
        for t in doc.get("targets", []):
            base = [str(t.get(k) or "") for k in ("name", "plant", "environment", "tier")]
            for c in t.get("checks", []):
                if c.get("status") == "skip":
                    continue
                labels = [*base, str(c.get("check"))]
                success.add_metric(labels, 1 if c.get("status") == "pass" else 0)
                latency.add_metric(labels, float(c.get("latency_ms", 0)) / 1000)
                days = (c.get("data") or {}).get("days_left")
                if c.get("check") == "tls" and isinstance(days, int | float):
                    cert.add_metric(base, float(days))
        yield success
        yield latency
        yield cert

    def _sources(self) -> Iterator[Metric]:
        src = self.sources
        now = src.clock()
        up = GaugeMetricFamily(
            "plantops_source_up",
            "1 when the source could be read at this scrape.",
            labels=["source"],
        )
        if src.backups is not None:
            try:
                records = src.backups()
            except PlantopsError:
                up.add_metric(["backup_catalog"], 0)
            else:
                up.add_metric(["backup_catalog"], 1)
                yield from _backup_families(backup_facts(src.deployments, records, now))
        if src.plants:
            yield from _event_families(src.plants, now)
        if src.policy is not None:
            try:
                facts = src.policy()
            except PlantopsError:
                up.add_metric(["policy"], 0)
            else:
                up.add_metric(["policy"], 1)
                yield from self._policy_families(facts)
        if src.promotions is not None:
            try:
                promotions = src.promotions()
            except PlantopsError:
                up.add_metric(["release_ledger"], 0)
            else:
                up.add_metric(["release_ledger"], 1)
                yield from _promotion_families(promotions)
        yield up

    def _policy_families(self, facts: PolicyFacts) -> Iterator[Metric]:
        findings = GaugeMetricFamily(
            "plantops_policy_findings",
            "Policy findings in force (no unexpired exception) per deployment, rule, severity.",
            labels=["plant", "environment", "rule", "severity"],
        )
        failing = GaugeMetricFamily(
            "plantops_policy_failing",
            "Findings at or above the stage's threshold: what plan and check refuse "
            "(0 for every planned deployment without one).",
            labels=DEP_LABELS,
        )
        expiry = GaugeMetricFamily(
            "plantops_policy_exception_expiry_timestamp_seconds",
            "Unix time (UTC midnight after its last valid day) an exception stops applying.",
            labels=["rule", "where", "owner"],
        )
        evaluated = GaugeMetricFamily(
            "plantops_policy_evaluated_timestamp_seconds", "Unix time of the newest evaluation."
        )
        counts: dict[tuple[str, str, str, str], int] = {}
        fails: dict[tuple[str, str], int] = {}
        for f in facts.findings:
            key = (f.plant, f.environment, f.rule, f.severity)
            counts[key] = counts.get(key, 0) + 1
            if f.failing:
                fails[(f.plant, f.environment)] = fails.get((f.plant, f.environment), 0) + 1
        for key, n in sorted(counts.items()):
            findings.add_metric(list(key), n)
        tiers = {(r.plant, r.environment): r.tier for r in self.releases}
        for (plant, env), tier in sorted(tiers.items()):
            failing.add_metric([plant, env, tier], fails.pop((plant, env), 0))
        for (plant, env), n in sorted(fails.items()):  # findings on objects of no deployment
            failing.add_metric([plant, env, ""], n)
        for e in facts.exceptions:
            end = dt.datetime.combine(e.expires + dt.timedelta(days=1), dt.time(), dt.UTC)
            expiry.add_metric([e.rule, e.where, e.owner], end.timestamp())
        evaluated.add_metric([], facts.evaluated_at.timestamp())
        yield from (findings, failing, expiry, evaluated)


def _promotion_families(rows: Sequence[PromotionRow]) -> Iterator[Metric]:
    labels = ["plant", "environment", "release"]
    promoted = GaugeMetricFamily(
        "plantops_release_promoted_timestamp_seconds",
        "Unix time of the newest promotion of the plant into the stage, by release.",
        labels=labels,
    )
    gate = GaugeMetricFamily(
        "plantops_release_gate_passed",
        "1 when the gate passed in that promotion, 0 when it was overridden (break-glass).",
        labels=[*labels, "gate"],
    )
    glass = GaugeMetricFamily(
        "plantops_release_break_glass",
        "1 when the newest promotion of the plant into the stage was a break-glass.",
        labels=labels,
    )
    for r in rows:
        values = [r.plant, r.environment, r.release]
        promoted.add_metric(values, r.promoted_at.timestamp())
        glass.add_metric(values, 1 if r.break_glass else 0)
        for name, ok in r.gates:
            gate.add_metric([*values, name], 1 if ok else 0)
    yield from (promoted, gate, glass)


def _event_families(plants: Sequence[Plant], now: dt.datetime) -> Iterator[Metric]:
    labels = ["plant", "event", "kind"]
    active = GaugeMetricFamily(
        "plantops_plant_event_active",
        "1 while the plant's shift or calendar window (MRP run, month-end close, shutdown) runs.",
        labels=labels,
    )
    last = GaugeMetricFamily(
        "plantops_plant_event_last_start_timestamp_seconds",
        "Unix time the event last started.",
        labels=labels,
    )
    nxt = GaugeMetricFamily(
        "plantops_plant_event_next_start_timestamp_seconds",
        "Unix time the event starts next.",
        labels=labels,
    )
    for e in plant_events(plants, now):
        values = [e.plant, e.event, e.kind]
        active.add_metric(values, 1 if e.active else 0)
        if e.last_start is not None:
            last.add_metric(values, e.last_start.timestamp())
        if e.next_start is not None:
            nxt.add_metric(values, e.next_start.timestamp())
    yield from (active, last, nxt)


def registry_for(
    releases: Sequence[ReleaseRow], probe_results: Path | None, sources: Sources | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlantopsCollector(releases, probe_results, sources))
    return registry


def serve(
    registry: CollectorRegistry, *, host: str, port: int
) -> tuple[WSGIServer, threading.Thread]:
    """Start the HTTP endpoint in a daemon thread; the caller decides how long to live."""
    return start_http_server(port, addr=host, registry=registry)


__all__ = [
    "ExceptionRow",
    "PlantopsCollector",
    "PolicyFacts",
    "PolicyRow",
    "PromotionRow",
    "ReleaseRow",
    "Sources",
    "registry_for",
    "release_rows",
    "serve",
]

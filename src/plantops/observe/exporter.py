"""``plantops metrics serve``: the control plane's own facts as Prometheus metrics
(prometheus-client), read at each scrape so they are never staler than their source.

* probe results: the newest ``plantops probe run --out FILE`` document (run it from a
  timer); a skipped check is not exported, a failed one is 0;
* release per plant and stage: the deployed image and Odoo series from the plan.

Backup age and verification, policy findings and gate states are not exported yet
(docs/observability.md says where each will come from).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from plantops.errors import UserError
from plantops.inputs import MANIFEST_LIMITS, json_value, read_text

if TYPE_CHECKING:
    from plantops.plan import Deployment

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


class PlantopsCollector(Collector):
    def __init__(self, releases: Sequence[ReleaseRow], probe_results: Path | None) -> None:
        self.releases = tuple(releases)
        self.probe_results = probe_results

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


def registry_for(releases: Sequence[ReleaseRow], probe_results: Path | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlantopsCollector(releases, probe_results))
    return registry


def serve(
    registry: CollectorRegistry, *, host: str, port: int
) -> tuple[WSGIServer, threading.Thread]:
    """Start the HTTP endpoint in a daemon thread; the caller decides how long to live."""
    return start_http_server(port, addr=host, registry=registry)


__all__ = ["PlantopsCollector", "ReleaseRow", "registry_for", "release_rows", "serve"]

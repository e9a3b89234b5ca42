"""Use cases behind ``plantops probe run``, ``observe render``, ``metrics serve`` and
``slo report``.

Opens what the observability core reads — the planned fleet, the backup catalog, a
Prometheus query API, probe result files — and hands it to ``plantops.observe`` as
data or callables. Nothing here prints or exits.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantops.errors import InfrastructureError, PlantopsError, UserError
from plantops.observe.exporter import (
    ExceptionRow,
    PolicyFacts,
    PolicyRow,
    PromotionRow,
    Sources,
    registry_for,
    release_rows,
)
from plantops.observe.slo import RANGES, record_name
from plantops.observe.sloreport import (
    Measurement,
    SloReport,
    build_report,
    parse_window,
    probe_events,
    probe_measurements,
    window_text,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from plantops.observe import ProbeRun, ProbeSettings
    from plantops.observe.render import ObserveRender
    from plantops.plan import Deployment
    from plantops.store import BackupRecord

PROBE_FILE_LIMIT = 64 * 1024 * 1024


def planned(fleet: Path, today: dt.date) -> tuple[Deployment, ...]:
    from plantops.plan import build_plan
    from plantops.services import open_fleet

    return build_plan(open_fleet(fleet, today=today).fleet).deployments


def probe_password(env: str | None, file: Path | None) -> str:
    """The probe user's password from a secret reference, never from the command line."""
    import os

    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise UserError(f"--probe-password-env {env}: the variable is not set")
        return value
    if file is not None:
        from plantops.inputs import Limits, read_text

        # A regular file of at most 4 KiB: a FIFO there must not block the probe.
        return read_text(
            file, f"--probe-password-file {file}", limits=Limits(max_bytes=4096)
        ).rstrip("\n")
    raise UserError("--probe-login needs --probe-password-env VAR or --probe-password-file FILE")


def probe_run(
    *,
    fleet: Path | None,
    url: str | None,
    today: dt.date,
    settings: ProbeSettings,
    plants: Sequence[str] = (),
    environments: Sequence[str] = (),
    db: str | None = None,
    expect_version: str | None = None,
    login: str | None = None,
    password_env: str | None = None,
    password_file: Path | None = None,
    model: str = "stock.picking",
) -> ProbeRun:
    """Probe one URL or the fleet's planned hosts (``plants``/``environments`` narrow it)
    with ``settings``; a login also runs the business check as that user."""
    from plantops.observe import CHECKS, ProbeCredentials, ProbeTarget, fleet_targets, run_probes

    if (fleet is None) == (url is None):
        raise UserError("give either --fleet FLEET or --url URL")
    unknown = sorted(set(settings.checks) - set(CHECKS))
    if unknown:
        raise UserError(f"--check {unknown}: known checks are {', '.join(CHECKS)}")
    creds = None
    if login is not None:
        creds = ProbeCredentials(login, probe_password(password_env, password_file), model)
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise UserError(f"--url {url}: expected http(s)://host[:port]")
        targets = [ProbeTarget(url, url, db, expect_version, credentials=creds)]
    else:
        assert fleet is not None
        from plantops.plan import build_plan
        from plantops.services import open_fleet

        res = open_fleet(fleet, today=today)
        res.fleet.check_selection(plants)
        deps = build_plan(res.fleet).deployments
        targets = fleet_targets(deps, plants=plants, environments=environments, credentials=creds)
        if not targets:
            raise UserError("no deployment matches --plant/--env")
    return run_probes(targets, settings)


def observe_render(
    fleet: Path, out_dir: Path, *, alerting: Path | None, today: dt.date
) -> ObserveRender:
    """Write the fleet's blackbox modules, SLO rules, Probes, Alertmanager and log
    pipeline configuration into ``out_dir``."""
    from plantops.observe.alerting import load_alerting
    from plantops.observe.render import observe_files, write_observe_files
    from plantops.plan import build_plan
    from plantops.render import RenderContext
    from plantops.services import open_fleet

    res = open_fleet(fleet, today=today)
    deps = build_plan(res.fleet).deployments
    settings = load_alerting(alerting or fleet / "alerting.yaml")
    ctx = RenderContext.from_fleet(res.fleet.spec)
    files = observe_files(res.fleet, deps, ctx, settings, today=today)
    return write_observe_files(files, out_dir)


def policy_facts(
    fleet: Path, *, today: dt.date, now: dt.datetime, deployments: Sequence[Deployment] = ()
) -> PolicyFacts:
    """The fleet's policy findings in force and its exceptions in force, as ``plantops
    check`` evaluates them (the baseline, ``policies/*.yaml``, thresholds per stage). A
    finding on a shared deployment counts for each of its tenant plants (``deployments``
    names them; the policy engine knows only the deployment's unit)."""
    from plantops.check.policy import load_policy_config
    from plantops.services import check_target

    result = check_target(fleet, today=today)
    failing = set(result.failing)
    tenants = {(d.unit, d.environment.name): [t.plant for t in d.tenants] for d in deployments}
    rows = tuple(
        PolicyRow(plant, f.environment, f.rule, f.severity.label, f in failing)
        for f in result.findings
        for plant in tenants.get((f.plant, f.environment)) or [f.plant]
    )
    exceptions = tuple(
        ExceptionRow(
            e.rule,
            f"{e.plant or '*'}/{e.environment or '*'}/{e.object or '*'}",
            e.owner,
            e.expires,
        )
        for e in load_policy_config(fleet).exceptions
        if e.expires >= today
    )
    return PolicyFacts(now, rows, exceptions)


class Periodic:
    """A value computed now and again every ``interval`` seconds in a daemon thread, so a
    scrape reads the newest one and never waits for (or fails on) a slow evaluation. A
    failed refresh keeps the last value and makes :meth:`__call__` raise until one
    succeeds (the exporter's ``plantops_source_up`` goes to 0)."""

    def __init__(self, compute: Callable[[], PolicyFacts], interval: float) -> None:
        self._compute = compute
        self._value = compute()  # a bad policy file stops the exporter at start-up (exit 2)
        self._error: PlantopsError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="policy-refresh", daemon=True)
        self._interval = interval
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                value = self._compute()
            except PlantopsError as exc:
                self._error = exc
            else:
                self._value, self._error = value, None

    def __call__(self) -> PolicyFacts:
        if self._error is not None:
            raise self._error
        return self._value

    def stop(self) -> None:
        self._stop.set()


def promotion_rows(entries: Sequence[Any]) -> tuple[PromotionRow, ...]:
    """The newest promotion entry per plant and stage (ledger order is recording order)."""
    newest: dict[tuple[str, str], PromotionRow] = {}
    for e in entries:
        if e.kind != "promotion":
            continue
        gates = e.payload.get("gates", {})
        for plant in e.payload.get("plants", []):
            newest[(str(plant), e.stage)] = PromotionRow(
                str(plant),
                e.stage,
                e.release_id,
                dt.datetime.fromisoformat(e.recorded_at),
                tuple((str(g.get("gate")), bool(g.get("ok"))) for g in gates.get(plant, [])),
                bool(e.payload.get("break_glass")),
            )
    return tuple(newest[k] for k in sorted(newest))


def exporter_registry(
    fleet: Path,
    *,
    probe_results: Path | None,
    state_db: str | None,
    today: dt.date,
    policy_refresh_s: float = 900.0,
) -> CollectorRegistry:
    """The exporter's registry: plan, probe results, the backup catalog and the release
    ledger (when ``state_db`` is given), the plant calendars and the policy findings, each
    read at scrape time (the policy evaluation is refreshed every ``policy_refresh_s``)."""
    deps = planned(fleet, today)
    plants = list({p.code: p for d in deps for p in d.plants}.values())
    backups = None
    promotions = None
    if state_db is not None:
        from plantops.store import open_catalog
        from plantops.store.ledger import open_ledger

        catalog = open_catalog(state_db)  # opened (and migrated) once; read per scrape
        ledger = open_ledger(state_db)

        def read() -> Sequence[BackupRecord]:
            return catalog.list_backups(statuses=["complete"])

        def read_promotions() -> Sequence[PromotionRow]:
            from sqlalchemy.exc import SQLAlchemyError

            try:
                return promotion_rows(ledger.entries(kinds=("promotion",)))
            except SQLAlchemyError as exc:
                raise InfrastructureError(f"release ledger: {exc.__class__.__name__}") from exc

        backups, promotions = read, read_promotions

    started = dt.datetime.now(dt.UTC).date()

    def evaluate() -> PolicyFacts:
        # The day moves on while the exporter runs: exceptions expire at their date.
        now = dt.datetime.now(dt.UTC)
        return policy_facts(fleet, today=today + (now.date() - started), now=now, deployments=deps)

    policy = Periodic(evaluate, policy_refresh_s) if policy_refresh_s > 0 else None
    return registry_for(
        release_rows(deps),
        probe_results,
        Sources(
            deployments=deps,
            backups=backups,
            plants=plants,
            policy=policy,
            promotions=promotions,
        ),
    )


def _query(client: Any, base: str, promql: str, at: dt.datetime) -> list[dict[str, Any]]:
    """One instant query (Prometheus HTTP API ``GET /api/v1/query``)."""
    import httpx

    try:
        resp = client.get(
            f"{base}/api/v1/query", params={"query": promql, "time": f"{at.timestamp():.3f}"}
        )
    except httpx.HTTPError as exc:
        raise InfrastructureError(f"--prometheus {base}: {exc.__class__.__name__}: {exc}") from exc
    try:
        body = resp.json()
    except ValueError as exc:
        raise InfrastructureError(
            f"--prometheus {base}: HTTP {resp.status_code}, not a Prometheus API answer"
        ) from exc
    if resp.status_code != 200 or body.get("status") != "success":
        raise InfrastructureError(
            f"--prometheus {base}: {body.get('errorType', resp.status_code)}: {body.get('error', '')}"
        )
    result = body.get("data", {}).get("result", [])
    return result if isinstance(result, list) else []


def _value(sample: dict[str, Any]) -> float | None:
    try:
        v = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def prometheus_measurements(
    url: str, window: dt.timedelta, at: dt.datetime, *, timeout: float = 10.0
) -> list[Measurement]:
    """The SLI recordings of ``observe render`` read back from a Prometheus query API."""
    import httpx

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UserError(f"--prometheus {url}: expected http(s)://host:port of a Prometheus")
    per: dict[tuple[str, str, str], dict[str, float]] = {}
    total: dict[tuple[str, str, str], float] = {}

    def key(sample: dict[str, Any]) -> tuple[str, str, str]:
        m = sample.get("metric", {})
        return (
            str(m.get("namespace", "")),
            str(m.get("slo", "")),
            str(m.get("plantops_plant", "")),
        )

    with httpx.Client(timeout=timeout) as client:
        for w in RANGES:
            for sample in _query(client, base, record_name(w), at):
                if (v := _value(sample)) is not None:
                    per.setdefault(key(sample), {})[w] = v
        promql = f"avg_over_time({record_name('5m')}[{window_text(window)}])"
        for sample in _query(client, base, promql, at):
            if (v := _value(sample)) is not None:
                total[key(sample)] = v
    return [
        Measurement(ns, slo, plant, total.get((ns, slo, plant)), per.get((ns, slo, plant), {}))
        for ns, slo, plant in sorted(set(per) | set(total))
    ]


def slo_report(
    fleet: Path,
    *,
    prometheus: str | None,
    probe_results: Sequence[Path],
    window: str,
    at: dt.datetime | None,
    slos: Sequence[str] = (),
    plants: Sequence[str] = (),
    environments: Sequence[str] = (),
) -> SloReport:
    """``plantops slo report``: the error budget of every SLO from one source."""
    from plantops.inputs import Limits, json_value, read_text
    from plantops.observe.sloreport import objectives

    if (prometheus is None) == (not probe_results):
        raise UserError("give either --prometheus URL or --probe-results FILE (one or more)")
    span = parse_window(window)
    when = at or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    deps = planned(fleet, when.date())
    known_plants = {t.plant for d in deps for t in d.tenants}
    for p in plants:
        if p not in known_plants:
            raise UserError(
                f"--plant {p}: not a plant of {fleet} ({', '.join(sorted(known_plants))})"
            )
    known_slos = set(objectives(deps[0])) if deps else set()
    for s in slos:
        if s not in known_slos:
            raise UserError(f"--slo {s}: known SLOs are {', '.join(sorted(known_slos))}")
    chosen = [
        d
        for d in deps
        if (not plants or any(t.plant in plants for t in d.tenants))
        and (not environments or d.environment.name in environments)
    ]
    if prometheus is not None:
        measurements = prometheus_measurements(prometheus, span, when)
        source = prometheus
    else:
        limits = Limits(max_bytes=PROBE_FILE_LIMIT)
        docs = []
        for path in probe_results:
            shown = path.as_posix()
            docs.append(
                (shown, json_value(read_text(path, shown, limits=limits), shown, limits=limits))
            )
        measurements = probe_measurements(probe_events(docs, deps), window=span, at=when)
        source = f"{len(probe_results)} probe result file(s)"
        slos = slos or ("probe", "latency")  # what probe runs can measure
    return build_report(chosen, measurements, source=source, window=span, at=when, only_slos=slos)


def record_probe_run(run: ProbeRun, db_url: str) -> int:
    """``probe run --state-db``: one ``probe.checked`` event per probed plant and
    environment (plant, subject = the environment, data: ``ok``, the failed checks, the
    target's name), at the run's start time; and a ``probe.changed`` event where the
    state differs from the newest recorded one (pass → fail, fail → pass), or where a
    first recorded run fails. Targets without a plant (``--url``) are not recorded.
    Returns how many ``probe.checked`` events were written."""
    from plantops.store.events import PROBE_CHANGED, PROBE_CHECKED
    from plantops.store.server import open_server_store

    store = open_server_store(db_url)
    written = 0
    try:
        recorded = [t for t in run.targets if t.target.plant and t.target.environment]
        before = store.latest_events(
            PROBE_CHECKED, plants=sorted({str(t.target.plant) for t in recorded})
        )
        for t in recorded:
            plant, env = str(t.target.plant), str(t.target.environment)
            data = {
                "ok": t.ok,
                "failed": [c.check for c in t.checks if c.status == "fail"],
                "target": t.target.name,
            }
            store.append_event(
                PROBE_CHECKED,
                plant=plant,
                subject=env,
                actor="plantops probe run",
                data=data,
                now=run.started_at,
            )
            written += 1
            previous = before.get((plant, env))
            was = None if previous is None else bool(previous.data.get("ok"))
            if (was is None and not t.ok) or (was is not None and was != t.ok):
                store.append_event(
                    PROBE_CHANGED,
                    plant=plant,
                    subject=env,
                    actor="plantops probe run",
                    data={**data, "was": was},
                    now=run.started_at,
                )
    finally:
        store.close()
    return written


__all__ = [
    "exporter_registry",
    "planned",
    "prometheus_measurements",
    "record_probe_run",
    "slo_report",
]

"""Observability commands: ``probe run``, ``observe render``, ``metrics serve``.

Exit codes of ``probe run``: 0 every check passed or was skipped · 1 a check failed ·
2 bad input (no target, unknown plant, unreadable password reference).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from plantops.errors import EXIT_FINDINGS
from plantops.observe import (
    CHECKS,
    ProbeRun,
    ProbeSettings,
)
from plantops.observe.exporter import serve
from plantops.outputs import write_text_atomically
from plantops.services import observe as observe_services

probe_app = typer.Typer(help="Synthetic checks of Odoo deployments through their ingress.")
observe_app = typer.Typer(help="Prometheus, Alertmanager and blackbox_exporter configuration.")
metrics_app = typer.Typer(help="The control plane's own metrics.")
slo_app = typer.Typer(help="Service level objectives: error budgets and burn rates.")


class Format(StrEnum):
    text = "text"
    json = "json"


def _today(value: dt.datetime | None) -> dt.date:
    return value.date() if value is not None else dt.datetime.now(dt.UTC).date()


TodayOpt = Annotated[
    dt.datetime | None,
    typer.Option("--today", formats=["%Y-%m-%d"], help="Plan as of this date.", hidden=True),
]


def _text(run: ProbeRun) -> str:
    from plantops.cli.console import out

    table = Table("target", "check", "status", "ms", "detail", box=None)
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    for t in run.targets:
        for c in t.checks:
            table.add_row(
                escape(t.target.name),
                c.check,
                f"[{colour[c.status]}]{c.status}[/]",
                f"{c.latency_ms:.0f}",
                escape(c.detail),
            )
    out.print(table)
    n = run.counts()
    return (
        f"{n['targets']} target(s), {n['checks']} check(s): {n['passed']} passed, "
        f"{n['failed']} failed, {n['skipped']} skipped"
    )


@probe_app.command("run")
def probe_run(
    fleet: Annotated[Path | None, typer.Option("--fleet", help="Probe every plant host.")] = None,
    plant: Annotated[list[str] | None, typer.Option("--plant", help="Only this plant.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="Only this stage.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Probe one Odoo at this URL.")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database (with --url).")] = None,
    expect_version: Annotated[
        str | None, typer.Option("--expect-version", help="Odoo series, e.g. 17.0 (with --url).")
    ] = None,
    probe_login: Annotated[
        str | None, typer.Option("--probe-login", help="Login of the probe user (business check).")
    ] = None,
    probe_password_env: Annotated[
        str | None,
        typer.Option(
            "--probe-password-env", help="Environment variable holding the probe user's password."
        ),
    ] = None,
    probe_password_file: Annotated[
        Path | None,
        typer.Option("--probe-password-file", help="File holding the probe user's password."),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="Model counted.")] = "stock.picking",
    check: Annotated[list[str] | None, typer.Option("--check", help="Only these checks.")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request.")] = 5.0,
    retries: Annotated[
        int, typer.Option(min=0, max=10, help="Retries on transport errors and 5xx.")
    ] = 2,
    backoff: Annotated[
        float, typer.Option(min=0, help="First retry delay in seconds (doubles each retry).")
    ] = 0.5,
    concurrency: Annotated[
        int, typer.Option(min=1, max=1000, help="Checks in flight at once.")
    ] = 20,
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA bundle to verify TLS against.")
    ] = None,
    cert_min_days: Annotated[
        int, typer.Option(min=0, help="Fail the TLS check below this many days.")
    ] = 14,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output: text or json.")
    ] = Format.text,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON here.")
    ] = None,
    state_db: Annotated[
        str | None,
        typer.Option(
            "--state-db",
            help="Also record the result per plant and environment as probe.checked events"
            " in this state database (what the server's fleet page shows).",
        ),
    ] = None,
    today: TodayOpt = None,
) -> None:
    """Run the synthetic checks; exit 1 when any check fails."""
    from plantops.cli.console import out, run_guarded

    settings = ProbeSettings(
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        concurrency=concurrency,
        cert_min_days=cert_min_days,
        ca_file=str(ca_file) if ca_file else None,
        checks=tuple(check) if check else CHECKS,
    )
    run = run_guarded(
        observe_services.probe_run,
        fleet=fleet,
        url=url,
        today=_today(today),
        settings=settings,
        plants=plant or (),
        environments=env or (),
        db=db,
        expect_version=expect_version,
        login=probe_login,
        password_env=probe_password_env,
        password_file=probe_password_file,
        model=model,
    )
    doc = json.dumps(run.as_dict(), indent=2) + "\n"
    if out_file is not None:
        run_guarded(write_text_atomically, out_file, doc)
    if state_db is not None:
        run_guarded(observe_services.record_probe_run, run, state_db)
    if fmt is Format.json:
        print(doc, end="")
    else:
        out.print(_text(run))
    if not run.ok:
        raise typer.Exit(EXIT_FINDINGS)


@observe_app.command("render")
def observe_render(
    fleet: Annotated[Path, typer.Argument(help="Fleet repository (directory with fleet.yaml).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")],
    alerting: Annotated[
        Path | None, typer.Option("--alerting", help="Receivers (default FLEET/alerting.yaml).")
    ] = None,
    today: TodayOpt = None,
) -> None:
    """Write blackbox modules, SLO rules, Probes and the Alertmanager configuration."""
    from plantops.cli.console import out, run_guarded

    result = run_guarded(
        observe_services.observe_render, fleet, out_dir, alerting=alerting, today=_today(today)
    )
    out.print(
        f"{len(result.written)} file(s) written, {len(result.unchanged)} unchanged in {out_dir}"
    )


@metrics_app.command("serve")
def metrics_serve(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository.")],
    probe_results: Annotated[
        Path | None, typer.Option("--probe-results", help="A `probe run --out` file.")
    ] = None,
    state_db: Annotated[
        str | None,
        typer.Option(
            "--state-db",
            help="Backup catalog URL to export backup ages and verifications from"
            " (e.g. sqlite:///.plantops/state.db).",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 9464,
    policy_refresh: Annotated[
        float,
        typer.Option(
            "--policy-refresh",
            min=0,
            help="Seconds between policy evaluations (findings, exceptions); 0: none.",
        ),
    ] = 900.0,
    today: TodayOpt = None,
) -> None:
    """Serve /metrics until interrupted."""
    from plantops.cli.console import err, run_guarded

    registry = run_guarded(
        observe_services.exporter_registry,
        fleet,
        probe_results=probe_results,
        state_db=state_db,
        today=_today(today),
        policy_refresh_s=policy_refresh,
    )
    server, _thread = run_guarded(serve, registry, host=host, port=port)
    err.print(f"serving http://{host}:{server.server_port}/metrics")
    try:
        while True:
            time.sleep(3600)
    finally:
        server.shutdown()
        server.server_close()


@slo_app.command("report")
def slo_report(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository.")],
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", help="Prometheus query API URL (reads the SLI recordings)."),
    ] = None,
    probe_results: Annotated[
        list[Path] | None,
        typer.Option("--probe-results", help="`probe run --out` files (offline; repeatable)."),
    ] = None,
    window: Annotated[
        str, typer.Option("--window", help="Report window, a duration such as 30d or 4w.")
    ] = "30d",
    slo: Annotated[list[str] | None, typer.Option("--slo", help="Only this SLO.")] = None,
    plant: Annotated[list[str] | None, typer.Option("--plant", help="Only this plant.")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="Only this stage.")] = None,
    at: Annotated[
        dt.datetime | None,
        typer.Option(
            "--at", help="End of the window, UTC (default now).", formats=["%Y-%m-%dT%H:%M:%S"]
        ),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="Output: text or json.")
    ] = Format.text,
) -> None:
    """Error budget per deployment and SLO; exit 1 when a budget is spent or burning at page rate."""
    from plantops.cli.console import out, run_guarded
    from plantops.observe.sloreport import render_text

    report = run_guarded(
        observe_services.slo_report,
        fleet,
        prometheus=prometheus,
        probe_results=probe_results or [],
        window=window,
        at=at.replace(tzinfo=dt.UTC) if at is not None else None,
        slos=slo or (),
        plants=plant or (),
        environments=env or (),
    )
    if fmt is Format.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        table = Table(
            "deployment", "slo", "objective", "sli", "budget left", "burn rate", "status", box=None
        )
        colour = {"exhausted": "red", "page": "red", "ticket": "yellow", "ok": "green"}
        for row in render_text(report):
            status = row[-1]
            table.add_row(*map(escape, row[:-1]), f"[{colour.get(status, 'dim')}]{status}[/]")
        out.print(table)
        counts = report.as_dict()["summary"]
        out.print(
            f"{len(report.rows)} SLO(s) over {report.window} from {escape(report.source)}: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        )
    if not report.ok:
        raise typer.Exit(EXIT_FINDINGS)


def register(app: typer.Typer) -> None:
    app.add_typer(probe_app, name="probe")
    app.add_typer(observe_app, name="observe")
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(slo_app, name="slo")

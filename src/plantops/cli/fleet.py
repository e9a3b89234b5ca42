"""Fleet commands: validate, schema, init, classify, plan, cost."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from plantops import services
from plantops.errors import EXIT_OK, Problem
from plantops.outputs import write_text_atomically
from plantops.services import formats
from plantops.sizing.cost import FleetCost


class Format(StrEnum):
    text = "text"
    json = "json"


FleetArg = Annotated[Path, typer.Argument(help="Fleet repository (directory with fleet.yaml).")]
TodayOpt = Annotated[
    dt.datetime | None,
    typer.Option(
        "--today",
        formats=["%Y-%m-%d"],
        metavar="YYYY-MM-DD",
        help="Evaluate expiries as of this date.",
        hidden=True,
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
AllowExpiredOpt = Annotated[
    bool,
    typer.Option(
        "--allow-expired-overrides", help="Report expired overrides as warnings, not errors."
    ),
]


def _today(value: dt.datetime | None) -> dt.date:
    return value.date() if value is not None else dt.datetime.now(dt.UTC).date()


def _print_warnings(warnings: tuple[Problem, ...]) -> None:
    from plantops.cli.console import err

    # one print of the joined lines: the same bytes as a print per line (the console
    # soft-wraps, and styles close at each line's end), at a fraction of Rich's cost for a
    # large fleet's hundreds of warnings
    lines = [f"[yellow]{escape(w.render())}[/]" for w in warnings if w.severity == "warning"]
    if lines:
        err.print("\n".join(lines), markup=True, emoji=False)


def validate(
    fleet: FleetArg, today: TodayOpt = None, allow_expired: AllowExpiredOpt = False
) -> None:
    """Validate a fleet repository; every error is listed with file and line."""
    from plantops.cli.console import out, run_guarded

    res = run_guarded(services.open_fleet, fleet, today=_today(today), allow_expired=allow_expired)
    _print_warnings(res.warnings)
    f = res.fleet
    envs = sum(len(p.environments) for p in f.plants)
    out.print(
        f"{fleet}: valid — {len(f.plants)} plants, {len(f.spec.clusters)} clusters, "
        f"{len(f.environments)} stages, {envs} plant environments"
    )


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to this file.")
    ] = None,
) -> None:
    """Print the JSON Schema of the fleet spec (for editors' YAML language servers)."""
    from plantops.cli.console import out, run_guarded

    text = services.spec_schema_text()
    if output is None:
        out.out(text, end="")
    else:
        run_guarded(write_text_atomically, output, text)
        out.print(f"wrote {output}")


def init(
    directory: Annotated[Path, typer.Argument(help="Directory for the new fleet repository.")],
    force: Annotated[
        bool,
        typer.Option(
            help="Write into a non-empty directory: add the files that are missing; "
            "existing files are never overwritten."
        ),
    ] = False,
) -> None:
    """Scaffold a new fleet repository: fleet.yaml, one plant, and the editor schema."""
    from plantops.cli.console import out, run_guarded

    written, kept = run_guarded(services.init_fleet, directory, force=force)
    if written:
        out.print(f"initialised fleet in {directory}: {', '.join(written)}")
    if kept:
        out.print(f"kept existing (not overwritten): {', '.join(kept)}")
    out.print(f"next: edit plants/, then `plantops validate {directory}`")


def classify(
    fleet: FleetArg,
    fmt: FormatOpt = Format.text,
    plant: Annotated[
        list[str] | None,
        typer.Option("--plant", metavar="CODE", help="Only this plant (repeatable)."),
    ] = None,
    today: TodayOpt = None,
) -> None:
    """Show each plant's tier and deployment pattern with the rules that decided them."""
    from plantops.cli.console import out, run_guarded

    result = run_guarded(services.classify, fleet, today=_today(today), only=plant or ())
    if fmt is Format.json:
        out.out(json.dumps([c.as_dict() for c in result], indent=2, sort_keys=True))
        return
    table = Table(title="Classification", show_lines=True)
    for col in ("plant", "tier", "pattern", "reasons"):
        table.add_column(col)
    for c in result:
        reasons = "\n".join(
            escape(r.short())
            + (f" [dim]({', '.join(str(x) for x in r.locations)})[/]" if r.locations else "")
            for r in c.reasons
        )
        table.add_row(c.plant, c.tier, c.pattern, reasons)
    out.print(table)


def plan(
    fleet: FleetArg,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Directory of the rendered tree.")
    ],
    plant: Annotated[
        list[str] | None,
        typer.Option("--plant", metavar="CODE", help="Only this plant (repeatable)."),
    ] = None,
    fmt: FormatOpt = Format.text,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compute but write nothing.")] = False,
    allow_expired: AllowExpiredOpt = False,
    today: TodayOpt = None,
) -> None:
    """Load, validate, classify, size and render the fleet into a deterministic tree."""
    from plantops.cli.console import out, run_guarded

    try:
        res = run_guarded(
            services.plan_fleet,
            fleet,
            out_dir,
            today=_today(today),
            plants=plant or (),
            allow_expired=allow_expired,
            dry_run=dry_run,
        )
    except typer.Exit as stop:
        # a failed gate's findings are data: JSON readers get them whole on stdout
        gate = stop.__cause__
        if fmt is Format.json and isinstance(gate, services.RenderGateFailed):
            out.out(json.dumps(gate.to_dict(), indent=2, sort_keys=True))
        raise
    _print_warnings(res.warnings)
    only = plant or ()
    if fmt is Format.json:
        out.out(formats.format_plan_json(res, only))
        raise typer.Exit(EXIT_OK)
    summary = formats.plan_summary(res, only)
    table = Table(title=f"Plan: {fleet}")
    for col in formats.PLAN_COLUMNS:
        table.add_column(col, justify="right" if col == "monthly" else "left")
    for row in summary.rows:
        table.add_row(*row)
    out.print(table)
    for note in summary.notes:
        out.print(note, markup=False)


class CostBy(StrEnum):
    plant = "plant"
    env = "env"
    service = "service"


class CostFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


def _cost_rows(cost: FleetCost, by: CostBy) -> list[dict[str, object]]:
    """One row per plant, environment or service, split into plant-specific and platform."""
    attr = "environment" if by is CostBy.env else by.value
    rows: dict[str, dict[str, float]] = {}
    for line in cost.lines:
        row = rows.setdefault(str(getattr(line, attr)), {"plant": 0.0, "platform": 0.0})
        row[line.kind] += line.month
    return [
        {
            by.value: key,
            "plant_month": round(v["plant"], 2),
            "platform_month": round(v["platform"], 2),
            "total_month": round(v["plant"] + v["platform"], 2),
        }
        for key, v in sorted(rows.items())
    ]


def _cost_document(cost: FleetCost, by: CostBy) -> dict[str, object]:
    return {
        "by": by.value,
        "currency": cost.currency,
        "rows": _cost_rows(cost, by),
        "platform_month": round(cost.platform_month, 2),
        "total_month": round(cost.total_month, 2),
        "node_pools": [
            {
                "pools": n.key,
                "plant": n.plant,
                "min_nodes": n.nodes,
                "nodes_month": round(n.floor_month, 2),
                "requests_month": round(n.requested_month, 2),
            }
            for n in cost.capacity
        ],
        "lines": [
            {**line._asdict(), "month": round(line.month, 2)}
            for line in sorted(
                cost.lines, key=lambda x: (x.plant, x.environment, x.service, x.deployment)
            )
        ],
    }


def cost(
    fleet: FleetArg,
    by: Annotated[
        CostBy, typer.Option("--by", help="Rows per plant, environment or service.")
    ] = CostBy.plant,
    fmt: Annotated[
        CostFormat, typer.Option("--format", "-f", help="Output format.")
    ] = CostFormat.text,
    what_if: Annotated[
        str | None,
        typer.Option(
            "--what-if",
            metavar="TARGET=VALUE",
            help="TARGET=VALUE (pattern, tier or resource_profile) for --plant: its cost "
            "before and after the move.",
        ),
    ] = None,
    plant: Annotated[
        str | None, typer.Option("--plant", metavar="CODE", help="Plant of --what-if.")
    ] = None,
    today: TodayOpt = None,
) -> None:
    """Monthly cost by plant, environment or service; plant-specific vs shared platform."""
    from plantops.cli.console import out, run_guarded

    res = run_guarded(services.cost_fleet, fleet, today=_today(today), what_if=what_if, plant=plant)
    _print_warnings(res.warnings)
    doc = _cost_document(res.cost, by)
    w = res.what_if
    if w is not None:
        doc["what_if"] = {
            "plant": w.plant,
            "change": f"{w.target}={w.value}",
            "plant_before_month": round(w.before.for_plant(w.plant), 2),
            "plant_after_month": round(w.after.for_plant(w.plant), 2),
            "fleet_before_month": round(w.before.total_month, 2),
            "fleet_after_month": round(w.after.total_month, 2),
            "rows_after": _cost_rows(w.after, by),
        }
    if fmt is CostFormat.json:
        out.out(json.dumps(doc, indent=2, sort_keys=True))
        return
    rows = _cost_rows(res.cost, by)
    if fmt is CostFormat.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf,
            fieldnames=[by.value, "plant_month", "platform_month", "total_month", "currency"],
            lineterminator="\n",
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "currency": res.cost.currency})
        out.out(buf.getvalue(), end="")
        return
    cur = res.cost.currency
    table = Table(title=f"Monthly cost by {by.value} ({cur})")
    for col in (by.value, "plant-specific", "shared platform", "total"):
        table.add_column(col, justify="left" if col == by.value else "right")
    for row in rows:
        table.add_row(
            escape(str(row[by.value])),
            f"{row['plant_month']:,.2f}",
            f"{row['platform_month']:,.2f}",
            f"{row['total_month']:,.2f}",
        )
    out.print(table)
    for n in res.cost.capacity:
        out.print(
            f"node pools {n.key} ({n.plant}): {n.nodes} nodes at least = "
            f"{n.floor_month:,.2f} {cur}; requests would cost {n.requested_month:,.2f}"
        )
    out.print(
        f"fleet total {res.cost.total_month:,.2f} {cur}/month, of which shared platform "
        f"{res.cost.platform_month:,.2f} (allocated by compute share per cluster)"
    )
    if w is not None:
        before, after = w.before.for_plant(w.plant), w.after.for_plant(w.plant)
        out.print(
            f"what if {w.plant} {w.target}={w.value}: {before:,.2f} → {after:,.2f} {cur}/month "
            f"({after - before:+,.2f}); fleet {w.before.total_month:,.2f} → "
            f"{w.after.total_month:,.2f}"
        )


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(schema)
    app.command()(init)
    app.command()(classify)
    app.command()(plan)
    app.command()(cost)

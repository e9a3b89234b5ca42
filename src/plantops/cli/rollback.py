"""``plantops rollback``: a rollback plan for one plant × environment, applied on request.

Exit codes: 0 plan printed (or pin written) · 2 bad input: unknown plant or environment, no
pin, ``--to`` not in the pin's history, a pin edited by hand or changed since it was read.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops import services


class Format(str, Enum):
    text = "text"
    json = "json"


def _at(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not ISO 8601 (2026-12-03T17:00:00Z)") from exc
    if when.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no timezone; add Z or +01:00")
    return when


def rollback(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    plant: Annotated[str, typer.Option("--plant", help="Plant code.")],
    env: Annotated[str, typer.Option("--env", help="Environment.")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Release id (or unique prefix) in the pin's history."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Time of the rollback (ISO 8601; default now).")
    ] = None,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Write the rollback pin and record it in the ledger."),
    ] = False,
    actor: Annotated[
        str | None, typer.Option("--as", help="Who rolls back (recorded; with --apply).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded; with --apply).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="State database URL holding the ledger (default PLANTOPS_DB)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
) -> None:
    """Plan a rollback to the previous (or --to) release: the pin to write and whether the
    database must be restored (a newer release updated modules) or not (image/config only)."""
    from plantops.cli.console import out, run_guarded

    when = _at(at)
    result = run_guarded(
        services.rollback,
        fleet,
        plant=plant,
        env=env,
        to=to,
        at=when,
        apply=apply,
        actor=actor,
        reason=reason,
        db=db,
        today=dt.datetime.now(dt.UTC).date(),
    )
    plan = result.plan
    if fmt is Format.json:
        doc = plan.to_dict() | {"written": str(result.written) if result.written else None}
        out.print(json.dumps(doc, indent=2, sort_keys=True), markup=False, soft_wrap=True)
        return
    lines = [
        f"rollback {plan.plant}/{plan.environment}",
        f"  from  {plan.current.release} ({plan.current.image})",
        f"  to    {plan.target.release} ({plan.target.image}), promoted to "
        f"{plan.target.stage} at {plan.target.promoted_at:%Y-%m-%dT%H:%M:%SZ}",
        f"  database: {plan.database.upper()} — {plan.reason}",
        "commands:",
        *(f"  {c}" for c in plan.commands),
    ]
    if result.written:
        lines.append(f"wrote {result.written} (commit and push it; Argo CD applies it)")
        lines.append("recorded in the ledger (plantops ledger export)")
    out.print("\n".join(lines), markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``rollback`` to the plantops app."""
    app.command("rollback")(rollback)


__all__ = ["register"]

"""``plantops promote``: a release into one stage, wave by wave, through its gates.

Exit codes: 0 every selected plant was promoted (or, with --dry-run, would be) · 1 a gate
blocked at least one plant, or another promoter won the race · 2 bad input (an edited
lock, an unknown stage, plant or wave, an unregistered release) · 3 the state database.
"""

from __future__ import annotations

import getpass
import json
import os
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plantops.errors import EXIT_FINDINGS, UserError
from plantops.services import release as release_services

if TYPE_CHECKING:
    from plantops.release.promote import PromotionResult


class Format(str, Enum):
    text = "text"
    json = "json"


def current_user() -> str:
    return os.environ.get("PLANTOPS_USER") or getpass.getuser()


def _print(result: PromotionResult) -> None:
    from plantops.cli.console import err, out

    if result.message:
        out.print(result.message, markup=False, soft_wrap=True)
        return
    head = "DRY RUN: " if result.dry_run else ""
    out.print(
        f"{head}release {result.release[:19]}… → {result.stage}, wave {result.wave} "
        f"(waves: {', '.join(f'{w}: {len(p)}' for w, p in result.waves.items())})",
        markup=False,
        soft_wrap=True,
    )
    if result.break_glass is not None:
        err.print(
            f"BREAK-GLASS: gates overridden by {', '.join(result.break_glass.approvers)} — "
            f"{result.break_glass.reason} (recorded in the ledger)",
            markup=False,
            soft_wrap=True,
        )
    for v in result.verdicts:
        if v.plant in result.promoted:
            state = "promoted"
        elif v.ok:
            state = "eligible"
        else:
            nxt = v.next_allowed
            state = f"blocked (eligible at {nxt.isoformat()})" if nxt else "blocked"
        out.print(f"{v.plant} [{v.tier}, wave {v.wave}]: {state}", markup=False, soft_wrap=True)
        for g in v.gates:
            mark = "ok  " if g.ok else "FAIL"
            for reason in g.reasons:
                out.print(f"  {mark} {g.gate}: {reason}", markup=False, soft_wrap=True)
    if result.entries:
        seqs = ", ".join(str(e.seq) for e in result.entries)
        out.print(f"ledger entries {seqs}; pins: {len(result.pins)}", markup=False, soft_wrap=True)
    if result.commit:
        out.print(f"fleet repo commit {result.commit}", markup=False)
    if result.commit_error:
        err.print(
            f"warning: the pins are written and recorded but not committed: {result.commit_error}",
            markup=False,
            soft_wrap=True,
        )


def promote(
    lock: Annotated[Path, typer.Argument(help="The release lock file.")],
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    to: Annotated[str, typer.Option("--to", help="Stage to promote into.")],
    wave: Annotated[
        int | None, typer.Option("--wave", help="Wave of the stage (default: the next one).")
    ] = None,
    plant: Annotated[
        list[str] | None, typer.Option("--plant", help="Only these plants of the wave.")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", "--at", help="Evaluate at this instant (ISO 8601 with offset)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Evaluate the gates; write nothing.")
    ] = False,
    actor: Annotated[
        str | None, typer.Option("--as", help="Who promotes (default $PLANTOPS_USER or login).")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="State database URL (default $PLANTOPS_DB).")
    ] = None,
    vulns: Annotated[
        list[Path] | None, typer.Option("--vulns", help="Scanner report of the release image.")
    ] = None,
    rehearsal: Annotated[
        list[Path] | None,
        typer.Option("--rehearsal", help="Migration rehearsal result (plantops.io/rehearsal/v1)."),
    ] = None,
    smoke: Annotated[
        list[Path] | None,
        typer.Option("--smoke", help="`plantops probe run --format json` of the previous stage."),
    ] = None,
    break_glass: Annotated[
        str | None,
        typer.Option("--break-glass", help="Emergency: override failed gates, with this reason."),
    ] = None,
    approver: Annotated[
        list[str] | None,
        typer.Option("--approver", help="Break-glass approver (two different people)."),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
) -> None:
    """Evaluate the stage's gates for the plants of one wave and promote those that pass:
    write their release pins and record the promotion in the ledger."""
    from plantops.cli.console import out, run_guarded

    when = run_guarded(release_services.parse_instant, now)
    glass = (break_glass, tuple(approver or ())) if break_glass is not None else None
    if glass is None and approver:
        run_guarded(_refuse, "--approver is only for --break-glass")
    result = run_guarded(
        release_services.promote_release,
        fleet,
        lock,
        to=to,
        actor=actor or current_user(),
        now=when,
        db=db,
        wave=wave,
        plants=tuple(plant or ()),
        dry_run=dry_run,
        vulns=tuple(vulns or ()),
        rehearsals=tuple(rehearsal or ()),
        smoke=tuple(smoke or ()),
        break_glass=glass,
    )
    if output_format is Format.json:
        out.print(
            json.dumps(result.as_dict(), indent=2, sort_keys=True), markup=False, soft_wrap=True
        )
    else:
        _print(result)
    if result.blocked:
        raise typer.Exit(EXIT_FINDINGS)


def _refuse(message: str) -> None:
    raise UserError(message)


def register(app: typer.Typer) -> None:
    """Add ``promote`` to the plantops app."""
    app.command("promote")(promote)

"""``plantops ledger verify|export``: the tamper-evident release ledger.

Exit codes: 0 intact / exported · 1 the chain is broken (the first bad entry is named) ·
2 bad input · 3 the state database cannot be opened.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops.errors import EXIT_FINDINGS
from plantops.services import release as release_services

ledger_app = typer.Typer(help="The release ledger.", no_args_is_help=True)

DbOpt = Annotated[
    str | None, typer.Option("--db", help="State database URL (default $PLANTOPS_DB).")
]


class VerifyFormat(str, Enum):
    text = "text"
    json = "json"


class ExportFormat(str, Enum):
    json = "json"
    csv = "csv"


@ledger_app.command("verify")
def verify(
    db: DbOpt = None,
    output_format: Annotated[
        VerifyFormat, typer.Option("--format", help="text or json.")
    ] = VerifyFormat.text,
) -> None:
    """Recompute the hash chain; exit 1 naming the first entry that was edited, deleted,
    inserted or reordered."""
    from plantops.cli.console import out, run_guarded

    result = run_guarded(release_services.ledger_verify, db)
    if output_format is VerifyFormat.json:
        out.print(json.dumps(result.as_dict(), indent=2, sort_keys=True), markup=False)
    elif result.ok:
        out.print(
            f"ledger intact: {result.entries} entries, head {result.head_seq} {result.head_hash}",
            markup=False,
            soft_wrap=True,
        )
    else:
        out.print(
            f"ledger BROKEN at entry {result.first_bad}: {result.reason} "
            f"({result.entries} entries verified before it)",
            markup=False,
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


@ledger_app.command("export")
def export(
    db: DbOpt = None,
    output_format: Annotated[
        ExportFormat, typer.Option("--format", help="json or csv.")
    ] = ExportFormat.json,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")
    ] = None,
) -> None:
    """Every entry in sequence order, with its hashes, as JSON or CSV."""
    from plantops.cli.console import out, run_guarded
    from plantops.outputs import write_text_atomically

    chunks = release_services.ledger_export(db, output_format.value)
    if output is not None:
        run_guarded(lambda: write_text_atomically(output, "".join(chunks)))
        return

    def stream() -> None:
        for chunk in chunks:
            out.file.write(chunk)

    run_guarded(stream)


def register(app: typer.Typer) -> None:
    """Add ``ledger`` to the plantops app."""
    app.add_typer(ledger_app, name="ledger")

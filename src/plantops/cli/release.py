"""``plantops release create|verify``: the immutable release lock.

Exit codes: 0 lock written / verified · 1 the addons check refused the release ·
2 bad input: an image without a digest, a lock whose content no longer matches its id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from plantops import services
from plantops.addons import changed_addons
from plantops.errors import EXIT_FINDINGS, UserError
from plantops.outputs import check_writable_target, write_text_atomically
from plantops.release import read_lock

release_app = typer.Typer(help="Release locks.", no_args_is_help=True)


@release_app.command("create")
def create(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    image: Annotated[str, typer.Option("--image", help="REPOSITORY[:TAG]@sha256:<digest>.")],
    addons: Annotated[
        list[Path], typer.Option("--addons", help="Addons path (repeatable, first wins).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Lock file to write.")],
    packages: Annotated[
        Path | None, typer.Option("--packages", help="The image's `pip freeze`.")
    ] = None,
    today: Annotated[
        str | None,
        typer.Option("--today", help="Evaluate expiries as of (YYYY-MM-DD).", hidden=True),
    ] = None,
) -> None:
    """Check the addons against the fleet's series and edition and write a canonical lock:
    image digest, addons (version, checksum, commit), package-list and config hashes."""
    from plantops.cli.console import out, run_guarded

    def go() -> services.ReleaseResult:
        try:
            day = dt.date.fromisoformat(today) if today else dt.date.today()
        except ValueError:
            raise UserError(f"--today {today}: expected YYYY-MM-DD") from None
        check_writable_target(out_file)
        return services.create_release(
            fleet, image=image, addons_paths=addons, packages=packages, today=day
        )

    result = run_guarded(go)
    if not result.text:
        for finding in result.addons.errors:
            out.print(finding.render(), markup=False, soft_wrap=True)
        out.print(
            f"release refused: {len(result.addons.errors)} addon error(s); fix them or the "
            "addons paths and create the release again",
            markup=False,
        )
        raise typer.Exit(EXIT_FINDINGS)
    run_guarded(write_text_atomically, out_file, result.text)
    n = len(result.content.get("addons", []))  # type: ignore[arg-type]
    out.print(f"release {result.id}: {n} addons → {out_file}", markup=False, soft_wrap=True)


@release_app.command("verify")
def verify(lock: Annotated[Path, typer.Argument(help="A release lock file.")]) -> None:
    """Check that a lock's content still matches its id (exit 2 if it was edited)."""
    from plantops.cli.console import out, run_guarded

    result = run_guarded(read_lock, lock)
    out.print(f"{result.file}: release {result.id} intact", markup=False, soft_wrap=True)


@release_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The release in production now.")],
    new: Annotated[Path, typer.Argument(help="The release to promote.")],
) -> None:
    """The addons whose checksum changed (or that are new): the modules the migration must
    update with `odoo -u`, one a line, then the comma-separated list."""
    from plantops.cli.console import out, run_guarded

    before, after = run_guarded(read_lock, old), run_guarded(read_lock, new)
    changed = changed_addons(_sums(before.content), _sums(after.content))
    for name in changed:
        out.print(name, markup=False)
    out.print(
        f"{len(changed)} addon(s) to update: {','.join(changed) or '-'}",
        markup=False,
        soft_wrap=True,
    )


def _sums(content: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(a["name"]): str(a["checksum"])
        for a in content.get("addons", [])
        if isinstance(a, dict) and a.get("installable", True)
    }


def register(app: typer.Typer) -> None:
    """Add ``release`` to the plantops app."""
    app.add_typer(release_app, name="release")

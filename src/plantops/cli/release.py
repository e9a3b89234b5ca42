"""``plantops release create|verify``: the immutable release lock.

Exit codes: 0 lock written / verified · 1 the addons check refused the release ·
2 bad input: an image without a digest, a lock whose content no longer matches its id.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from plantops import services
from plantops.errors import EXIT_FINDINGS
from plantops.outputs import check_writable_target, write_text_atomically
from plantops.services import release as release_services

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
    author: Annotated[
        str | None,
        typer.Option("--as", help="Record the release and its author in the ledger."),
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="State database URL (with --as).")] = None,
) -> None:
    """Check the addons against the fleet's series and edition and write a canonical lock:
    image digest, addons (version, checksum, commit), package-list and config hashes."""
    from plantops.cli.console import out, parse_today, run_guarded

    def go() -> services.ReleaseResult:
        day = parse_today(today)
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
    if author is not None:
        entry = run_guarded(
            release_services.register_release, out_file, author=author, db=db, now=_utcnow()
        )
        if entry is not None:
            out.print(f"ledger entry {entry.seq}: release by {author}", markup=False)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


DbOpt = Annotated[
    str | None, typer.Option("--db", help="State database URL (default $PLANTOPS_DB).")
]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", "--at", help="Record/evaluate at this instant (ISO 8601 with offset)."),
]


@release_app.command("register")
def register_cmd(
    lock: Annotated[Path, typer.Argument(help="A release lock file.")],
    author: Annotated[str, typer.Option("--as", help="The release's author.")],
    db: DbOpt = None,
    now: NowOpt = None,
) -> None:
    """Record a release and its author in the ledger (once; the author cannot approve it)."""
    from plantops.cli.console import out, run_guarded

    when = run_guarded(release_services.parse_instant, now)
    entry = run_guarded(release_services.register_release, lock, author=author, db=db, now=when)
    if entry is None:
        out.print("release already in the ledger", markup=False)
    else:
        out.print(f"ledger entry {entry.seq}: release {entry.release_id} by {author}", markup=False)


@release_app.command("approve")
def approve(
    lock: Annotated[Path, typer.Argument(help="A release lock file.")],
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    stage: Annotated[str, typer.Option("--stage", help="Stage the approval is for.")],
    user: Annotated[str, typer.Option("--as", help="The approver.")],
    role: Annotated[str, typer.Option("--role", help="The approver's role.")],
    db: DbOpt = None,
    now: NowOpt = None,
) -> None:
    """Approve a release for one stage (recorded in the ledger; not by its author)."""
    from plantops.cli.console import out, run_guarded

    when = run_guarded(release_services.parse_instant, now)
    entry = run_guarded(
        release_services.approve_release,
        fleet,
        lock,
        stage=stage,
        user=user,
        role=role,
        db=db,
        now=when,
    )
    out.print(
        f"ledger entry {entry.seq}: {user} ({role}) approved {entry.release_id[:19]}… for {stage}",
        markup=False,
        soft_wrap=True,
    )


@release_app.command("status")
def status(
    lock: Annotated[Path, typer.Argument(help="A release lock file.")],
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    db: DbOpt = None,
    now: NowOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of the table.")] = False,
) -> None:
    """Stages × waves: which plants have the release, and the gates of each next wave."""
    import json

    from rich.table import Table

    from plantops.cli.console import out, run_guarded

    when = run_guarded(release_services.parse_instant, now)
    result = run_guarded(release_services.release_status, fleet, lock, db=db, now=when)
    if as_json:
        out.print(json.dumps(result.as_dict(), indent=2, sort_keys=True), markup=False)
        return
    out.print(
        f"release {result.release}  author {result.author or '(not registered)'}",
        markup=False,
        soft_wrap=True,
    )
    table = Table("stage", "wave", "state", "plants", "gates (next wave)")
    for st in result.stages:
        for w in st.waves:
            gates = "; ".join(
                f"{v.plant}: " + ("ok" if v.ok else ", ".join(f"{g.gate} ✗" for g in v.failed))
                for v in w.verdicts
            )
            table.add_row(
                st.stage,
                str(w.wave),
                w.state,
                f"{len(w.promoted)}/{len(w.plants)} " + ", ".join(w.plants),
                gates or ("-" if w.state == "done" else "after earlier waves"),
            )
    out.print(table)


class WavesFormat(StrEnum):
    text = "text"
    json = "json"


@release_app.command("waves")
def waves(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    fmt: Annotated[
        WavesFormat, typer.Option("--format", "-f", help="Output format.")
    ] = WavesFormat.text,
) -> None:
    """The rollout plan every release follows: each stage's gates, approvals and soak,
    and which plants go in which wave (no release or ledger needed)."""
    import json

    from plantops.cli.console import out, run_guarded

    plan = run_guarded(release_services.release_waves, fleet, today=dt.date.today())
    if fmt is WavesFormat.json:
        doc = {"stages": [s.as_dict() for s in plan]}
        out.print(json.dumps(doc, indent=2, sort_keys=True), markup=False)
        return
    out.print(f"Rollout of {fleet}: stage by stage, wave by wave", markup=False, soft_wrap=True)
    for st in plan:
        cfg = st.config
        gates = [", ".join(cfg.gates) or "no gates"]
        if cfg.approvals.count:
            roles = f" incl. {', '.join(cfg.approvals.roles)}" if cfg.approvals.roles else ""
            gates.append(f"{cfg.approvals.count} approval(s){roles}")
        for tier, rule in sorted(cfg.approvals_by_tier.items()):
            gates.append(f"{tier} tier: {rule.count} approval(s)")
        if cfg.soak_hours:
            gates.append(f"soak {cfg.soak_hours:g} h")
        if cfg.wave_soak_hours:
            gates.append(f"{cfg.wave_soak_hours:g} h between waves")
        if cfg.windows:
            gates.append(f"windows {', '.join(w.name for w in cfg.windows)}")
        label = st.stage + (" (production)" if st.production else "")
        out.print(f"\n{label}: {'; '.join(gates)}", markup=False, soft_wrap=True)
        for w, plants in st.waves.items():
            out.print(f"  wave {w}: {', '.join(plants)}", markup=False, soft_wrap=True)
        if not st.waves:
            out.print("  (no plant runs this stage)", markup=False)


@release_app.command("verify")
def verify(lock: Annotated[Path, typer.Argument(help="A release lock file.")]) -> None:
    """Check that a lock's content still matches its id (exit 2 if it was edited)."""
    from plantops.cli.console import out, run_guarded

    result = run_guarded(release_services.verify_lock, lock)
    out.print(f"{result.file}: release {result.id} intact", markup=False, soft_wrap=True)


@release_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The release in production now.")],
    new: Annotated[Path, typer.Argument(help="The release to promote.")],
) -> None:
    """The addons whose checksum changed (or that are new): the modules the migration must
    update with `odoo -u`, one a line, then the comma-separated list."""
    from plantops.cli.console import out, run_guarded

    changed = run_guarded(release_services.release_diff, old, new)
    for name in changed:
        out.print(name, markup=False)
    out.print(
        f"{len(changed)} addon(s) to update: {','.join(changed) or '-'}",
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``release`` to the plantops app."""
    app.add_typer(release_app, name="release")

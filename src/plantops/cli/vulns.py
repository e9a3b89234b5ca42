"""``plantops vulns check``: the vulnerability gate over scanner reports.

Exit codes: 0 within the policy · 1 the policy is exceeded (each blocking vulnerability
named) · 2 unreadable report, unknown format, bad policy, expired allowlist entry.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops.errors import EXIT_FINDINGS
from plantops.services import vulns as vulns_services

vulns_app = typer.Typer(help="Vulnerability gate over scanner reports.", no_args_is_help=True)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def _line(v: object) -> str:
    from plantops.vulns import Vulnerability

    assert isinstance(v, Vulnerability)
    fix = f"fixed in {v.fixed}" if v.fixed else "no fix"
    cvss = f" CVSS {v.cvss:g}" if v.cvss is not None else ""
    return f"{v.severity.upper():8} {v.id} {v.package} {v.installed} ({fix}){cvss} — {v.source}"


@vulns_app.command("check")
def check(
    reports: Annotated[
        list[Path], typer.Argument(help="Trivy/Grype JSON, SARIF or CycloneDX files.")
    ],
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Policy YAML (default: no fixable critical/high)."),
    ] = None,
    tier: Annotated[
        str | None, typer.Option("--tier", help="Apply the policy's rule for this tier.")
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", help="Apply the policy's rule for this environment.")
    ] = None,
    fleet: Annotated[
        Path | None,
        typer.Option(
            "--fleet", help="Fleet repository: the tier comes from --plant's classification."
        ),
    ] = None,
    plant: Annotated[str | None, typer.Option("--plant", help="Plant code (with --fleet).")] = None,
    vex: Annotated[
        list[Path] | None, typer.Option("--vex", help="CycloneDX VEX document (repeatable).")
    ] = None,
    today: Annotated[
        str | None, typer.Option("--today", help="Date for allowlist expiry (YYYY-MM-DD).")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for tools.")
    ] = OutputFormat.text,
) -> None:
    """Read scanner reports into one list and judge it: maximum counts per severity,
    fixable-only, VEX and an allowlist with reason, owner and expiry."""
    from plantops.cli.console import out, parse_today, run_guarded

    day = parse_today(today)
    result = run_guarded(
        vulns_services.vulns_check,
        reports,
        policy,
        tier,
        env,
        list(vex or []),
        day,
        fleet,
        plant,
    )
    if output_format is OutputFormat.json:
        out.print(
            json.dumps(result.to_dict(), indent=2, sort_keys=True), markup=False, soft_wrap=True
        )
    else:
        for v in result.blocking:
            out.print(f"blocking: {_line(v)}", markup=False, soft_wrap=True)
        counts = ", ".join(f"{s} {n}" for s, n in result.counts.items() if n)
        limits = ", ".join(f"{s} ≤ {n}" for s, n in sorted(result.rule.max.items()))
        verdict = (
            "passed"
            if result.ok
            else "FAILED: "
            + ", ".join(f"{n} {s} > {result.rule.max[s]}" for s, n in result.exceeded.items())
        )
        out.print(
            f"{len(result.counted)} counted ({counts or 'none'}), {len(result.ignored)} ignored; "
            f"policy {' + '.join(result.rule.applied)} [{limits or 'no limits'}"
            f"{', fixable only' if result.rule.fixable_only else ''}]: {verdict}",
            markup=False,
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


def register(app: typer.Typer) -> None:
    """Add ``vulns`` to the plantops app."""
    app.add_typer(vulns_app, name="vulns")

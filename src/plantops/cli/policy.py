"""``plantops check`` and ``plantops policy check|export``: the platform baseline and the
fleet's CEL rules over a fleet (rendered first) or a manifest directory.

Exit codes: 0 no finding at its environment's threshold · 1 findings at the threshold ·
2 bad input (malformed policy file, CEL that does not compile) · 3 infrastructure.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops import services
from plantops.check.policy import FORMATTERS
from plantops.check.policy.kyverno import DEFAULT_EXCEPTION_NAMESPACE
from plantops.errors import EXIT_FINDINGS
from plantops.outputs import check_writable_target, write_text_atomically


class CheckFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"


class ExportFormat(str, Enum):
    vap = "vap"
    kyverno = "kyverno"


def check(
    target: Annotated[
        Path,
        typer.Argument(help="A fleet repository (rendered, then checked) or a manifest directory."),
    ],
    output_format: Annotated[
        CheckFormat, typer.Option("--format", "-f", help="Report format.")
    ] = CheckFormat.text,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to FILE.")
    ] = None,
    today: Annotated[
        str | None, typer.Option("--today", help="Date for exception expiry (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Check the platform baseline and the fleet's policies/*.yaml CEL rules; exceptions
    from policies/exceptions.yaml. Exit 1 when a finding reaches its environment's threshold."""
    from plantops.cli.console import err, out, parse_today, run_guarded

    day = parse_today(today)
    if output is not None:
        run_guarded(check_writable_target, output)
    result = run_guarded(services.check_target, target, today=day)
    text = FORMATTERS[output_format.value](result)
    if output is not None:
        run_guarded(write_text_atomically, output, text)
        for w in result.warnings:
            err.print(f"warning: {w}", markup=False, soft_wrap=True)
        err.print(
            f"wrote {output}: {len(result.findings)} finding(s), {len(result.failing)} failing",
            markup=False,
        )
    else:
        out.print(text, markup=False, soft_wrap=True, end="")
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


def export(
    fleet: Annotated[Path, typer.Argument(help="The fleet repository.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the policies into.")],
    output_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="vap: ValidatingAdmissionPolicy + bindings; kyverno: Kyverno "
            "ValidatingPolicy + PolicyException (policies.kyverno.io/v1, Kyverno >= 1.19).",
        ),
    ] = ExportFormat.vap,
    exception_namespace: Annotated[
        str,
        typer.Option(
            "--exception-namespace",
            help="kyverno: the namespace Kyverno reads PolicyExceptions from "
            "(its --exceptionNamespace flag).",
        ),
    ] = DEFAULT_EXCEPTION_NAMESPACE,
    today: Annotated[
        str | None, typer.Option("--today", help="Date for exception expiry (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Export every CEL-expressible rule for admission: Kubernetes ValidatingAdmissionPolicy
    + binding, or Kyverno ValidatingPolicy with the fleet's exceptions as PolicyExceptions."""
    from plantops.cli.console import out, parse_today, run_guarded

    paths = run_guarded(
        services.policy_export,
        fleet,
        out_dir,
        today=parse_today(today),
        export_format=output_format.value,
        exception_namespace=exception_namespace,
    )
    for p in paths:
        out.print(f"wrote {p}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``check`` and ``policy check|export``."""
    app.command("check")(check)
    group = typer.Typer(
        help="Policy as code: check manifests, export admission policies.", no_args_is_help=True
    )
    group.command("check")(check)
    group.command("export")(export)
    app.add_typer(group, name="policy")

"""``plantops ci generate``: a CI pipeline for the fleet repository (GitHub or GitLab).

Exit codes: 0 written · 2 bad input (unknown provider, a fleet that does not load, an
output path that cannot be written).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from plantops import services

ci_app = typer.Typer(help="CI pipelines for the fleet repository.", no_args_is_help=True)


class ProviderOpt(str, Enum):
    github = "github"
    gitlab = "gitlab"


@ci_app.command("generate")
def generate(
    fleet: Annotated[Path, typer.Option("--fleet", help="Fleet repository (fleet.yaml).")],
    provider: Annotated[ProviderOpt, typer.Option("--provider", help="github or gitlab.")],
    out_file: Annotated[
        Path,
        typer.Option(
            "--out", help="File to write (.github/workflows/plantops.yml, .gitlab-ci.yml)."
        ),
    ],
    rendered: Annotated[
        str, typer.Option("--rendered", help="Committed rendered tree, in the repository.")
    ] = "rendered",
    addons: Annotated[
        list[str] | None, typer.Option("--addons", help="Addons path (repeatable).")
    ] = None,
    vulns_policy: Annotated[
        str | None, typer.Option("--vulns-policy", help="Vulnerability policy YAML.")
    ] = None,
    install: Annotated[
        str, typer.Option("--install", help="pip requirement that installs plantops.")
    ] = "plantops",
    default_branch: Annotated[
        str, typer.Option("--default-branch", help="Branch promotions run on.")
    ] = "main",
) -> None:
    """Write a pipeline: validate, plan (dry run and stale-tree diff), check (SARIF), addons
    and vulnerability gates on merge requests; promote on merge; release create on tags."""
    from plantops.cli.console import out, run_guarded

    path = run_guarded(
        services.ci_generate,
        fleet,
        provider=provider.value,
        out=out_file,
        today=dt.datetime.now(dt.UTC).date(),
        rendered=rendered,
        addons=tuple(addons or ("addons",)),
        vulns_policy=vulns_policy,
        install=install,
        default_branch=default_branch,
    )
    out.print(f"wrote {path} ({provider.value})", markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``ci`` to the plantops app."""
    app.add_typer(ci_app, name="ci")

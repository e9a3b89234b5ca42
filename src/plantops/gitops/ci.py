"""CI pipelines for a fleet repository: the gates on merge requests, promotion on merge,
a release on tag — as a GitHub Actions workflow or a GitLab CI file.

Jobs (both providers):

* **validate** — ``plantops validate``;
* **plan** — ``plantops plan --dry-run`` (what would change), then the tree is rendered and
  ``git diff --exit-code`` fails a merge request whose committed rendered tree is stale
  (the rendered tree is reviewed in the same request as the spec change);
* **check** — ``plantops check --format sarif`` (uploaded to GitHub code scanning; a GitLab
  artifact), failing on findings at the threshold;
* **addons** — ``plantops addons check`` over the addons paths;
* **vulns** — Trivy scans the release image (``$PLANTOPS_IMAGE``, by digest) and
  ``plantops vulns check`` judges the report;
* **promote** (default branch, when ``$PLANTOPS_RELEASE_LOCK`` is set) —
  ``plantops promote LOCK --fleet . --to $PLANTOPS_PROMOTE_TO``;
* **release** (tags) — ``plantops release create`` and the lock as an artifact.

Pure: the pipeline is data, serialised deterministically (same options, same bytes).
Third-party actions and images are pinned to versions named here, never ``latest``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from plantops.render.yamlout import emit_yaml

Provider = Literal["github", "gitlab"]
PROVIDERS: tuple[Provider, ...] = ("github", "gitlab")

PYTHON = "3.11"
TRIVY_IMAGE = "aquasec/trivy:0.58.1"
CHECKOUT = "actions/checkout@v4"
SETUP_PYTHON = "actions/setup-python@v5"
UPLOAD_SARIF = "github/codeql-action/upload-sarif@v3"
UPLOAD_ARTIFACT = "actions/upload-artifact@v4"
SARIF = "plantops.sarif"
TRIVY_REPORT = "trivy.json"
LOCK = "release.lock"


@dataclass(frozen=True)
class CiOptions:
    fleet: str = "."
    """The fleet repository's path inside the Git repository."""
    rendered: str = "rendered"
    """Where the rendered tree is committed."""
    addons: tuple[str, ...] = ("addons",)
    series: str = "17.0"
    edition: str = "ce"
    install: str = "plantops"
    """What ``pip install`` installs (a requirement, e.g. ``plantops==0.1.0``)."""
    vulns_policy: str | None = None
    default_branch: str = "main"


def _q(value: str) -> str:
    return shlex.quote(value)


def _commands(o: CiOptions) -> dict[str, list[str]]:
    fleet = _q(o.fleet)
    addons = " ".join(_q(a) for a in o.addons)
    policy = f" --policy {_q(o.vulns_policy)}" if o.vulns_policy else ""
    return {
        "validate": [f"plantops validate {fleet}"],
        "plan": [
            f"plantops plan {fleet} --out {_q(o.rendered)} --dry-run",
            f"plantops plan {fleet} --out {_q(o.rendered)}",
            # A stale committed tree fails: the rendered change is reviewed with the spec.
            f"git diff --exit-code -- {_q(o.rendered)}",
        ],
        "check": [f"plantops check {fleet} --format sarif --output {SARIF}"],
        "addons": [
            f"plantops addons check {addons} --series {_q(o.series)} --edition {_q(o.edition)}"
        ],
        "vulns": [f"plantops vulns check {TRIVY_REPORT}{policy}"],
        "promote": [
            f'plantops promote "$PLANTOPS_RELEASE_LOCK" --fleet {fleet} '
            '--to "$PLANTOPS_PROMOTE_TO"'
        ],
        "release": [
            f'plantops release create --fleet {fleet} --image "$PLANTOPS_IMAGE" '
            + " ".join(f"--addons {_q(a)}" for a in o.addons)
            + f" --out {LOCK}",
            f"plantops release verify {LOCK}",
        ],
    }


# --- GitHub Actions --------------------------------------------------------------------


def _gh_steps(o: CiOptions, run: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": PYTHON}},
        {"name": "Install plantops", "run": f"pip install {_q(o.install)}"},
        *({"run": line} for line in run),
    ]


def github_workflow(o: CiOptions) -> dict[str, Any]:
    cmd = _commands(o)
    gates = ("validate", "plan", "check", "addons", "vulns")
    jobs: dict[str, Any] = {
        "validate": {"runs-on": "ubuntu-latest", "steps": _gh_steps(o, cmd["validate"])},
        "plan": {
            "needs": ["validate"],
            "runs-on": "ubuntu-latest",
            "steps": _gh_steps(o, cmd["plan"]),
        },
        "check": {
            "needs": ["validate"],
            "permissions": {"contents": "read", "security-events": "write"},
            "runs-on": "ubuntu-latest",
            "steps": [
                *_gh_steps(o, [])[:3],
                {"id": "check", "continue-on-error": True, "run": cmd["check"][0]},
                {
                    "if": "always()",
                    "uses": UPLOAD_SARIF,
                    "with": {"category": "plantops", "sarif_file": SARIF},
                },
                {
                    "if": "steps.check.outcome == 'failure'",
                    "run": "echo 'plantops check failed (findings above)'; exit 1",
                },
            ],
        },
        "addons": {"runs-on": "ubuntu-latest", "steps": _gh_steps(o, cmd["addons"])},
        "vulns": {
            "if": "vars.PLANTOPS_IMAGE != ''",
            "env": {"PLANTOPS_IMAGE": "${{ vars.PLANTOPS_IMAGE }}"},
            "runs-on": "ubuntu-latest",
            "steps": [
                *_gh_steps(o, [])[:3],
                {
                    "name": "Scan the release image",
                    "run": (
                        f'docker run --rm -v "$PWD:/out" {TRIVY_IMAGE} image --format json '
                        f'--output /out/{TRIVY_REPORT} "$PLANTOPS_IMAGE"'
                    ),
                },
                *({"run": line} for line in cmd["vulns"]),
            ],
        },
        "promote": {
            # Not skipped with a skipped gate (vulns without an image), only a failed one.
            "if": (
                "!failure() && !cancelled() && github.event_name == 'push' && "
                f"github.ref == 'refs/heads/{o.default_branch}' && vars.PLANTOPS_RELEASE_LOCK != ''"
            ),
            "needs": list(gates),
            "env": {
                "PLANTOPS_PROMOTE_TO": "${{ vars.PLANTOPS_PROMOTE_TO }}",
                "PLANTOPS_RELEASE_LOCK": "${{ vars.PLANTOPS_RELEASE_LOCK }}",
            },
            "permissions": {"contents": "write"},
            "runs-on": "ubuntu-latest",
            "steps": [
                *_gh_steps(o, cmd["promote"]),
                {"run": "git push"},
            ],
        },
        "release": {
            "if": "!failure() && !cancelled() && startsWith(github.ref, 'refs/tags/')",
            "needs": list(gates),
            "env": {"PLANTOPS_IMAGE": "${{ vars.PLANTOPS_IMAGE }}"},
            "runs-on": "ubuntu-latest",
            "steps": [
                *_gh_steps(o, cmd["release"]),
                {"uses": UPLOAD_ARTIFACT, "with": {"name": "release-lock", "path": LOCK}},
            ],
        },
    }
    return {
        "name": "plantops",
        "on": {
            "pull_request": {"branches": [o.default_branch]},
            "push": {"branches": [o.default_branch], "tags": ["v*"]},
        },
        "permissions": {"contents": "read"},
        "concurrency": {"cancel-in-progress": False, "group": "plantops-${{ github.ref }}"},
        "jobs": jobs,
    }


# --- GitLab CI -------------------------------------------------------------------------

_MR = "$CI_PIPELINE_SOURCE == 'merge_request_event'"


def gitlab_ci(o: CiOptions) -> dict[str, Any]:
    cmd = _commands(o)
    default_branch = f"$CI_COMMIT_BRANCH == '{o.default_branch}'"
    gate_rules = [{"if": _MR}, {"if": default_branch}, {"if": "$CI_COMMIT_TAG"}]
    python = f"python:{PYTHON}-slim"

    def job(stage: str, script: list[str], **more: Any) -> dict[str, Any]:
        return {
            "stage": stage,
            "image": python,
            "before_script": [f"pip install {_q(o.install)}"],
            "script": script,
            "rules": gate_rules,
            **more,
        }

    return {
        "stages": ["validate", "gates", "promote", "release"],
        "workflow": {"rules": gate_rules},
        "validate": job("validate", cmd["validate"]),
        "plan": job(
            "gates",
            ["apt-get update -qq && apt-get install -y -qq git >/dev/null", *cmd["plan"]],
        ),
        "check": job(
            "gates",
            cmd["check"],
            artifacts={"when": "always", "paths": [SARIF]},
        ),
        "addons": job("gates", cmd["addons"]),
        "vulns-scan": {
            "stage": "validate",
            "image": {"name": TRIVY_IMAGE, "entrypoint": [""]},
            "script": [f'trivy image --format json --output {TRIVY_REPORT} "$PLANTOPS_IMAGE"'],
            "artifacts": {"paths": [TRIVY_REPORT]},
            "rules": [{"if": f"$PLANTOPS_IMAGE && ({_MR} || {default_branch} || $CI_COMMIT_TAG)"}],
        },
        "vulns": job(
            "gates",
            cmd["vulns"],
            needs=["vulns-scan"],
            rules=[{"if": f"$PLANTOPS_IMAGE && ({_MR} || {default_branch} || $CI_COMMIT_TAG)"}],
        ),
        "promote": job(
            "promote",
            [*cmd["promote"], "git push"],
            rules=[{"if": f"{default_branch} && $PLANTOPS_RELEASE_LOCK"}],
            resource_group="plantops-promotion",
        ),
        "release": job(
            "release",
            cmd["release"],
            rules=[{"if": "$CI_COMMIT_TAG"}],
            artifacts={"paths": [LOCK]},
        ),
    }


def generate_ci(provider: Provider, options: CiOptions) -> str:
    """The pipeline file's text for ``provider``."""
    if provider == "github":
        doc = github_workflow(options)
        head = "# GitHub Actions workflow generated by `plantops ci generate --provider github`.\n"
    else:
        doc = gitlab_ci(options)
        head = "# GitLab CI pipeline generated by `plantops ci generate --provider gitlab`.\n"
    return head + emit_yaml(doc)


__all__ = ["PROVIDERS", "CiOptions", "Provider", "generate_ci", "github_workflow", "gitlab_ci"]

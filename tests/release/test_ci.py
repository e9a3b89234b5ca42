"""Generated CI pipelines validate against the providers' real JSON schemas (as vendored by
check-jsonschema) and run the gates in order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from plantops.cli.main import app
from tests.conftest import EXAMPLE

runner = CliRunner()
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


def _schema_check(path: Path, provider: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            SCHEMAS[provider],
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _generate(tmp_path: Path, provider: str, *extra: str) -> Path:
    out = tmp_path / f"{provider}.yml"
    result = runner.invoke(
        app,
        [
            "ci",
            "generate",
            "--fleet",
            str(EXAMPLE),
            "--provider",
            provider,
            "--out",
            str(out),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_valid_for_the_provider(tmp_path: Path, provider: str) -> None:
    out = _generate(tmp_path, provider, "--addons", "addons/oca", "--addons", "addons/acme")
    checked = _schema_check(out, provider)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the schema check is real: a broken file fails it
    doc = yaml.safe_load(out.read_text())
    broken = tmp_path / f"broken-{provider}.yml"
    if provider == "github":
        doc["jobs"]["check"]["steps"] = "not a list"
    else:
        doc["check"]["when"] = "whenever"
    broken.write_text(yaml.safe_dump(doc))
    assert _schema_check(broken, provider).returncode != 0
    again = _generate(
        tmp_path / "..", provider, "--addons", "addons/oca", "--addons", "addons/acme"
    )
    assert again.read_text() == out.read_text()  # deterministic


def test_github_jobs(tmp_path: Path) -> None:
    doc = yaml.safe_load(_generate(tmp_path, "github").read_text())
    jobs = doc["jobs"]
    assert set(jobs) == {"validate", "plan", "check", "addons", "vulns", "promote", "release"}
    runs = {name: [s.get("run", "") for s in job["steps"]] for name, job in jobs.items()}
    assert "plantops plan . --out rendered --dry-run" in runs["plan"]
    assert "git diff --exit-code -- rendered" in runs["plan"]
    assert any(
        s.get("uses", "").startswith("github/codeql-action/upload-sarif")
        for s in jobs["check"]["steps"]
    )
    assert jobs["check"]["permissions"]["security-events"] == "write"
    assert any("--series 17.0 --edition" in r for r in runs["addons"])
    assert any(r.startswith("plantops vulns check trivy.json") for r in runs["vulns"])
    assert "startsWith(github.ref, 'refs/tags/')" in jobs["release"]["if"]
    assert any(r.startswith("plantops release create") for r in runs["release"])
    assert set(jobs["promote"]["needs"]) == {"validate", "plan", "check", "addons", "vulns"}
    assert doc["on"]["pull_request"]["branches"] == ["main"]


def test_gitlab_jobs(tmp_path: Path) -> None:
    doc = yaml.safe_load(_generate(tmp_path, "gitlab", "--vulns-policy", "vulns.yaml").read_text())
    assert doc["stages"] == ["validate", "gates", "promote", "release"]
    assert doc["vulns"]["script"] == ["plantops vulns check trivy.json --policy vulns.yaml"]
    assert doc["release"]["rules"] == [{"if": "$CI_COMMIT_TAG"}]
    assert doc["promote"]["resource_group"] == "plantops-promotion"
    assert doc["check"]["artifacts"]["paths"] == ["plantops.sarif"]


def test_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ci",
            "generate",
            "--fleet",
            str(tmp_path),
            "--provider",
            "github",
            "--out",
            str(tmp_path / "x.yml"),
        ],
    )
    assert result.exit_code == 2
    result = runner.invoke(
        app,
        [
            "ci",
            "generate",
            "--fleet",
            str(EXAMPLE),
            "--provider",
            "jenkins",
            "--out",
            str(tmp_path / "x.yml"),
        ],
    )
    assert result.exit_code == 2

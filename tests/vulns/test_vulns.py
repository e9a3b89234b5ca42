"""Vulnerability gate: readers on the real Trivy outputs, VEX, policy per tier/env,
allowlist expiry, hostile reports, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.errors import UserError
from plantops.inputs import BadInput
from plantops.vulns import DEFAULT_POLICY, Policy, evaluate_gate, read_report, read_vex
from plantops.vulns.model import Vulnerability
from tests.realworld import realworld

runner = CliRunner()
TODAY = dt.date(2026, 11, 22)


def trivy(name: str) -> Path:
    return realworld("scanner-reports", "trivy", name)


def test_trivy_json_normalized() -> None:
    r = read_report(trivy("debian-buster.json"))
    assert r.format == "trivy"
    rows = {v.id: v for v in r.vulnerabilities}
    crit = rows["CVE-2019-18224"]
    assert (crit.package, crit.installed, crit.fixed, crit.severity, crit.cvss) == (
        "libidn2-0",
        "2.0.5-1",
        "2.0.5-1+deb10u1",
        "critical",
        9.8,
    )
    assert not rows["CVE-2019-18276"].fixable  # bash: no fixed version


def test_sarif_and_cyclonedx_normalized() -> None:
    sarif = read_report(trivy("alpine-310.sarif"))
    assert sarif.format == "sarif"
    assert {(v.package, v.installed, v.fixed, v.severity) for v in sarif.vulnerabilities} >= {
        ("libssl1.1", "1.1.1c-r0", "1.1.1d-r0", "medium")
    }
    cdx = read_report(trivy("npm-cyclonedx.json"))
    (v,) = cdx.vulnerabilities
    assert (cdx.format, v.id, v.package, v.installed, v.fixed, v.severity, v.cvss) == (
        "cyclonedx",
        "CVE-2019-11358",
        "jquery",
        "3.3.9",
        "3.4.0",
        "medium",
        6.1,
    )
    assert v.purl == "pkg:npm/jquery@3.3.9"


def test_gate_default_policy_names_blocking() -> None:
    rows = [
        v for f in ("debian-buster.json", "pip.json") for v in read_report(trivy(f)).vulnerabilities
    ]
    result = evaluate_gate(rows, DEFAULT_POLICY, tier=None, env=None, today=TODAY)
    assert not result.ok and result.exceeded == {"critical": 1, "high": 1}
    assert {v.id for v in result.blocking} == {"CVE-2019-18224", "CVE-2019-14806"}
    # bash LOW without a fix is ignored as unfixable under fixable_only
    assert any(v.id == "CVE-2019-18276" and v.status == "unfixable" for v in result.ignored)


def test_duplicates_across_targets_count_once() -> None:
    rows = read_report(trivy("gomod-vex.json")).vulnerabilities
    policy = Policy.model_validate({"default": {"max": {"unknown": 1}}})
    result = evaluate_gate(rows, policy, tier=None, env=None, today=TODAY)
    assert result.counts["unknown"] == 2  # GMS-2022-20 in three go.mod files is one
    gms = next(v for v in result.counted if v.id == "GMS-2022-20")
    assert gms.source.count("go.mod") == 3


def _policy() -> Policy:
    return Policy.model_validate(
        {
            "default": {"max": {"critical": 0, "high": 0}, "fixable_only": True},
            "tiers": {"critical": {"max": {"medium": 0}, "fixable_only": False}},
            "environments": {"dev": {"max": {"critical": 5, "high": 5}}},
            "allowlist": [
                {
                    "id": "CVE-2019-14806",
                    "package": "Werkzeug",
                    "reason": "not reachable: no debugger in prod",
                    "owner": "sec@acme.example",
                    "expires": "2027-01-31",
                }
            ],
        }
    )


def test_tier_and_environment_rules() -> None:
    rows = [
        v for f in ("pip.json", "alpine-310.sarif") for v in read_report(trivy(f)).vulnerabilities
    ]
    policy = _policy()
    assert evaluate_gate(rows, policy, tier=None, env=None, today=TODAY).ok  # allowlisted HIGH
    crit = evaluate_gate(rows, policy, tier="critical", env=None, today=TODAY)
    assert crit.exceeded == {"medium": 5} and crit.rule.applied == ("default", "tier critical")
    allowed = next(v for v in crit.ignored if v.id == "CVE-2019-14806")
    assert allowed.status == "allowlisted" and "sec@acme.example" in allowed.reason
    with pytest.raises(UserError, match="not in the policy"):
        evaluate_gate(rows, policy, tier="nope", env=None, today=TODAY)


def test_expired_allowlist_entry_is_bad_input() -> None:
    with pytest.raises(UserError, match=r"expired on 2027-01-31"):
        evaluate_gate([], _policy(), tier=None, env=None, today=dt.date(2027, 2, 1))


def test_vex_suppresses_matching_package_only(tmp_path: Path) -> None:
    vex = tmp_path / "vex.json"
    vex.write_text(
        json.dumps(
            {
                "bomFormat": "CycloneDX",
                "specVersion": "1.5",
                "vulnerabilities": [
                    {
                        "id": "CVE-2019-18224",
                        "analysis": {
                            "state": "not_affected",
                            "justification": "code_not_reachable",
                        },
                        "affects": [{"ref": "pkg:deb/debian/libidn2-0@2.0.5-1"}],
                    },
                    {
                        "id": "CVE-2019-14806",
                        "analysis": {"state": "in_triage"},
                        "affects": [{"ref": "pkg:pypi/werkzeug@0.11"}],
                    },
                ],
            }
        )
    )
    rows = [
        v for f in ("debian-buster.json", "pip.json") for v in read_report(trivy(f)).vulnerabilities
    ]
    result = evaluate_gate(
        rows, DEFAULT_POLICY, tier=None, env=None, today=TODAY, vex=read_vex(vex)
    )
    assert result.exceeded == {"high": 1}  # in_triage still counts
    sup = next(v for v in result.ignored if v.id == "CVE-2019-18224")
    assert sup.status == "not_affected" and "code_not_reachable" in sup.reason


def test_cyclonedx_analysis_inside_the_bom() -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "components": [{"bom-ref": "c1", "name": "lib", "version": "1.0"}],
        "vulnerabilities": [
            {
                "id": "CVE-1",
                "ratings": [{"severity": "critical", "score": 9.1, "method": "CVSSv31"}],
                "analysis": {"state": "false_positive"},
                "affects": [
                    {"ref": "c1", "versions": [{"version": "1.1", "status": "unaffected"}]}
                ],
            }
        ],
    }
    from plantops.vulns.readers import read_cyclonedx

    (v,) = read_cyclonedx(doc, "bom.json")
    assert (v.package, v.fixed, v.status, v.severity) == (
        "lib",
        "1.1",
        "false_positive",
        "critical",
    )
    assert evaluate_gate([v], DEFAULT_POLICY, tier=None, env=None, today=TODAY).ok


def test_grype_json(tmp_path: Path) -> None:
    path = tmp_path / "grype.json"
    path.write_text(
        json.dumps(
            {
                "descriptor": {"name": "grype", "version": "0.80.0"},
                "matches": [
                    {
                        "vulnerability": {
                            "id": "CVE-2023-1",
                            "severity": "High",
                            "fix": {"versions": ["3.0.2"], "state": "fixed"},
                            "cvss": [{"version": "3.1", "metrics": {"baseScore": 7.5}}],
                        },
                        "artifact": {
                            "name": "openssl",
                            "version": "3.0.1",
                            "purl": "pkg:deb/debian/openssl@3.0.1",
                        },
                    }
                ],
                "ignoredMatches": [],
            }
        )
    )
    r = read_report(path)
    (v,) = r.vulnerabilities
    assert (r.format, v.severity, v.fixed, v.cvss) == ("grype", "high", "3.0.2", 7.5)


def test_hostile_reports(tmp_path: Path) -> None:
    unknown = tmp_path / "x.json"
    unknown.write_text('{"hello": []}')
    with pytest.raises(BadInput, match="unknown report format"):
        read_report(unknown)
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: 100 MB without writing them
    start = time.monotonic()
    with pytest.raises(BadInput, match="over the limit"):
        read_report(big)
    assert time.monotonic() - start < 2
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInput, match="nested deeper"):
        read_report(deep)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="FIFO"):
        read_report(fifo)


def test_cli(tmp_path: Path) -> None:
    r = runner.invoke(app, ["vulns", "check", str(trivy("debian-buster.json"))])
    assert r.exit_code == 1 and "blocking: CRITICAL CVE-2019-18224 libidn2-0" in r.output
    r = runner.invoke(app, ["vulns", "check", str(trivy("npm-cyclonedx.json")), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["medium"] == 1
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: {max: {critical: 0}}\nbogus: 1\n")
    r = runner.invoke(app, ["vulns", "check", str(trivy("pip.json")), "--policy", str(policy)])
    assert r.exit_code == 2 and "bogus" in r.output
    r = runner.invoke(app, ["vulns", "check", str(trivy("LICENSE"))])
    assert r.exit_code == 2


def test_cli_tier_from_the_fleet(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLE
    from tests.conftest import TODAY as FLEET_TODAY

    policy = tmp_path / "policy.yaml"
    policy.write_text("default: {max: {critical: 0}}\ntiers:\n  critical: {max: {medium: 0}}\n")
    base = ["vulns", "check", str(trivy("npm-cyclonedx.json")), "--policy", str(policy)]
    fleet = ["--fleet", str(EXAMPLE), "--today", FLEET_TODAY.isoformat()]
    r = runner.invoke(app, [*base, *fleet, "--plant", "lyon-meddev", "--env", "prod"])
    assert r.exit_code == 1 and "tier critical" in r.output, r.output  # medium jquery blocks
    r = runner.invoke(app, [*base, *fleet, "--plant", "pune-pilot", "--env", "prod"])
    assert r.exit_code == 0 and "tier pilot (no rule)" in r.output, r.output
    r = runner.invoke(app, [*base, *fleet, "--plant", "pune-pilot", "--env", "qa"])
    assert r.exit_code == 2 and "not an environment of the fleet" in r.output


def test_vulnerability_row_is_frozen() -> None:
    v = Vulnerability("CVE-1", "p", "1", None, "low", None, None, "f")
    with pytest.raises(AttributeError):
        v.id = "x"  # type: ignore[misc]

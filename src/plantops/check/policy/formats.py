"""Formatters of a PolicyResult: ``format_text``, ``format_json``, ``format_sarif``,
``format_junit`` — each ``(result) -> str``, deterministic, never printing.

SARIF follows the 2.1.0 schema GitHub code scanning reads (runs[].tool.driver.rules,
results with ruleId, level, message.text and a physicalLocation with a 1-based
startLine), shaped like Trivy's SARIF output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import groupby
from typing import Any
from xml.etree import ElementTree as ET

from plantops import __version__
from plantops.check.policy.model import Finding, PolicyResult, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub ranks code-scanning alerts by properties.security-severity (0-10).
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _summary(result: PolicyResult) -> str:
    failing = len(result.failing)
    verdict = "failing" if failing else "passing"
    return (
        f"{result.objects} object(s) in {result.files} file(s), {len(result.rules)} rule(s): "
        f"{len(result.findings)} finding(s), {failing} at or above the threshold ({verdict}); "
        f"{len(result.suppressed)} excepted; {len(result.skipped)} file(s) skipped"
    )


def format_text(result: PolicyResult) -> str:
    """Findings grouped by plant, then rule, each with its object and the fix."""
    lines: list[str] = []
    failing = set(result.failing)
    key: Callable[[Finding], tuple[str, str]] = lambda f: (f.plant, f.rule)  # noqa: E731
    for plant, by_plant in groupby(sorted(result.findings, key=key), key=lambda f: f.plant):
        lines.append(f"plant {plant or '(fleet-wide)'}")
        for rule, group in groupby(by_plant, key=lambda f: f.rule):
            items = list(group)
            lines.append(f"  {rule} [{items[0].severity.label}] fix: {items[0].remediation}")
            for f in items:
                mark = "FAIL" if f in failing else "warn"
                where = f"{f.file}:{f.line}" if f.line else f.file
                spec = f" (from {f.spec_location})" if f.spec_location else ""
                lines.append(f"    {mark} {f.object_ref} {where} {f.path}: {f.message}{spec}")
    for s in result.skipped:
        lines.append(f"skipped {s.file}: {s.reason}")
    lines += [f"warning: {w}" for w in result.warnings]
    lines.append(_summary(result))
    return "\n".join(lines) + "\n"


def format_json(result: PolicyResult) -> str:
    failing = set(result.failing)  # once: a per-finding lookup must not rebuild it
    data: dict[str, Any] = {
        "ok": result.ok,
        "objects": result.objects,
        "files": result.files,
        "rules": len(result.rules),
        "findings": [f.to_dict() | {"failing": f in failing} for f in result.findings],
        "excepted": [f.to_dict() for f in result.suppressed],
        "skipped": [{"file": s.file, "reason": s.reason} for s in result.skipped],
        "warnings": list(result.warnings),
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _sarif_result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.object_ref} {f.path}: {f.message}. Fix: {f.remediation}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": f.file, "uriBaseId": "ROOTPATH"},
                    "region": {"startLine": max(1, f.line), "startColumn": 1},
                },
                "message": {"text": f.object_ref},
            }
        ],
        "partialFingerprints": {"plantopsObject/v1": f"{f.rule}:{f.object_ref}:{f.path}"},
    }
    if f.excepted_by:
        out["suppressions"] = [{"kind": "external", "justification": f.excepted_by}]
    return out


def format_sarif(result: PolicyResult) -> str:
    rules = sorted(result.rules, key=lambda r: r.id)
    index = {r.id: i for i, r in enumerate(rules)}
    driver = {
        "name": "plantops",
        "fullName": f"plantops policy {__version__}",
        "informationUri": "https://github.com/plantops/plantops",
        "version": __version__,
        "rules": [
            {
                "id": r.id,
                "name": r.id.replace("-", ""),
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.title},
                "help": {
                    "text": r.remediation or r.title,
                    "markdown": f"**Fix:** {r.remediation or r.title}",
                },
                "defaultConfiguration": {"level": _LEVEL[r.severity]},
                "properties": {
                    "precision": "very-high",
                    "security-severity": _SECURITY_SEVERITY[r.severity],
                    "tags": ["kubernetes", "plantops", r.source],
                },
            }
            for r in rules
        ],
    }
    results = [_sarif_result(f, index) for f in (*result.findings, *result.suppressed)]
    doc = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [
            {
                "tool": {"driver": driver},
                "results": results,
                "columnKind": "utf16CodeUnits",
                "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
            }
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def format_junit(result: PolicyResult) -> str:
    """One testsuite per rule, one testcase per rule x object; a failure carries the
    message and the fix. Passing objects appear as passing test cases."""
    suites = ET.Element("testsuites", name="plantops policy")
    failing = set(result.failing)
    by_rule: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_rule.setdefault(f.rule, []).append(f)
    total = failures = 0
    for rule in sorted(result.rules, key=lambda r: r.id):
        found = by_rule.get(rule.id, [])
        suite = ET.SubElement(suites, "testsuite", name=rule.id)
        cases = 0
        fails = 0
        for ref, group in groupby(
            sorted(found, key=lambda f: (f.object_ref, f.file)),
            key=lambda f: (f.object_ref, f.file),
        ):
            items = list(group)
            case = ET.SubElement(suite, "testcase", classname=rule.id, name=ref[0], file=ref[1])
            cases += 1
            failed = [f for f in items if f in failing]
            if failed:
                fails += 1
                node = ET.SubElement(
                    case, "failure", type=rule.severity.label, message=failed[0].message
                )
                node.text = (
                    "\n".join(f"{f.path}: {f.message}" for f in failed)
                    + f"\nfix: {rule.remediation}"
                )
            else:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(
                    f"{f.severity.label} below threshold: {f.path}: {f.message}" for f in items
                )
        if not found:
            ET.SubElement(suite, "testcase", classname=rule.id, name="all objects")
            cases += 1
        suite.set("tests", str(cases))
        suite.set("failures", str(fails))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        total += cases
        failures += fails
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", "0")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


FORMATTERS: dict[str, Callable[[PolicyResult], str]] = {
    "text": format_text,
    "json": format_json,
    "sarif": format_sarif,
    "junit": format_junit,
}

__all__ = ["FORMATTERS", "format_json", "format_junit", "format_sarif", "format_text"]

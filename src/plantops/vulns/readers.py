"""Scanner report readers: Trivy JSON, Grype JSON, SARIF 2.1.0 and CycloneDX (with its
VEX ``analysis``), each into :class:`~plantops.vulns.model.Vulnerability` rows.

Every report is read through :mod:`plantops.inputs` (regular files only, size bounded
before a byte is parsed, JSON nesting bounded), so a 100 MB or endlessly nested report is
refused at once with exit 2. The format is detected from the document itself; a document
of no known shape is refused too, never read as "no vulnerabilities".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from plantops.errors import display_path
from plantops.inputs import BadInput, Limits, json_value, read_text
from plantops.vulns.model import Vulnerability, normalize_severity, severity_from_score

# Trivy's JSON for a large image with descriptions is a few MiB; 64 MiB is generous.
REPORT_LIMITS = Limits(max_bytes=64 * 1024 * 1024, max_nodes=5_000_000, max_depth=64)

# CycloneDX VEX states that mean "this vulnerability does not apply" (CycloneDX 1.4+
# vulnerability.analysis.state); exploitable and in_triage still count.
VEX_SUPPRESSING = frozenset(
    {"not_affected", "false_positive", "resolved", "resolved_with_pedigree"}
)
# Trivy's Status values for a VEX/ignore decision (pkg/types: vulnerability status).
TRIVY_SUPPRESSING = frozenset({"not_affected"})


@dataclass(frozen=True)
class Report:
    file: str
    format: str
    vulnerabilities: tuple[Vulnerability, ...]


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: object) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _d(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def detect_format(doc: object) -> str | None:
    if not isinstance(doc, dict):
        return None
    if doc.get("bomFormat") == "CycloneDX":
        return "cyclonedx"
    if isinstance(doc.get("runs"), list) and str(doc.get("version", "")).startswith("2.1"):
        return "sarif"
    if "SchemaVersion" in doc and ("Results" in doc or "ArtifactName" in doc):
        return "trivy"
    if isinstance(doc.get("matches"), list) and isinstance(doc.get("descriptor"), dict):
        return "grype"
    return None


# --- Trivy ---------------------------------------------------------------------------


def _trivy_cvss(v: dict[str, Any]) -> float | None:
    cvss = v.get("CVSS")
    if not isinstance(cvss, dict):
        return None
    order = [_s(v.get("SeveritySource")), "nvd", *sorted(cvss)]
    for source in order:
        entry = cvss.get(source)
        if isinstance(entry, dict):
            for key in ("V40Score", "V3Score", "V2Score"):
                score = _num(entry.get(key))
                if score is not None:
                    return score
    return None


def _trivy_row(v: dict[str, Any], source: str, status: str = "", reason: str = "") -> Vulnerability:
    cvss = _trivy_cvss(v)
    ident = v.get("PkgIdentifier")
    purl = _s(ident.get("PURL")) if isinstance(ident, dict) else ""
    trivy_status = _s(v.get("Status"))
    if not status:
        status = "not_affected" if trivy_status in TRIVY_SUPPRESSING else "affected"
    return Vulnerability(
        id=_s(v.get("VulnerabilityID")) or "?",
        package=_s(v.get("PkgName")) or "?",
        installed=_s(v.get("InstalledVersion")),
        fixed=_s(v.get("FixedVersion")) or None,
        severity=normalize_severity(v.get("Severity"), cvss),
        cvss=cvss,
        purl=purl or None,
        source=source,
        status=status,
        reason=reason,
    )


def read_trivy(doc: dict[str, Any], file: str) -> list[Vulnerability]:
    rows: list[Vulnerability] = []
    for result in _dicts(doc.get("Results")):
        source = f"{file} [{_s(result.get('Target'))}]"
        rows.extend(_trivy_row(v, source) for v in _dicts(result.get("Vulnerabilities")))
        # `trivy --show-suppressed`: findings a VEX or ignore file removed, with why.
        for mod in _dicts(result.get("ModifiedFindings")):
            finding = mod.get("Finding")
            if mod.get("Type") == "vulnerability" and isinstance(finding, dict):
                why = _s(mod.get("Statement")) or _s(mod.get("Source"))
                rows.append(_trivy_row(finding, source, _s(mod.get("Status")) or "suppressed", why))
    return rows


# --- Grype ---------------------------------------------------------------------------


def _grype_row(match: dict[str, Any], file: str, status: str, reason: str) -> Vulnerability | None:
    vuln, artifact = match.get("vulnerability"), match.get("artifact")
    if not isinstance(vuln, dict) or not isinstance(artifact, dict):
        return None
    scores = [
        _num(c.get("metrics", {}).get("baseScore"))
        for c in _dicts(vuln.get("cvss"))
        if isinstance(c.get("metrics"), dict)
    ]
    cvss = max((s for s in scores if s is not None), default=None)
    fix = _d(vuln.get("fix"))
    versions = [v for v in _list(fix.get("versions")) if isinstance(v, str)]
    return Vulnerability(
        id=_s(vuln.get("id")) or "?",
        package=_s(artifact.get("name")) or "?",
        installed=_s(artifact.get("version")),
        fixed=", ".join(versions) if versions and fix.get("state") == "fixed" else None,
        severity=normalize_severity(vuln.get("severity"), cvss),
        cvss=cvss,
        purl=_s(artifact.get("purl")) or None,
        source=file,
        status=status,
        reason=reason,
    )


def read_grype(doc: dict[str, Any], file: str) -> list[Vulnerability]:
    rows = [_grype_row(m, file, "affected", "") for m in _dicts(doc.get("matches"))]
    for m in _dicts(doc.get("ignoredMatches")):
        rules = list(_dicts(m.get("appliedIgnoreRules")))
        why = "; ".join(
            _s(r.get("vex-justification")) or _s(r.get("reason")) or "ignore rule" for r in rules
        )
        status = next((_s(r.get("vex-status")) for r in rules if r.get("vex-status")), "suppressed")
        rows.append(_grype_row(m, file, status, why or "ignored by grype"))
    return [r for r in rows if r is not None]


# --- SARIF ---------------------------------------------------------------------------

_SARIF_FIELD = re.compile(r"^(Package|Installed Version|Fixed Version|Severity): *(.*)$", re.M)
_LEVEL = {"error": "high", "warning": "medium", "note": "low"}


def read_sarif(doc: dict[str, Any], file: str) -> list[Vulnerability]:
    rows: list[Vulnerability] = []
    for run in _dicts(doc.get("runs")):
        driver = _d(_d(run.get("tool")).get("driver"))
        rules = {_s(r.get("id")): r for r in _dicts(driver.get("rules"))}
        for result in _dicts(run.get("results")):
            rule_id = _s(result.get("ruleId"))
            props = _d(rules.get(rule_id, {}).get("properties"))
            message = result.get("message")
            text = _s(message.get("text")) if isinstance(message, dict) else ""
            # Trivy's SARIF template writes these lines into each result's message.
            fields = dict(_SARIF_FIELD.findall(text))
            score = _num(props.get("cvssv3_baseScore"))
            if score is None:
                try:
                    score = float(_s(props.get("security-severity")) or "x")
                except ValueError:
                    score = None
            tags = [t.lower() for t in _list(props.get("tags")) if isinstance(t, str)]
            word = fields.get("Severity") or next(
                (t for t in tags if t in ("critical", "high", "medium", "low")), ""
            )
            severity = normalize_severity(word, score) if word else severity_from_score(score)
            if severity == "unknown":
                severity = _LEVEL.get(_s(result.get("level")), "unknown")
            uri = ""
            for loc in _dicts(result.get("locations")):
                phys = loc.get("physicalLocation")
                if isinstance(phys, dict) and isinstance(phys.get("artifactLocation"), dict):
                    uri = _s(phys["artifactLocation"].get("uri"))
                    break
            suppressions = list(_dicts(result.get("suppressions")))
            accepted = [s for s in suppressions if _s(s.get("status")) in ("", "accepted")]
            rows.append(
                Vulnerability(
                    id=rule_id or "?",
                    package=fields.get("Package") or uri or "?",
                    installed=fields.get("Installed Version", ""),
                    fixed=fields.get("Fixed Version") or None,
                    severity=severity,
                    cvss=score,
                    purl=None,
                    source=f"{file} [{uri}]" if uri else file,
                    status="suppressed" if accepted else "affected",
                    reason="; ".join(_s(s.get("justification")) for s in accepted),
                )
            )
    return rows


# --- CycloneDX (+ VEX) ---------------------------------------------------------------


def _components(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    stack = list(_dicts(doc.get("components")))
    meta = doc.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("component"), dict):
        stack.append(meta["component"])
    while stack:
        comp = stack.pop()
        ref = _s(comp.get("bom-ref"))
        if ref:
            out[ref] = comp
        stack.extend(_dicts(comp.get("components")))
    return out


_RATING_METHODS = ("CVSSv4", "CVSSv31", "CVSSv3", "CVSSv2")
_UPGRADE = re.compile(r"[Uu]pgrade \S+ to version (\S+(?:, \S+)*)")


def _cdx_rating(vuln: dict[str, Any]) -> tuple[str, float | None]:
    ratings = list(_dicts(vuln.get("ratings")))
    scores: list[tuple[int, float]] = []
    for r in ratings:
        score = _num(r.get("score"))
        method = _s(r.get("method"))
        if score is not None:
            rank = (
                _RATING_METHODS.index(method) if method in _RATING_METHODS else len(_RATING_METHODS)
            )
            scores.append((rank, score))
    cvss = max((s for rank, s in scores if rank == min(r for r, _ in scores)), default=None)
    src = vuln.get("source")
    own = _s(src.get("name")) if isinstance(src, dict) else ""
    by_source = {
        _s(r.get("source", {}).get("name")): _s(r.get("severity"))
        for r in ratings
        if isinstance(r.get("source"), dict)
    }
    word = (
        by_source.get(own)
        or by_source.get("nvd")
        or next((_s(r.get("severity")) for r in ratings if r.get("severity")), "")
    )
    return normalize_severity(word, cvss), cvss


def read_cyclonedx(doc: dict[str, Any], file: str) -> list[Vulnerability]:
    components = _components(doc)
    rows: list[Vulnerability] = []
    for vuln in _dicts(doc.get("vulnerabilities")):
        severity, cvss = _cdx_rating(vuln)
        analysis = _d(vuln.get("analysis"))
        state = _s(analysis.get("state"))
        status = state if state in VEX_SUPPRESSING else "affected"
        reason = (
            " — ".join(
                x for x in (_s(analysis.get("justification")), _s(analysis.get("detail"))) if x
            )
            if analysis
            else ""
        )
        recommended = _UPGRADE.search(_s(vuln.get("recommendation")))
        for affect in _dicts(vuln.get("affects")):
            ref = _s(affect.get("ref"))
            comp = components.get(ref, {})
            purl = _s(comp.get("purl")) or (ref if ref.startswith("pkg:") else "")
            name, version = _s(comp.get("name")), _s(comp.get("version"))
            if purl and not name:
                parsed = _parse_purl(purl)
                if parsed is not None:
                    name, version = parsed.name, parsed.version or ""
            unaffected = [
                _s(v.get("version"))
                for v in _dicts(affect.get("versions"))
                if v.get("status") == "unaffected" and v.get("version")
            ]
            fixed = ", ".join(unaffected) or (recommended.group(1) if recommended else None)
            rows.append(
                Vulnerability(
                    id=_s(vuln.get("id")) or "?",
                    package=name or ref or "?",
                    installed=version,
                    fixed=fixed,
                    severity=severity,
                    cvss=cvss,
                    purl=purl or None,
                    source=file,
                    status=status,
                    reason=reason,
                )
            )
    return rows


def _parse_purl(value: str) -> PackageURL | None:
    try:
        return PackageURL.from_string(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class VexStatement:
    id: str
    purl: PackageURL | None
    ref: str
    state: str
    reason: str
    file: str

    def matches(self, v: Vulnerability) -> bool:
        if v.id != self.id:
            return False
        if self.purl is not None:
            other = _parse_purl(v.purl) if v.purl else None
            if other is None:
                return self.purl.name == v.package and self.purl.version in (None, v.installed)
            return (self.purl.type, self.purl.namespace, self.purl.name) == (
                other.type,
                other.namespace,
                other.name,
            ) and self.purl.version in (None, other.version)
        return self.ref in ("", v.package)


def read_vex(path: Path) -> list[VexStatement]:
    """A CycloneDX VEX document: each vulnerability's ``analysis`` per affected ref."""
    shown = display_path(path, Path.cwd())
    doc = json_value(read_text(path, shown, limits=REPORT_LIMITS), shown, limits=REPORT_LIMITS)
    if detect_format(doc) != "cyclonedx":
        raise BadInput(shown, 1, 1, "not a CycloneDX VEX document", "give a CycloneDX JSON BOM")
    components = _components(doc)
    out: list[VexStatement] = []
    for vuln in _dicts(doc.get("vulnerabilities")):
        analysis = vuln.get("analysis")
        if not isinstance(analysis, dict) or not _s(analysis.get("state")):
            continue
        state = _s(analysis.get("state"))
        reason = " — ".join(
            x for x in (_s(analysis.get("justification")), _s(analysis.get("detail"))) if x
        )
        for affect in _dicts(vuln.get("affects")) or [{}]:
            ref = _s(affect.get("ref"))
            # A ref is a bom-ref; standalone VEX often uses the purl itself, or a BOM-Link
            # (urn:cdx:serial/version#bom-ref) whose fragment is a purl.
            target = ref.rsplit("#", 1)[-1] if ref.startswith("urn:cdx:") else ref
            purl_text = _s(components.get(target, {}).get("purl")) or target
            purl = _parse_purl(purl_text) if purl_text.startswith("pkg:") else None
            out.append(VexStatement(_s(vuln.get("id")), purl, target, state, reason, shown))
    return out


READERS = {
    "trivy": read_trivy,
    "grype": read_grype,
    "sarif": read_sarif,
    "cyclonedx": read_cyclonedx,
}


def read_report(path: Path) -> Report:
    shown = display_path(path, Path.cwd())
    doc = json_value(read_text(path, shown, limits=REPORT_LIMITS), shown, limits=REPORT_LIMITS)
    fmt = detect_format(doc)
    if fmt is None or not isinstance(doc, dict):
        raise BadInput(
            shown,
            1,
            1,
            "unknown report format",
            "give Trivy JSON (--format json), Grype JSON, SARIF 2.1.0 or CycloneDX JSON",
        )
    return Report(shown, fmt, tuple(READERS[fmt](doc, shown)))


__all__ = [
    "REPORT_LIMITS",
    "Report",
    "VexStatement",
    "detect_format",
    "read_report",
    "read_vex",
]

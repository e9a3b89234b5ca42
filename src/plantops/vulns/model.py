"""The normalized vulnerability every scanner report is read into."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "unknown")


def normalize_severity(value: object, cvss: float | None = None) -> str:
    """Scanner words to one scale; an unknown word falls back to the CVSS score's band
    (NVD's CVSS v3 qualitative ratings: 9.0 critical, 7.0 high, 4.0 medium, 0.1 low)."""
    word = str(value or "").strip().lower()
    word = {"negligible": "low", "info": "low", "moderate": "medium", "important": "high"}.get(
        word, word
    )
    if word in SEVERITIES and word != "unknown":
        return word
    return severity_from_score(cvss)


def severity_from_score(score: float | None) -> str:
    if score is None:
        return "unknown"
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "unknown"


@dataclass(frozen=True, order=True)
class Vulnerability:
    id: str
    package: str
    installed: str
    fixed: str | None
    severity: str
    cvss: float | None
    purl: str | None
    source: str
    """The report file (and target inside it) the finding came from."""
    status: str = "affected"
    """affected, or why it does not count: not_affected/false_positive/resolved (VEX),
    suppressed (SARIF), allowlisted."""
    reason: str = ""

    @property
    def fixable(self) -> bool:
        return bool(self.fixed)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.id, self.package, self.installed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "package": self.package,
            "installed": self.installed,
            "fixed": self.fixed,
            "fixable": self.fixable,
            "severity": self.severity,
            "cvss": self.cvss,
            "purl": self.purl,
            "source": self.source,
            "status": self.status,
            "reason": self.reason,
        }


__all__ = ["SEVERITIES", "Vulnerability", "normalize_severity", "severity_from_score"]

"""Vulnerability gate: scanner reports (Trivy JSON, Grype JSON, SARIF 2.1.0, CycloneDX with
VEX) read into one normalized list, then judged by a policy per tier and environment.

Reads only the report, VEX and policy files it is given; never prints, never writes.
"""

from __future__ import annotations

from plantops.vulns.gate import DEFAULT_POLICY, GateResult, Policy, evaluate_gate, load_policy
from plantops.vulns.model import SEVERITIES, Vulnerability
from plantops.vulns.readers import Report, read_report, read_vex

__all__ = [
    "DEFAULT_POLICY",
    "SEVERITIES",
    "GateResult",
    "Policy",
    "Report",
    "Vulnerability",
    "evaluate_gate",
    "load_policy",
    "read_report",
    "read_vex",
]

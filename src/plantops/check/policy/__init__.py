"""Policy as code: the platform baseline, CEL rules, exceptions with expiry, formatters
(text, JSON, SARIF 2.1.0, JUnit XML) and the same rules at admission (VAP export).

    docs, skipped, units, raw, files = read_manifest_tree(Path("tree"))
    result = evaluate_policies(docs, ctx, load_policy_config(fleet_root), today=today)
    print(format_sarif(result))
"""

from plantops.check.policy.baseline import BASELINE, baseline_rules
from plantops.check.policy.cel import CelCompileError, VapProgram
from plantops.check.policy.config import PolicyConfig, PolicySettings, UserRule, load_policy_config
from plantops.check.policy.engine import evaluate_policies, read_manifest_tree
from plantops.check.policy.formats import (
    FORMATTERS,
    format_json,
    format_junit,
    format_sarif,
    format_text,
)
from plantops.check.policy.model import (
    Document,
    Finding,
    PolicyContext,
    PolicyException,
    PolicyResult,
    Rule,
    Severity,
    SkippedFile,
    TierInfo,
    UnitInfo,
)
from plantops.check.policy.vap import export_vap, program_of

__all__ = [
    "BASELINE",
    "FORMATTERS",
    "CelCompileError",
    "Document",
    "Finding",
    "PolicyConfig",
    "PolicyContext",
    "PolicyException",
    "PolicyResult",
    "PolicySettings",
    "Rule",
    "Severity",
    "SkippedFile",
    "TierInfo",
    "UnitInfo",
    "UserRule",
    "VapProgram",
    "baseline_rules",
    "evaluate_policies",
    "export_vap",
    "format_json",
    "format_junit",
    "format_sarif",
    "format_text",
    "load_policy_config",
    "program_of",
    "read_manifest_tree",
]

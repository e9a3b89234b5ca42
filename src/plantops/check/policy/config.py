"""The fleet repository's ``policies/``: user rules in CEL, exceptions, settings.

    policies/settings.yaml     registries, thresholds per environment, open egress ports
    policies/exceptions.yaml   exceptions: rule + scope, owner, reason, expires
    policies/*.yaml            rules: id, severity, match, expression, message

Files are read through plantops.inputs (bounded, regular files, no links out of the
repo). A malformed file or a rule whose CEL does not compile is a UserError (exit 2)
with the file, the line and the compiler's message, before any object is checked.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plantops.check.policy.cel import VapProgram
from plantops.check.policy.model import PolicyException, Severity
from plantops.errors import UserError
from plantops.inputs import SPEC_LIMITS, read_text, yaml_documents

SETTINGS_FILE = "settings.yaml"
EXCEPTIONS_FILE = "exceptions.yaml"


@dataclass(frozen=True)
class UserRule:
    id: str
    severity: Severity
    message: str
    remediation: str
    kinds: tuple[str, ...]
    labels: Mapping[str, str]
    program: VapProgram
    file: str
    line: int


@dataclass(frozen=True)
class PolicySettings:
    registries: tuple[str, ...] = ()
    thresholds: Mapping[str, Severity] = field(default_factory=dict)
    default_threshold: Severity = Severity.MEDIUM
    open_egress_ports: tuple[int, ...] = (53, 443, 587, 6443)
    dev_environments: tuple[str, ...] = ("dev",)


@dataclass(frozen=True)
class PolicyConfig:
    settings: PolicySettings = field(default_factory=PolicySettings)
    rules: tuple[UserRule, ...] = ()
    exceptions: tuple[PolicyException, ...] = ()


def _lines(text: str) -> dict[Any, int]:
    """1-based line of each item of each top-level list (``("rules", 0) -> 5``) and of each
    key of such an item (``("rules", 0, "expression") -> 9``)."""
    out: dict[Any, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return out
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(value, yaml.SequenceNode):
                for i, item in enumerate(value.value):
                    out[(str(key.value), i)] = item.start_mark.line + 1
                    if isinstance(item, yaml.MappingNode):
                        for k, _ in item.value:
                            out[(str(key.value), i, str(k.value))] = k.start_mark.line + 1
    return out


def _read(path: Path, shown: str, root: Path) -> tuple[Mapping[str, Any], dict[Any, int]]:
    text = read_text(path, shown, limits=SPEC_LIMITS, root=root)
    try:
        docs = yaml_documents(text, shown, limits=SPEC_LIMITS)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise UserError(f"{shown}:{line}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"{shown}: invalid YAML: {exc}") from exc
    if len(docs) != 1 or not isinstance(docs[0][2], Mapping):
        raise UserError(f"{shown}:1: a policy file is one YAML mapping")
    return docs[0][2], _lines(text)


def _str(item: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = item.get(key, "")
    if (required and not value) or not isinstance(value, str):
        raise UserError(f"{where}: {key} must be a non-empty string")
    return value


def _severity(text: Any, where: str) -> Severity:
    try:
        return Severity.parse(str(text))
    except KeyError:
        names = ", ".join(s.label for s in Severity)
        raise UserError(f"{where}: severity {text!r} is not one of {names}") from None


RULE_KEYS = {
    "id",
    "severity",
    "message",
    "messageExpression",
    "remediation",
    "match",
    "matchConditions",
    "variables",
    "expression",
}
EXCEPTION_KEYS = {"rule", "owner", "reason", "expires", "plant", "environment", "object"}


def _rule(item: Any, where: str, line_of: Callable[[str], int] | None = None) -> UserRule:
    if not isinstance(item, Mapping):
        raise UserError(f"{where}: a rule is a mapping")
    unknown = sorted(set(item) - RULE_KEYS)
    if unknown:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))} (allowed: {', '.join(sorted(RULE_KEYS))})"
        )
    match = item.get("match") or {}
    if not isinstance(match, Mapping) or set(match) - {"kinds", "labels"}:
        raise UserError(f"{where}: match takes kinds: [..] and labels: {{..}}")
    variables = [
        (str(v.get("name")), str(v.get("expression"))) for v in item.get("variables") or ()
    ]
    program = VapProgram(
        variables,
        [
            str(c.get("expression") if isinstance(c, Mapping) else c)
            for c in item.get("matchConditions") or ()
        ],
        [(_str(item, "expression", where), str(item.get("messageExpression", "")))],
    )
    rule_id = _str(item, "id", where)
    file = where.rsplit(":", 1)[0]
    # Each expression is compiled where it is written, so the error names its line.
    for key in ("variables", "matchConditions", "expression", "messageExpression"):
        line = line_of(key) if line_of else int(where.rsplit(":", 1)[1])
        part = VapProgram(
            variables if key == "variables" else [],
            program.match_conditions if key == "matchConditions" else [],
            [(program.validations[0][0], "")] if key == "expression" else [],
        )
        if key == "messageExpression" and program.validations[0][1]:
            part = VapProgram([], [program.validations[0][1]], [])
        part.compile(f"{file}:{line}: {key} of rule {rule_id}")
    return UserRule(
        id=rule_id,
        severity=_severity(item.get("severity", "medium"), where),
        message=_str(item, "message", where, required=False),
        remediation=_str(item, "remediation", where, required=False),
        kinds=tuple(str(k) for k in match.get("kinds") or ()),
        labels={str(k): str(v) for k, v in (match.get("labels") or {}).items()},
        program=program,
        file=where.rsplit(":", 1)[0],
        line=int(where.rsplit(":", 1)[1]),
    )


def _exception(item: Any, where: str, file: str, line: int) -> PolicyException:
    if not isinstance(item, Mapping):
        raise UserError(f"{where}: an exception is a mapping")
    unknown = sorted(set(item) - EXCEPTION_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    expires = item.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            expires = None
    if not isinstance(expires, dt.date):
        raise UserError(f"{where}: expires must be a date (YYYY-MM-DD); exceptions expire")
    return PolicyException(
        rule=_str(item, "rule", where),
        owner=_str(item, "owner", where),
        reason=_str(item, "reason", where),
        expires=expires,
        plant=_str(item, "plant", where, required=False),
        environment=_str(item, "environment", where, required=False),
        object=_str(item, "object", where, required=False),
        file=file,
        line=line,
    )


def _settings(data: Mapping[str, Any], shown: str) -> PolicySettings:
    known = {
        "registries",
        "thresholds",
        "default_threshold",
        "open_egress_ports",
        "dev_environments",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(
            f"{shown}:1: unknown key(s) {', '.join(map(str, unknown))} (allowed: {', '.join(sorted(known))})"
        )
    thresholds = {
        str(k): _severity(v, f"{shown}: thresholds.{k}")
        for k, v in (data.get("thresholds") or {}).items()
    }
    return PolicySettings(
        registries=tuple(str(r).rstrip("/") for r in data.get("registries") or ()),
        thresholds=thresholds,
        default_threshold=_severity(
            data.get("default_threshold", "medium"), f"{shown}: default_threshold"
        ),
        open_egress_ports=tuple(
            int(p) for p in data.get("open_egress_ports", (53, 443, 587, 6443))
        ),
        dev_environments=tuple(str(e) for e in data.get("dev_environments", ("dev",))),
    )


def _line_of(lines: Mapping[Any, int], i: int, start: int, key: str) -> int:
    return lines.get(("rules", i, key), start)


def load_policy_config(root: Path) -> PolicyConfig:
    """``root/policies/`` of a fleet repository (an empty config when there is none)."""
    folder = root / "policies"
    if not folder.is_dir():
        return PolicyConfig()
    settings = PolicySettings()
    rules: list[UserRule] = []
    exceptions: list[PolicyException] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")):
        shown = f"policies/{path.name}"
        data, lines = _read(path, shown, root)
        if path.name == SETTINGS_FILE:
            settings = _settings(data, shown)
            continue
        allowed = {"exceptions"} if path.name == EXCEPTIONS_FILE else {"rules"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise UserError(
                f"{shown}:1: unknown key(s) {', '.join(map(str, unknown))}; expected {', '.join(sorted(allowed))}"
            )
        for i, item in enumerate(data.get("rules") or ()):
            start = lines.get(("rules", i), 1)
            rules.append(
                _rule(
                    item,
                    f"{shown}:{start}",
                    functools.partial(_line_of, lines, i, start),
                )
            )
        for i, item in enumerate(data.get("exceptions") or ()):
            line = lines.get(("exceptions", i), 1)
            exceptions.append(_exception(item, f"{shown}:{line}", shown, line))
    ids = [r.id for r in rules]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise UserError(f"policies/: rule id(s) defined twice: {', '.join(dup)}")
    return PolicyConfig(settings, tuple(rules), tuple(exceptions))


def exception_matches(
    exc: PolicyException, rule: str, plant: str, environment: str, ref: Sequence[str]
) -> bool:
    """Does ``exc`` cover this finding? ``ref`` is (kind, namespace, name)."""
    if exc.rule not in (rule, "*"):
        return False
    if exc.plant and exc.plant != plant:
        return False
    if exc.environment and exc.environment != environment:
        return False
    if exc.object:
        parts = exc.object.split("/")
        want = [parts[0], "", parts[1]] if len(parts) == 2 else parts
        if len(want) != 3:
            return False
        return all(fnmatch.fnmatchcase(got, w) for w, got in zip(want, ref, strict=True))
    return True


__all__ = [
    "PolicyConfig",
    "PolicySettings",
    "UserRule",
    "exception_matches",
    "load_policy_config",
]

"""The policy gate of ``plantops plan``: the baseline and the fleet's CEL rules on the
objects of one rendered deployment (or the fleet-wide files), exceptions applied.

It judges what ``plantops check`` judges, the same way (``evaluate_policies``, the
environment thresholds of ``policies/settings.yaml``): a deployment directory is a
namespace, so the rules over several objects (default-deny, PDB, connection budget,
quota and node fit) see all they need in one deployment. Pure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plantops.check.policy.baseline import BASELINE
from plantops.check.policy.config import PolicyConfig
from plantops.check.policy.engine import (
    EXPIRY_WARNING_DAYS,
    SpecLocator,
    evaluate_policies,
    unit_info,
)
from plantops.check.policy.model import Document, Finding, PolicyContext, PolicyException, Rule


@dataclass(frozen=True)
class PolicyGate:
    """What the gate needs besides the objects: rules, exceptions and thresholds
    (``config``), the fleet facts (``ctx``), the day exceptions expire against, where in
    the spec a finding came from, and the built-in rules to run."""

    config: PolicyConfig
    ctx: PolicyContext
    today: dt.date
    spec_location: SpecLocator | None = None
    rules: tuple[Rule, ...] = BASELINE
    context: tuple[Document, ...] = ()
    """Objects rendered elsewhere that rules read alongside a deployment's (the fleet's
    AppProjects, for the sync-window rule); never reported themselves."""

    def failing(
        self,
        objects: Sequence[tuple[str, int, Mapping[str, Any]]],
        unit: tuple[str, Mapping[str, Any]] | None = None,
    ) -> tuple[Finding, ...]:
        """Findings at their environment's threshold, no unexpired exception covering
        them. ``objects`` are ``(file, document index, object)``; ``unit`` is the
        deployment directory and its ``deployment.json`` data."""
        docs = [Document(file, index, obj) for file, index, obj in objects]
        mine = {d.file for d in docs}
        ctx = self.ctx
        if unit is not None:
            info = unit_info(unit[1])
            if info is not None:
                ctx = dataclasses.replace(ctx, units={unit[0]: info})
        context = [d for d in self.context if d.file not in mine]
        result = evaluate_policies(
            [*context, *docs],
            ctx,
            self.config,
            today=self.today,
            rules=self.rules,
            spec_location=self.spec_location,
        )
        return tuple(f for f in result.failing if f.file in mine)

    def exception_notices(self) -> tuple[tuple[PolicyException, str], ...]:
        """The exceptions to tell the plan's reader about, with why: expiring within
        ``EXPIRY_WARNING_DAYS`` (renew or fix before then), or expired (it covers
        nothing any more: what it covered fails the gate, else it can go)."""
        soon = self.today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
        notices = []
        for e in sorted(self.config.exceptions, key=lambda e: (e.file, e.line)):
            if e.expires < self.today:
                notices.append((e, f"expired on {e.expires.isoformat()}: it no longer applies"))
            elif e.expires <= soon:
                days = (e.expires - self.today).days
                notices.append((e, f"expires in {days} day(s) ({e.expires.isoformat()})"))
        return tuple(notices)


def document_lines(text: str) -> list[int]:
    """The 1-based line of each YAML document's first content line in ``text``."""
    starts: list[int] = []
    open_doc = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("---"):
            open_doc = False
        elif not open_doc and line.strip() and not line.lstrip().startswith("#"):
            starts.append(number)
            open_doc = True
    return starts


def with_lines(findings: Sequence[Finding], texts: Mapping[str, str]) -> tuple[Finding, ...]:
    """``findings`` with the line of their document in the file texts given."""
    lines: dict[str, list[int]] = {}
    out = []
    for f in findings:
        if f.file not in lines:
            lines[f.file] = document_lines(texts.get(f.file, ""))
        starts = lines[f.file]
        line = starts[f.index] if f.index < len(starts) else 0
        out.append(dataclasses.replace(f, line=line))
    return tuple(out)


__all__ = ["PolicyGate", "document_lines", "with_lines"]

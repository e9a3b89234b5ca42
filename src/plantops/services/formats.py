"""Formatters for ``plan`` results: ``format_*(result) -> str`` and the rows a table shows.

One result (:class:`~plantops.services.PlanResult`), several readers: the JSON document
(``--format json``), and the human summary (rows for a table, the lines under it). They
take data and return text or plain rows; the CLI only prints them (it owns the Rich
table), so the server can reuse the same functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plantops.services import PlanResult

# Beyond this many plants the table stops helping a human; JSON carries everything.
MAX_TABLE_ROWS = 30
MAX_RESTORED_NAMES = 10
PLAN_COLUMNS = (
    "plant",
    "tier",
    "pattern",
    "envs",
    "cluster",
    "prod web×workers",
    "monthly",
    "changes",
    "why",
)
"""The summary table's columns (``monthly`` is right-aligned)."""


def plan_rows(res: PlanResult, only: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per plant (only ``only`` when given): tier, pattern, placement, production
    sizing, the fleet model's monthly cost and what this run changed for it."""
    changes = res.tree.by_plant()
    rows = []
    for c in res.plan.classifications:
        if only and c.plant not in only:
            continue
        deps = res.plan.for_plant(c.plant)
        prod = next((d for d in deps if d.production), deps[-1] if deps else None)
        # The fleet model's figure: node pools priced as nodes, the platform allocated.
        cost = (
            res.cost.for_plant(c.plant)
            if res.cost is not None
            else sum(d.cost_by_plant[c.plant].total_month for d in deps)
        )
        rows.append(
            {
                "plant": c.plant,
                "tier": c.tier,
                "pattern": c.pattern,
                "environments": [d.environment.name for d in deps],
                "cluster": prod.cluster.name if prod and prod.cluster else "vm",
                "prod_workers": (
                    f"{prod.sizing.web_replicas}x{prod.sizing.workers}" if prod else "-"
                ),
                "monthly_cost": round(cost, 2),
                "currency": res.plan.fleet.spec.pricing.currency,
                "reasons": [r.rule for r in c.reasons],
                "changes": changes.get(c.plant, {}),
            }
        )
    return rows


def format_plan_json(res: PlanResult, only: Sequence[str] = ()) -> str:
    summary = res.tree
    return json.dumps(
        {
            "out": str(summary.out),
            "dry_run": summary.dry_run,
            "plants": plan_rows(res, only),
            "deployments": [
                {
                    "id": d.id,
                    "dir": d.dir,
                    "plants": [t.plant for t in d.tenants],
                    "environment": d.environment.name,
                    "tier": d.tier,
                    "pattern": d.pattern,
                    "cluster": d.cluster.name if d.cluster else None,
                    "namespace": d.namespace,
                    "web_replicas": d.sizing.web_replicas,
                    "workers": d.sizing.workers,
                    "cost": d.cost.as_dict(),
                }
                for d in res.plan.deployments
            ],
            "changes": [c.__dict__ for c in summary.changes],
            "rendered": summary.rendered,
            "reused": summary.reused,
            "files": summary.files,
            "written": summary.written,
            "restored": summary.restored,
        },
        indent=2,
        sort_keys=True,
    )


def touched(changes: object) -> bool:
    """Did this run add, change or remove something for the plant?"""
    return isinstance(changes, dict) and any(v for k, v in changes.items() if k != "unchanged")


@dataclass(frozen=True)
class PlanSummary:
    """The human summary: table rows (strings, in :data:`PLAN_COLUMNS` order) and the
    lines printed under the table."""

    rows: list[tuple[str, ...]]
    notes: list[str]


def plan_summary(res: PlanResult, only: Sequence[str] = ()) -> PlanSummary:
    summary = res.tree
    rows = plan_rows(res, only)
    # plants this run added, changed or removed something for come first
    ordered = sorted(rows, key=lambda r: not touched(r["changes"]))
    shown, hidden = ordered[:MAX_TABLE_ROWS], len(rows) - MAX_TABLE_ROWS
    table: list[tuple[str, ...]] = []
    for r in shown:
        ch = r["changes"]
        changed = (
            ", ".join(f"{v} {k}" for k, v in ch.items() if v and k != "unchanged") or "unchanged"
        )
        table.append(
            (
                str(r["plant"]),
                str(r["tier"]),
                str(r["pattern"]),
                str(len(r["environments"])),
                str(r["cluster"]),
                str(r["prod_workers"]),
                f"{r['monthly_cost']:,.2f} {r['currency']}",
                changed,
                " ".join(r["reasons"]),
            )
        )
    notes: list[str] = []
    if hidden > 0:
        notes.append(
            f"… and {hidden} more plants, all unchanged (use --format json for all of them)"
            if not any(touched(r["changes"]) for r in ordered[MAX_TABLE_ROWS:])
            else f"… and {hidden} more plants (use --format json for all of them)"
        )
    total = sum(float(str(r["monthly_cost"])) for r in rows)
    if summary.restored:
        shown_paths = ", ".join(summary.restored[:MAX_RESTORED_NAMES])
        more = len(summary.restored) - MAX_RESTORED_NAMES
        n = len(summary.restored)
        notes.append(
            f"{'would restore' if summary.dry_run else 'restored'} {n} hand-edited "
            f"file{'s' if n != 1 else ''}: {shown_paths}"
            + (f" … and {more} more" if more > 0 else "")
        )
    written = f"{summary.written} file{'s' if summary.written != 1 else ''}"
    notes.append(
        f"{written} {'would be written' if summary.dry_run else 'written'} to {summary.out} "
        f"({summary.files} in the tree) — {summary.rendered} deployments rendered, "
        f"{summary.reused} unchanged; fleet total {total:,.2f} "
        f"{res.plan.fleet.spec.pricing.currency}/month"
    )
    return PlanSummary(table, notes)

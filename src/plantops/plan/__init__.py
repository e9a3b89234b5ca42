"""From a loaded fleet to deployments: classify, place, size — pure, no I/O."""

from plantops.plan.deployments import Deployment, PinnedRelease, Plan, PlanMemo, Tenant, build_plan

__all__ = ["Deployment", "PinnedRelease", "Plan", "PlanMemo", "Tenant", "build_plan"]

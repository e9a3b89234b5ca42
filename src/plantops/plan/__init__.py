"""From a loaded fleet to deployments: classify, place, size — pure, no I/O."""

from plantops.plan.deployments import Deployment, Plan, PlanMemo, Tenant, build_plan

__all__ = ["Deployment", "Plan", "PlanMemo", "Tenant", "build_plan"]

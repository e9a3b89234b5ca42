"""Argo CD sync policy: the production of a change-controlled plant waits for the
release gates; everything else syncs automatically with self-heal."""

from __future__ import annotations

from typing import Any

from plantops.plan import Deployment
from tests.render.conftest import Rendered

POLICY_KEYS = {"retry", "syncOptions"}


def _applications(example: Rendered) -> list[tuple[Deployment, dict[str, Any]]]:
    return [(d, o) for d, _p, o in example.objects if o["kind"] == "Application"]


def test_regulated_production_has_no_automated_sync(example: Rendered) -> None:
    manual = {
        d.id for d, app in _applications(example) if "automated" not in app["spec"]["syncPolicy"]
    }
    # lyon-meddev (FDA 21 CFR Part 11, ISO 13485, GxP) and detroit-stamping (IATF 16949)
    assert manual == {
        "eu-lyon-meddev/lyon-meddev-prod",
        "us-detroit-auto/detroit-stamping-prod",
    }


def test_every_application_keeps_retry_and_sync_options(example: Rendered) -> None:
    for dep, app in _applications(example):
        policy = app["spec"]["syncPolicy"]
        assert set(policy) >= POLICY_KEYS, dep.id
        gated = dep.production and any(c.production_sync == "manual" for c in dep.classifications)
        if not gated:
            assert policy["automated"] == {"prune": True, "selfHeal": True}, dep.id


def test_regulated_plant_stages_before_production_sync_automatically(example: Rendered) -> None:
    lyon = [(d, app) for d, app in _applications(example) if d.unit == "lyon-meddev"]
    assert {d.environment.name for d, _ in lyon} == {"dev", "test", "staging", "prod"}
    for dep, app in lyon:
        assert ("automated" in app["spec"]["syncPolicy"]) is (not dep.production), dep.id

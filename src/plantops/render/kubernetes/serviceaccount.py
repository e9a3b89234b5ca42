"""The ServiceAccount Odoo runs as: no API token mounted (Odoo never talks to Kubernetes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import WAVE_FOUNDATION, name, wave

if TYPE_CHECKING:
    from plantops.plan import Deployment


def odoo_service_account(dep: Deployment) -> str:
    return name(dep, "odoo")


def render_service_accounts(dep: Deployment) -> list[dict[str, Any]]:
    return [
        k8s_object(
            dep,
            "v1",
            "ServiceAccount",
            sa,
            component,
            annotations=wave(WAVE_FOUNDATION),
            body={"automountServiceAccountToken": False},
        )
        for sa, component in ((odoo_service_account(dep), "odoo"), (name(dep, "redis"), "redis"))
    ]

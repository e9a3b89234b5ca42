"""The ConfigMap that carries ``odoo.conf`` for web and cron."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import k8s_object
from plantops.render.kubernetes.common import WAVE_FOUNDATION, wave
from plantops.render.odoo_conf import render_odoo_conf

if TYPE_CHECKING:
    from plantops.plan import Deployment


def odoo_config_name(dep: Deployment) -> str:
    return f"{dep.unit}-odoo-conf"


def render_odoo_configmap(dep: Deployment) -> dict[str, Any]:
    return k8s_object(
        dep,
        "v1",
        "ConfigMap",
        odoo_config_name(dep),
        "odoo",
        annotations=wave(WAVE_FOUNDATION),
        body={
            "data": {
                "odoo-cron.conf": render_odoo_conf(dep, cron=True),
                "odoo.conf": render_odoo_conf(dep),
            }
        },
    )

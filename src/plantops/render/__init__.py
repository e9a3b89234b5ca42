"""Rendering: deployments → files. Pure: returns text, never writes."""

from plantops.render.assemble import (
    RenderedDeployment,
    render_components,
    render_deployment,
    render_deployment_full,
    render_fleet_files,
    render_fleet_objects,
    render_kubernetes_objects,
)
from plantops.render.context import RenderContext
from plantops.render.core import RenderedFile, dump_yaml, standard_labels

__all__ = [
    "RenderContext",
    "RenderedDeployment",
    "RenderedFile",
    "dump_yaml",
    "render_components",
    "render_deployment",
    "render_deployment_full",
    "render_fleet_files",
    "render_fleet_objects",
    "render_kubernetes_objects",
    "standard_labels",
]

"""Argo CD: one ApplicationSet per cluster generating one Application per deployment,
AppProjects and sync windows."""

from plantops.render.argocd.application import (
    application_name,
    project_name,
    render_application,
    target_revision,
)
from plantops.render.argocd.applicationset import (
    applicationset_name,
    generator_glob,
    render_applicationset,
)
from plantops.render.argocd.project import render_projects
from plantops.render.argocd.windows import sync_windows

__all__ = [
    "application_name",
    "applicationset_name",
    "generator_glob",
    "project_name",
    "render_application",
    "render_applicationset",
    "render_projects",
    "sync_windows",
    "target_revision",
]

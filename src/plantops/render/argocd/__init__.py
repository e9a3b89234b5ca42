"""Argo CD: AppProjects, one Application per deployment, and sync windows."""

from plantops.render.argocd.application import (
    application_name,
    project_name,
    render_application,
)
from plantops.render.argocd.project import render_projects
from plantops.render.argocd.windows import sync_windows

__all__ = [
    "application_name",
    "project_name",
    "render_application",
    "render_projects",
    "sync_windows",
]

"""Rendering: deployments → files. Pure: returns text, never writes."""

from plantops.render.core import RenderedFile, dump_yaml, standard_labels
from plantops.render.tree import render_deployment

__all__ = ["RenderedFile", "dump_yaml", "render_deployment", "standard_labels"]

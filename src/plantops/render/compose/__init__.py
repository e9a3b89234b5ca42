"""Docker Compose rendering for plants on a single VM (``runtime: vm``)."""

from plantops.render.compose.stack import render_vm_files

__all__ = ["render_vm_files"]

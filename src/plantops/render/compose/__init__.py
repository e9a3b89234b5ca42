"""Docker Compose rendering for plants on a single VM (``runtime: vm``)."""

from plantops.render.compose.stack import render_vm_files
from plantops.render.compose.validate import validate_compose

__all__ = ["render_vm_files", "validate_compose"]

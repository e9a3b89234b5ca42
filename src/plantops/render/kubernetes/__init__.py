"""Kubernetes renderers, one module per component."""

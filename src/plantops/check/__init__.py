"""Checks over rendered manifests: pure functions from manifests to findings.

``check`` may import ``plantops.model``, ``plantops.spec`` and ``plantops.errors``
only; it never prints, exits or talks to a cluster.
"""

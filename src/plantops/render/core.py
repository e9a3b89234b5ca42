"""Shared pieces of every renderer: the file type, labels, deterministic serialisation."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plantops.render.yamlout import emit_yaml

if TYPE_CHECKING:
    from plantops.plan import Deployment

MANAGED_BY = "plantops"


@dataclass(frozen=True)
class RenderedFile:
    """One output file, path relative to the tree root (POSIX separators)."""

    path: str
    content: str


def dump_yaml(obj: Mapping[str, Any]) -> str:
    """Serialise one object; key order is the order the renderer built it in."""
    return emit_yaml(obj)


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def standard_labels(dep: Deployment, component: str, plant: str | None = None) -> dict[str, str]:
    """The labels every object carries (Kubernetes recommended + plantops.io/*)."""
    labels = {
        "app.kubernetes.io/name": "odoo",
        "app.kubernetes.io/instance": dep.namespace,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "plantops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": dep.series,
        "plantops.io/plant": plant or dep.unit,
        "plantops.io/environment": dep.environment.name,
        "plantops.io/tier": dep.tier,
        "plantops.io/pattern": dep.pattern,
    }
    return labels


def k8s_object(
    dep: Deployment,
    api_version: str,
    kind: str,
    name: str,
    component: str,
    *,
    namespaced: bool = True,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = dep.namespace
    meta["labels"] = {**standard_labels(dep, component), **(labels or {})}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **(body or {})}


def dump_yaml_documents(objects: Sequence[Mapping[str, Any]]) -> str:
    """Several objects as one multi-document YAML stream: documents separated by a
    ``---`` line, no leading separator, a final newline."""
    return "---\n".join(dump_yaml(obj) for obj in objects)


def component_file(
    dep: Deployment, component: str, objects: Sequence[Mapping[str, Any]]
) -> RenderedFile:
    """``<deployment dir>/<component>.yaml``: a component's objects, in apply order."""
    return RenderedFile(f"{dep.dir}/{component}.yaml", dump_yaml_documents(objects))

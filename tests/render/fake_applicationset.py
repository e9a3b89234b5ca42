"""A fake of Argo CD's ApplicationSet controller, for the subset plantops renders.

Argo CD cannot run here, so this reproduces what the controller does with a Git files
generator, Go templates and a templatePatch, from its source (argo-cd v3):

* applicationset/generators/git.go ``GitGenerator.generateParamsForGitFiles``: the files
  matching each ``files[].path`` (``git ls-files -- <pattern>``: ``*`` also matches
  ``/``), sorted by path; ``generateParamsFromGitFile`` parses each as YAML/JSON and,
  with ``goTemplate``, adds the ``path`` parameter (it overwrites a ``path`` key).
* applicationset/utils/utils.go ``Render.RenderTemplateParams``: every template string
  rendered, then ``resources-finalizer`` added when the template has no finalizers and
  ``preserveResourcesOnDeletion`` is false.
* applicationset/controllers/template/patch.go ``applyTemplatePatch``: the rendered
  patch strategically merged (maps merge, lists are replaced: the Application types
  carry no merge keys), then ``spec.project`` reset to the template's.
* controllers/template/template.go ``GenerateApplications``: the namespace forced to
  the ApplicationSet's.

Only the template syntax plantops writes is understood; anything else fails loudly, so
a change of the rendered ApplicationSet cannot pass unnoticed.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import yaml

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
_FIELD = re.compile(r"\{\{ \.([A-Za-z0-9_.]+) \}\}")
_PICK_TO_JSON = re.compile(r'^\{\{ toJson \(pick \. ((?:"[A-Za-z]+" ?)+)\) \}\}$')


class TemplateError(Exception):
    pass


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    value: Any = params
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise TemplateError(f"map has no entry for key {key!r} ({dotted})")  # missingkey=error
        value = value[key]
    return value


def _render_string(text: str, params: Mapping[str, Any]) -> str:
    if "{{" not in text:
        return text
    rendered = _FIELD.sub(lambda m: str(_lookup(params, m.group(1))), text)
    if "{{" in rendered:
        raise TemplateError(f"template syntax the fake does not know: {text!r}")
    return rendered


def _render(node: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(node, str):
        return _render_string(node, params)
    if isinstance(node, list):
        return [_render(v, params) for v in node]
    if isinstance(node, dict):
        return {k: _render(v, params) for k, v in node.items()}
    return node


def _render_patch(text: str, params: Mapping[str, Any]) -> dict[str, Any]:
    m = _PICK_TO_JSON.match(text)
    if m is None:
        raise TemplateError(f"templatePatch syntax the fake does not know: {text!r}")
    keys = re.findall(r'"([A-Za-z]+)"', m.group(1))
    out: dict[str, Any] = json.loads(json.dumps({k: params[k] for k in keys if k in params}))
    return out


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(patch)


def generate_applications(appset: dict[str, Any], tree: Mapping[str, str]) -> list[dict[str, Any]]:
    """The Applications ``appset`` generates from the files of ``tree`` ({path: text})."""
    spec = appset["spec"]
    assert spec.get("goTemplate") is True, "the fake only knows Go templates"
    assert spec.get("goTemplateOptions") == ["missingkey=error"]
    preserve = spec.get("syncPolicy", {}).get("preserveResourcesOnDeletion", False)
    apps = []
    for generator in spec["generators"]:
        (kind,) = generator
        assert kind == "git", kind
        git = generator["git"]
        paths = sorted(p for p in tree for f in git["files"] if fnmatch.fnmatchcase(p, f["path"]))
        for path in paths:
            params = dict(yaml.safe_load(tree[path]))
            directory = posixpath.dirname(path)
            params["path"] = {
                "path": directory,
                "basename": posixpath.basename(directory),
                "filename": posixpath.basename(path),
                "segments": directory.split("/"),
            }
            template = spec["template"]
            app: dict[str, Any] = {
                "metadata": _render(template["metadata"], params),
                "spec": _render(template["spec"], params),
            }
            if not app["metadata"].get("finalizers") and not preserve:
                app["metadata"]["finalizers"] = [RESOURCES_FINALIZER]
            if "templatePatch" in spec:
                project = app["spec"]["project"]
                app = _merge(app, _render_patch(spec["templatePatch"], params))
                app["spec"]["project"] = project
            app["metadata"]["namespace"] = appset["metadata"]["namespace"]
            apps.append(app)
    return apps

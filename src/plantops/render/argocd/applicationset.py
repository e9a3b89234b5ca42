"""One ApplicationSet per cluster: the registrar of that cluster's Applications.

Argo CD's Git files generator reads every ``argocd/applications/<cluster>/*.json`` of
the tree; each file is one deployment's Application as ``render_application`` builds
it. The template names the fields an Application needs, and ``templatePatch`` lays the
file's whole ``metadata`` and ``spec`` over it, so the generated Application is the one
in the file and ``render_application`` stays its only definition. A deployment's file
appears when it is planned and disappears when it is not, so Applications follow the
tree: no orphan Application outlives its deployment.

Deletion never costs data:

* ``preserveResourcesOnDeletion: true``: the generated Applications get no
  ``resources-finalizer`` (argo-cd applicationset/utils/utils.go
  ``Render.RenderTemplateParams`` adds it only when this is false and the template has
  none), so when the ApplicationSet deletes an Application (its deployment left the
  tree or was renamed), or the ApplicationSet itself is deleted and Kubernetes collects
  its Applications, nothing is deleted in the cluster. A renamed or removed deployment
  leaves its namespace running, unmanaged, until a human removes it (docs: "Argo CD").
* Not ``applicationsSync: create-update``: it would leave exactly the orphan
  Applications this replaces, and the controller honours the field only when started
  with ``--enable-policy-override`` (applicationset/utils/policy.go ``DefaultPolicy``).
* A human ``argocd app delete`` does cascade (argo-cd server/application/application.go
  ``Server.Delete`` sets the finalizer when ``cascade`` is true, the CLI default); the Namespace
  and every object holding data carry ``Prune=false,Delete=false``
  (``render.kubernetes.common.PROTECTED_SYNC_OPTIONS``), so that deletes workloads only.

The set is bounded: its size does not depend on the number of deployments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plantops.render.core import MANAGED_BY

if TYPE_CHECKING:
    from plantops.render.context import RenderContext

ARGOCD_DIR = "argocd"

# Only the project cannot come from the patch (argo-cd applicationset/controllers/
# template/patch.go applyTemplatePatch resets it to the template's), so the template
# names it; the patch is a strategic merge of the file's metadata and spec (maps merge,
# these lists are replaced), leaving the generated Application equal to the file's.
# toJson and pick are sprig's (applicationset/utils/utils.go loads sprig.GenericFuncMap).
TEMPLATE_PATCH = '{{ toJson (pick . "metadata" "spec") }}'


def generator_glob(cluster: str) -> str:
    """Where a cluster's generator files are, as the Git files generator matches them."""
    return f"{ARGOCD_DIR}/applications/{cluster}/*.json"


def applicationset_name(cluster: str) -> str:
    return f"plantops-{cluster}"


def render_applicationset(cluster: str, ctx: RenderContext) -> dict[str, Any]:
    """The ApplicationSet generating every Application of one cluster."""
    template = {
        "metadata": {"name": "{{ .metadata.name }}"},
        "spec": {
            "destination": {
                "name": "{{ .spec.destination.name }}",
                "namespace": "{{ .spec.destination.namespace }}",
            },
            "project": "{{ .spec.project }}",
            "source": {
                "path": "{{ .spec.source.path }}",
                "repoURL": "{{ .spec.source.repoURL }}",
                "targetRevision": "{{ .spec.source.targetRevision }}",
            },
        },
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "labels": {
                "app.kubernetes.io/component": "gitops",
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "app.kubernetes.io/name": "odoo",
                "app.kubernetes.io/part-of": "plantops",
                "plantops.io/cluster": cluster,
            },
            "name": applicationset_name(cluster),
            "namespace": ctx.platform.argocd_namespace,
        },
        "spec": {
            "generators": [
                {
                    "git": {
                        # The registrar reads the fleet's revision; each Application then
                        # deploys its environment's (spec.source.targetRevision).
                        "files": [{"path": generator_glob(cluster)}],
                        "repoURL": ctx.gitops_repo,
                        "revision": ctx.platform.gitops_revision,
                    }
                }
            ],
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "syncPolicy": {"preserveResourcesOnDeletion": True},
            "template": template,
            "templatePatch": TEMPLATE_PATCH,
        },
    }

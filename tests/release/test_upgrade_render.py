"""Pinned deployments render the pinned image and their upgrade; the others are unchanged."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantops import services
from plantops.errors import SpecError
from plantops.release.pins import next_pin, read_pin, rollback_pin, write_pin
from tests.conftest import TODAY, compare_or_update_tree
from tests.release.pinned_fleet import FLEET, PROD

GOLDEN = FLEET.parent
UNPINNED = GOLDEN.parent / "render-dedicated-namespace"
PROD_DIR = "clusters/us-shared-1/monterrey-assembly-prod"
DEV_DIR = "clusters/us-shared-1/monterrey-assembly-dev"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pinned") / "out"
    services.plan_fleet(FLEET, out, today=TODAY)
    return out


def test_matches_golden(tree: Path, update_golden: bool) -> None:
    compare_or_update_tree(tree, GOLDEN / "expected", update_golden)


def test_pinned_image_and_annotations(tree: Path) -> None:
    pin = PROD[-1]
    odoo = {
        d["metadata"]["name"]: d
        for d in _docs(tree / PROD_DIR / "odoo.yaml")
        if d["kind"] == "Deployment"
    }
    web = odoo["monterrey-assembly-odoo-web"]
    pod = web["spec"]["template"]
    assert pod["spec"]["containers"][0]["image"] == pin.image
    assert all(c["image"] == pin.image for c in pod["spec"]["initContainers"])
    assert pod["metadata"]["annotations"]["plantops.io/release"] == pin.release
    assert pod["metadata"]["annotations"]["plantops.io/release-config-sha256"] == pin.config
    assert web["spec"]["strategy"] == {"type": "Recreate"}  # a migrating release
    dev_web = next(d for d in _docs(tree / DEV_DIR / "odoo.yaml") if d["kind"] == "Deployment")
    unpinned_dev = next(
        d for d in _docs(UNPINNED / "expected" / DEV_DIR / "odoo.yaml") if d["kind"] == "Deployment"
    )
    assert dev_web["spec"]["strategy"] == unpinned_dev["spec"]["strategy"]  # image only
    deployment = json.loads((tree / PROD_DIR / "deployment.json").read_text())
    assert deployment["image"] == pin.image
    assert deployment["release"]["update_modules"] == ["acme_mrp", "mrp"]


def test_upgrade_hooks_are_ordered_presync(tree: Path) -> None:
    hooks = _docs(tree / PROD_DIR / "upgrade.yaml")
    assert [h["kind"] for h in hooks] == ["Backup", "Job"]
    backup, job = hooks
    for hook in hooks:
        ann = hook["metadata"]["annotations"]
        assert ann["argocd.argoproj.io/hook"] == "PreSync"
        assert ann["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    assert int(backup["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < int(
        job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
    )
    assert backup["spec"]["cluster"]["name"] == "monterrey-assembly-pg"
    assert backup["spec"]["method"] == "plugin"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 3600
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == PROD[-1].image
    script = container["command"][2]
    assert "--update=acme_mrp,mrp" in script and "--stop-after-init" in script
    assert "--config='/etc/odoo/odoo-cron.conf'" in script
    assert container["command"][-1] == "monterrey-assembly"  # the tenant database
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert spec["template"]["spec"]["automountServiceAccountToken"] is False
    # dev: a new image without module changes — a backup, no upgrade Job
    assert [h["kind"] for h in _docs(tree / DEV_DIR / "upgrade.yaml")] == ["Backup"]
    kustomization = yaml.safe_load((tree / PROD_DIR / "kustomization.yaml").read_text())
    assert "upgrade.yaml" in kustomization["resources"]


def test_unpinned_deployments_unchanged() -> None:
    """The same fleet without pins renders exactly the unpinned golden (state aside)."""
    want = UNPINNED / "expected" / PROD_DIR
    got = GOLDEN / "expected" / PROD_DIR
    assert (want / "namespace.yaml").read_text() == (got / "namespace.yaml").read_text()
    assert (want / "odoo.yaml").read_text() != (got / "odoo.yaml").read_text()
    assert not (want / "upgrade.yaml").exists()


def test_pin_change_rerenders_only_that_deployment(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    out = tmp_path / "out"
    services.plan_fleet(fleet, out, today=TODAY)
    before = {p: p.read_bytes() for p in (out / DEV_DIR).rglob("*")}
    pin = read_pin(fleet, "monterrey-assembly", "prod")
    assert pin is not None
    back = rollback_pin(pin, at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    write_pin(fleet, back, replaces=pin)
    result = services.plan_fleet(fleet, out, today=TODAY)
    assert result.tree.rendered == 1
    assert {p: p.read_bytes() for p in (out / DEV_DIR).rglob("*")} == before
    # the rolled-back release changes only the image: backup, no module update
    assert [h["kind"] for h in _docs(out / PROD_DIR / "upgrade.yaml")] == ["Backup"]


def test_pin_stored_under_another_plant(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(FLEET, fleet)
    (fleet / "releases" / "monterrey-assembly").rename(fleet / "releases" / "nowhere")
    with pytest.raises(SpecError) as exc:
        services.plan_fleet(fleet, tmp_path / "out", today=TODAY)
    assert "stored as nowhere" in str(exc.value)


def test_tenant_group_is_pinned_together(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(GOLDEN.parent / "render-shared-multitenant" / "fleet", fleet)
    pin = next_pin(None, PROD[0], plant="brno-components", environment="prod")
    write_pin(fleet, pin, replaces=None)
    with pytest.raises(SpecError) as exc:
        services.plan_fleet(fleet, tmp_path / "out", today=TODAY)
    assert "share deployment" in str(exc.value) and "1 of 2 are pinned" in str(exc.value)
    write_pin(
        fleet, next_pin(None, PROD[0], plant="gdansk-packaging", environment="prod"), replaces=None
    )
    services.plan_fleet(fleet, tmp_path / "out", today=TODAY)
    web = next(
        d
        for d in _docs(
            tmp_path
            / "out/clusters"
            / next(p.name for p in (tmp_path / "out/clusters").iterdir())
            / "shared-eu-subsidiaries-prod/odoo.yaml"
        )
        if d["kind"] == "Deployment"
    )
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == PROD[0].image
    orphan = next_pin(None, PROD[0], plant="nobody", environment="prod")
    write_pin(fleet, orphan, replaces=None)
    with pytest.raises(SpecError, match="no deployment serves plant nobody"):
        services.plan_fleet(fleet, tmp_path / "out", today=TODAY)

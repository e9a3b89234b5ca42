"""Argo CD: what registers the Applications, what deleting one costs, what scales."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
import shutil
from pathlib import Path
from typing import Any

import pytest
from benchmarks.plan_fleet import generate_fleet

from plantops import services
from plantops.errors import SpecError
from plantops.plan import Deployment, build_plan
from plantops.render import RenderContext, render_deployment_full, render_fleet_objects
from plantops.render.argocd import render_application
from tests.conftest import EXAMPLE, TODAY
from tests.render.conftest import Rendered, render_fleet
from tests.render.fake_applicationset import generate_applications

SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
GENERATE_PATHS = "argocd.argoproj.io/manifest-generate-paths"
# kubectl apply (client side) stores the whole object in this annotation, and the API
# server rejects annotations over 256 KiB in total (apimachinery
# pkg/api/validation/objectmeta.go TotalAnnotationSizeLimitB); far below etcd's request
# limit (1.5 MiB by default), so an object that fits it fits etcd too.
LAST_APPLIED_LIMIT = 262_144


def _holds_data(obj: dict[str, Any]) -> bool:
    kind = obj["kind"]
    if kind in ("Namespace", "PersistentVolumeClaim"):
        return True
    group = obj["apiVersion"].split("/")[0]
    if group == "postgresql.cnpg.io" and kind in ("Cluster", "Database"):
        return True
    if group == "barmancloud.cnpg.io" and kind == "ObjectStore":
        return True  # where the base backups and WAL are written
    return kind == "StatefulSet" and bool(obj["spec"].get("volumeClaimTemplates"))


def _options(obj: dict[str, Any]) -> set[str]:
    text = obj["metadata"].get("annotations", {}).get(SYNC_OPTIONS, "")
    return {o.strip() for o in text.split(",") if o.strip()}


def _apps_dir(files: dict[str, str], cluster: str) -> dict[str, str]:
    return {p: t for p, t in files.items() if p.startswith(f"argocd/applications/{cluster}/")}


def _appsets(example: Rendered) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["labels"]["plantops.io/cluster"]: o
        for _, o in example.fleet_objects
        if o["kind"] == "ApplicationSet"
    }


# --- item 8: deleting or renaming an Application never deletes data -----------------


def test_every_object_holding_data_is_never_pruned_or_deleted(example: Rendered) -> None:
    held: dict[str, set[str]] = {}
    for dep, path, obj in example.objects:
        if _holds_data(obj):
            held.setdefault(dep.id, set()).add(obj["kind"])
            assert {"Prune=false", "Delete=false"} <= _options(obj), (path, obj["kind"])
            assert not {"Prune=confirm", "Delete=confirm"} & _options(obj), path
    kubernetes = {d.id for d in example.deployments if d.cluster is not None}
    # every environment, not only production: each has its namespace and database
    assert set(held) == kubernetes
    assert all({"Namespace", "Cluster", "Database"} <= kinds for kinds in held.values())
    assert any("PersistentVolumeClaim" in k for k in held.values())
    assert any("StatefulSet" in k for k in held.values())


def test_generated_applications_never_cascade(example: Rendered) -> None:
    appsets = _appsets(example)
    assert appsets
    for cluster, appset in appsets.items():
        assert appset["spec"]["syncPolicy"]["preserveResourcesOnDeletion"] is True
        assert "finalizers" not in appset["spec"]["template"]["metadata"]
        # the default policy (sync) deletes the Application of a removed deployment
        assert "applicationsSync" not in appset["spec"]["syncPolicy"]
        apps = generate_applications(appset, _apps_dir(example.files, cluster))
        assert apps
        assert all("finalizers" not in a["metadata"] for a in apps), cluster


# --- issue #9: one registrar per cluster ----------------------------------------------


def test_one_applicationset_per_cluster_generates_exactly_its_applications(
    example: Rendered,
) -> None:
    appsets = _appsets(example)
    by_cluster: dict[str, list[Deployment]] = {}
    for dep in example.deployments:
        if dep.cluster is not None:
            by_cluster.setdefault(dep.cluster.name, []).append(dep)
    assert set(appsets) == set(by_cluster)
    for cluster, deps in by_cluster.items():
        apps = generate_applications(appsets[cluster], example.files)  # the whole tree
        expected = sorted(
            (render_application(d, example.ctx) for d in deps),
            key=lambda a: a["metadata"]["name"],
        )
        assert [a["metadata"]["name"] for a in apps] == [a["metadata"]["name"] for a in expected]
        for app, want in zip(apps, expected, strict=True):
            assert app == {"metadata": want["metadata"], "spec": want["spec"]}
            assert app["spec"]["destination"]["name"] == cluster


def test_a_removed_deployment_loses_its_application(example: Rendered) -> None:
    appset = _appsets(example)["eu-shared-1"]
    files = _apps_dir(example.files, "eu-shared-1")
    gone = next(p for p in files if p.endswith("-porto-plastics-dev.json"))
    before = {a["metadata"]["name"] for a in generate_applications(appset, files)}
    after = {
        a["metadata"]["name"]
        for a in generate_applications(appset, {p: t for p, t in files.items() if p != gone})
    }
    assert before - after == {"eu-shared-1-porto-plastics-dev"}


def test_no_application_manifest_is_left_to_apply_by_hand(example: Rendered) -> None:
    registrar = [p for p in example.files if p.startswith("argocd/")]
    assert registrar and all(p.endswith(".json") for p in registrar)
    for path in registrar:
        assert json.loads(example.files[path])["kind"] == "Application"


def test_applications_only_refresh_on_their_own_directory(example: Rendered) -> None:
    for dep in example.deployments:
        if dep.cluster is None:
            continue
        app = render_application(dep, example.ctx)
        paths = app["metadata"]["annotations"][GENERATE_PATHS].split(";")
        source = app["spec"]["source"]["path"]
        # argo-cd util/app/path/path.go GetSourceRefreshPaths: relative to the source
        assert [posixpath.normpath(posixpath.join(source, p)) for p in paths] == [dep.dir]


def test_appprojects_are_per_unit_and_hold_only_their_applications(example: Rendered) -> None:
    projects = {
        o["metadata"]["name"]: o for _, o in example.fleet_objects if o["kind"] == "AppProject"
    }
    apps = [render_application(d, example.ctx) for d in example.deployments if d.cluster]
    project_of = {a["metadata"]["name"]: a["spec"]["project"] for a in apps}
    assert len(projects) == len({d.unit for d in example.deployments if d.cluster})
    assert set(project_of.values()) == set(projects)
    for app in apps:
        destinations = projects[app["spec"]["project"]]["spec"]["destinations"]
        assert app["spec"]["destination"] in destinations
    for name, proj in projects.items():
        members = {a for a, p in project_of.items() if p == name}
        windows = proj["spec"].get("syncWindows", [])
        assert {a for w in windows for a in w["applications"]} <= members, name
        assert len(proj["spec"]["destinations"]) == len(members), name


# --- issue #9: each environment pins its own revision --------------------------------


def _pinned_fleet(tmp_path: Path, value: str) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    fleet = root / "fleet.yaml"
    text = fleet.read_text()
    old = "  - name: prod\n    promotes_from: staging\n    production: true\n"
    assert old in text
    fleet.write_text(text.replace(old, f"{old}    target_revision: {value}\n"))
    return root


def test_an_environment_pins_its_own_revision(tmp_path: Path) -> None:
    rendered = render_fleet(_pinned_fleet(tmp_path, "release-2026.12"))
    revisions: dict[str, set[str]] = {}
    for dep in rendered.deployments:
        if dep.cluster is None:
            continue
        app = render_application(dep, rendered.ctx)
        revisions.setdefault(dep.environment.name, set()).add(
            app["spec"]["source"]["targetRevision"]
        )
    assert revisions.pop("prod") == {"release-2026.12"}
    assert revisions and all(r == {"main"} for r in revisions.values())
    # the registrar itself reads the fleet's revision, where the pin is written
    for appset in _appsets(rendered).values():
        assert appset["spec"]["generators"][0]["git"]["revision"] == "main"
        apps = generate_applications(appset, rendered.files)
        prod = [a for a in apps if a["metadata"]["labels"]["plantops.io/environment"] == "prod"]
        assert all(a["spec"]["source"]["targetRevision"] == "release-2026.12" for a in prod)


def test_a_revision_with_whitespace_is_a_located_spec_error(tmp_path: Path) -> None:
    root = _pinned_fleet(tmp_path, '"release 1"')
    with pytest.raises(SpecError) as err:
        services.open_fleet(root, today=TODAY)
    assert "fleet.yaml:" in str(err.value) and "target_revision" in str(err.value)


# --- issue #9: every object fits the apply limits at 1,000 plants --------------------


@pytest.fixture(scope="module")
def thousand(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[RenderContext, tuple[Deployment, ...]]:
    root = generate_fleet(tmp_path_factory.mktemp("fleet-1000") / "fleet", 1000)
    res = services.open_fleet(root, today=dt.date(2026, 11, 22))
    plan = build_plan(res.fleet)
    assert len(plan.deployments) > 2000
    # the generator's mix: every pattern and tier of the scored model, the fleet valid
    assert {d.pattern for d in plan.deployments} == {
        "shared-multitenant",
        "dedicated-namespace",
        "dedicated-cluster",
        "dedicated-environment",
    }
    assert {d.tier for d in plan.deployments} == {"pilot", "standard", "high", "critical"}
    return RenderContext.from_fleet(res.fleet.spec), plan.deployments


def _applied_size(obj: dict[str, Any]) -> int:
    """Bytes of the last-applied annotation kubectl would write for ``obj``."""
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())


def test_fleet_wide_objects_fit_the_apply_limits_at_1000_plants(
    thousand: tuple[RenderContext, tuple[Deployment, ...]],
) -> None:
    ctx, deps = thousand
    objects = render_fleet_objects(deps, ctx)
    sizes = {path: _applied_size(obj) for path, obj in objects}
    assert max(sizes.values()) < LAST_APPLIED_LIMIT, max(sizes.items(), key=lambda kv: kv[1])
    assert {o["kind"] for _, o in objects} == {"AppProject", "ApplicationSet"}


@pytest.mark.slow
def test_every_rendered_object_fits_the_apply_limits_at_1000_plants(
    thousand: tuple[RenderContext, tuple[Deployment, ...]],
) -> None:
    ctx, deps = thousand
    largest = (0, "")
    for dep in deps:
        for path, obj in render_deployment_full(dep, ctx).objects:
            largest = max(largest, (_applied_size(obj), f"{path} {obj['kind']}"))
    assert largest[0] < LAST_APPLIED_LIMIT, largest

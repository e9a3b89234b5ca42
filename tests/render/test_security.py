"""One test per security and reliability property of the reference architecture."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from plantops import services
from plantops.errors import GateFailed, SpecError
from plantops.render.kubernetes.traefik import ADMIN_PATHS
from tests.conftest import EXAMPLE, TODAY, read_tree
from tests.render.conftest import Rendered

WORKLOADS = ("Deployment", "StatefulSet")


def _pod_specs(example: Rendered) -> list[tuple[str, Any, dict[str, Any]]]:
    out = []
    for dep, path, obj in example.objects:
        if obj["kind"] in WORKLOADS:
            out.append((path, dep, obj["spec"]["template"]["spec"]))
    return out


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _of_kind(example: Rendered, kind: str) -> list[tuple[Any, str, dict[str, Any]]]:
    return [(d, p, o) for d, p, o in example.objects if o["kind"] == kind]


def route_tenant(dep: Any, obj: dict[str, Any]) -> Any:
    plant = obj["metadata"]["labels"]["plantops.io/plant"]
    return next(t for t in dep.tenants if t.plant == plant)


def route_matches(rule: str, host: str, path: str) -> bool:
    """Evaluate the subset of Traefik's rule syntax plantops writes."""
    expr = re.sub(r"Host\(`([^`]*)`\)", lambda m: repr(m.group(1) == host), rule)
    expr = re.sub(r"PathPrefix\(`([^`]*)`\)", lambda m: repr(path.startswith(m.group(1))), expr)
    expr = re.sub(
        r"PathRegexp\(`([^`]*)`\)", lambda m: repr(re.search(m.group(1), path) is not None), expr
    )
    expr = expr.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    assert re.fullmatch(r"[\sA-Za-z()]*", expr), f"unexpected rule syntax: {rule}"
    return bool(eval(expr))


def test_prod_odoo_conf_never_lists_databases(example: Rendered) -> None:
    prod = [(p, t) for p, t in example.files.items() if "-prod/" in p and p.endswith(".conf")]
    prod += [
        (path, obj["data"]["odoo.conf"])
        for dep, path, obj in _of_kind(example, "ConfigMap")
        if dep.production and "odoo.conf" in obj.get("data", {})
    ]
    assert prod
    for path, text in prod:
        if "[options]" in text:
            assert "\nlist_db = False\n" in text, path
            assert "\nproxy_mode = True\n" in text, path


def test_web_database_is_not_routable_in_prod(example: Rendered) -> None:
    routes = _of_kind(example, "IngressRoute")
    assert any(d.production for d, _, _ in routes)
    for dep, path, obj in routes:
        if not dep.production:
            continue
        if obj["spec"]["entryPoints"] == ["web"]:
            # plain HTTP: every route only redirects to HTTPS
            assert all(
                m["name"].endswith("redirect-https")
                for r in obj["spec"]["routes"]
                for m in r["middlewares"]
            ), path
            continue
        for tenant in [route_tenant(dep, obj)]:
            for admin in (*ADMIN_PATHS, "/web/database/manager", "/metrics"):
                hits = [
                    r
                    for r in obj["spec"]["routes"]
                    if route_matches(r["match"], tenant.host, admin)
                ]
                assert not hits, f"{path}: {admin} is routed by {hits}"
            # ordinary paths still are
            assert any(
                route_matches(r["match"], tenant.host, "/web") for r in obj["spec"]["routes"]
            )


def test_admin_paths_outside_prod_are_behind_the_allow_list(example: Rendered) -> None:
    for dep, path, obj in _of_kind(example, "IngressRoute"):
        if dep.production or obj["spec"]["entryPoints"] == ["web"]:
            continue
        assert any(
            route_matches(r["match"], route_tenant(dep, obj).host, "/web/database/manager")
            for r in obj["spec"]["routes"]
        ), path
        tenant = route_tenant(dep, obj)
        for r in obj["spec"]["routes"]:
            if route_matches(r["match"], tenant.host, "/web/database/manager"):
                names = [m["name"] for m in r["middlewares"]]
                assert any(n.endswith("admin-allowlist") for n in names), path


def test_middlewares_use_current_traefik_fields(example: Rendered) -> None:
    for _, path, obj in _of_kind(example, "Middleware"):
        assert "ipWhiteList" not in obj["spec"], path
        if "rateLimit" in obj["spec"]:
            assert obj["spec"]["rateLimit"]["average"] > 0, path
        if obj["metadata"]["name"].endswith("-secure-headers"):
            assert obj["spec"]["headers"]["stsSeconds"] >= 31536000, path
        elif "headers" in obj["spec"]:
            # the only other headers Middleware: a tenant's X-Odoo-dbfilter, request side only
            assert set(obj["spec"]["headers"]) == {"customRequestHeaders"}, path
    for _, path, obj in _of_kind(example, "TLSOption"):
        assert obj["spec"]["minVersion"] == "VersionTLS12", path


def test_websocket_goes_to_the_gevent_port(example: Rendered) -> None:
    for dep, path, obj in _of_kind(example, "IngressRoute"):
        if obj["spec"]["entryPoints"] == ["web"]:
            continue  # plain HTTP only redirects
        host = route_tenant(dep, obj).host
        hits = [r for r in obj["spec"]["routes"] if route_matches(r["match"], host, "/websocket")]
        best = max(hits, key=lambda r: r["priority"])
        assert best["services"][0]["port"] == 8072, path


def test_no_container_without_limits(example: Rendered) -> None:
    for path, _, spec in _pod_specs(example):
        for c in _containers(spec):
            limits = c.get("resources", {}).get("limits", {})
            assert {"cpu", "memory"} <= set(limits), f"{path}: {c['name']} has no limits"


def test_containers_are_hardened(example: Rendered) -> None:
    for path, _, spec in _pod_specs(example):
        assert spec["automountServiceAccountToken"] is False, path
        assert spec["securityContext"]["runAsNonRoot"] is True, path
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, path
        for c in _containers(spec):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, path
            assert sc["capabilities"]["drop"] == ["ALL"], path
            assert sc["readOnlyRootFilesystem"] is True, path


def test_service_accounts_mount_no_token(example: Rendered) -> None:
    for _, path, obj in _of_kind(example, "ServiceAccount"):
        assert obj["automountServiceAccountToken"] is False, path


def test_images_are_pinned_by_digest(example: Rendered) -> None:
    for path, _, spec in _pod_specs(example):
        for c in _containers(spec):
            assert "@sha256:" in c["image"], f"{path}: {c['image']}"
    for _, path, doc in example.compose:
        for svc in doc["services"].values():
            # A service Compose builds is pinned through its base image.
            pinned = (
                svc["build"]["dockerfile_inline"].splitlines()[0]
                if "build" in svc
                else svc["image"]
            )
            assert "@sha256:" in pinned, path


def test_odoo_probes_use_web_health(example: Rendered) -> None:
    for dep, path, obj in _of_kind(example, "Deployment"):
        if not obj["metadata"]["name"].endswith("odoo-web"):
            continue
        c = obj["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["httpGet"]["path"] == "/web/health", path
        assert {p["containerPort"] for p in c["ports"]} == {8069, 8072}
        assert c["resources"] == dep.sizing.web.k8s()


def test_autoscaler_never_exceeds_the_connection_budget(example: Rendered) -> None:
    hpas = _of_kind(example, "HorizontalPodAutoscaler")
    assert hpas
    for dep, path, obj in hpas:
        assert obj["spec"]["maxReplicas"] == dep.sizing.max_web_replicas, path
        assert dep.sizing.connections_at_max <= dep.sizing.connection_budget, path


def test_ha_tiers_spread_over_zones(example: Rendered) -> None:
    seen = 0
    for dep, path, obj in _of_kind(example, "Deployment"):
        if dep.tier_spec.ha and obj["metadata"]["labels"]["app.kubernetes.io/component"] == "web":
            spread = obj["spec"]["template"]["spec"]["topologySpreadConstraints"]
            zone = [t for t in spread if t["topologyKey"] == "topology.kubernetes.io/zone"]
            assert [t["whenUnsatisfiable"] for t in zone] == ["DoNotSchedule"], path
            seen += 1
    assert seen >= 1  # the file paths never named "odoo-web": this used to check nothing


def test_other_tiers_spread_several_web_replicas_softly(example: Rendered) -> None:
    """Non-HA web pods with two or more replicas prefer distinct zones and nodes, and
    never wait for one (ScheduleAnyway); a single replica carries no constraint."""
    seen = 0
    for dep, path, obj in _of_kind(example, "Deployment"):
        component = obj["metadata"]["labels"].get("app.kubernetes.io/component")
        if dep.tier_spec.ha or component != "web":
            continue
        spread = obj["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        if dep.sizing.web_replicas < 2:
            assert spread == [], path
            continue
        seen += 1
        assert {t["topologyKey"] for t in spread} == {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }, path
        assert {t["whenUnsatisfiable"] for t in spread} == {"ScheduleAnyway"}, path
    assert seen >= 1


def test_postgres_backups_use_the_barman_cloud_plugin(example: Rendered) -> None:
    for dep, path, obj in _of_kind(example, "Cluster"):
        spec = obj["spec"]
        assert "barmanObjectStore" not in spec.get("backup", {}), path
        plugin = spec["plugins"][0]
        assert plugin["name"] == "barman-cloud.cloudnative-pg.io"
        assert plugin["isWALArchiver"] is True
        assert spec["enableSuperuserAccess"] is False
        assert all(r["superuser"] is False for r in spec["managed"]["roles"])
        if dep.pattern == "dedicated-environment" and dep.production:
            assert spec["postgresql"]["synchronous"]["number"] >= 1, path
    for _, path, obj in _of_kind(example, "ScheduledBackup"):
        assert obj["spec"]["method"] == "plugin", path
        assert len(obj["spec"]["schedule"].split()) == 6, path


def test_shared_tenants_get_a_database_and_role_each(example: Rendered) -> None:
    shared = [
        d for d in example.deployments if d.pattern == "shared-multitenant" and len(d.tenants) > 1
    ]
    assert shared
    for dep in shared:
        dbs = [o for d, _, o in _of_kind(example, "Database") if d is dep]
        assert sorted(o["spec"]["name"] for o in dbs) == sorted(t.database for t in dep.tenants)
        assert len({o["spec"]["owner"] for o in dbs}) == len(dep.tenants)
        conf = next(
            o for d, _, o in _of_kind(example, "ConfigMap") if d is dep and "odoo.conf" in o["data"]
        )
        assert (
            f"db_name = {','.join(t.database for t in dep.tenants)}"
            in conf["data"]["odoo-cron.conf"]
        )


def test_network_policy_denies_by_default(example: Rendered) -> None:
    by_dep: dict[str, list[dict[str, Any]]] = {}
    for dep, _, obj in _of_kind(example, "NetworkPolicy"):
        by_dep.setdefault(dep.id, []).append(obj)
    for dep_id, policies in by_dep.items():
        deny = next(p for p in policies if p["metadata"]["name"] == "default-deny-all")
        assert deny["spec"] == {
            "egress": [],
            "ingress": [],
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
        }, dep_id


def test_integration_endpoints_are_allowed_out(example: Rendered) -> None:
    detroit = [
        o
        for d, _, o in _of_kind(example, "NetworkPolicy")
        if d.unit == "detroit-stamping" and o["metadata"]["name"] == "odoo-egress"
    ]
    assert detroit
    ports = {p["port"] for rule in detroit[0]["spec"]["egress"] for p in rule["ports"]}
    assert {443, 6366, 587} <= ports


def test_prod_data_services_are_never_pruned(example: Rendered) -> None:
    for dep, path, obj in example.objects:
        if (
            obj["kind"] in ("Cluster", "PersistentVolumeClaim", "ObjectStore", "Database")
            and dep.production
        ):
            assert (
                obj["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
                == "Prune=false,Delete=false"
            ), path


def test_sync_waves_follow_the_apply_order(example: Rendered) -> None:
    waves = {}
    for _, _, obj in example.objects:
        ann = obj["metadata"].get("annotations", {})
        if "argocd.argoproj.io/sync-wave" in ann:
            waves.setdefault(obj["kind"], set()).add(int(ann["argocd.argoproj.io/sync-wave"]))
    assert max(waves["ExternalSecret"]) < min(waves["Cluster"]) < min(waves["Deployment"])
    assert max(waves["Deployment"]) < min(waves["IngressRoute"])


def test_sync_windows_are_in_the_plant_timezone(example: Rendered) -> None:
    windows = [w for _, o in example.fleet_objects for w in o["spec"].get("syncWindows", [])]
    assert windows
    lyon = [w for w in windows if w["description"].startswith("lyon-meddev")]
    assert lyon and all(w["timeZone"] == "Europe/Paris" and w["kind"] == "deny" for w in lyon)


# --- bad input -----------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    return root


def test_unknown_storage_class_is_a_located_spec_error(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    fleet = root / "fleet.yaml"
    fleet.write_text(
        fleet.read_text().replace(
            "  storage:\n", "  storage:\n    postgres_storage_class: fast-nvme\n"
        )
    )
    with pytest.raises(SpecError) as err:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    text = str(err.value)
    assert "fast-nvme" in text and "fleet.yaml:" in text
    assert err.value.exit_code == 2


def test_missing_rwx_class_for_replicated_web_is_a_spec_error(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    fleet = root / "fleet.yaml"
    text = fleet.read_text()
    us = text.index("name: us-shared-1")
    rwx = text.index("      - {name: efs-rwx, access_modes: [ReadWriteMany]}\n", us)
    fleet.write_text(
        text[:rwx]
        + text[rwx:].replace("      - {name: efs-rwx, access_modes: [ReadWriteMany]}\n", "", 1)
    )
    with pytest.raises(SpecError) as err:
        services.plan_fleet(root, tmp_path / "out", today=TODAY)
    assert "ReadWriteMany" in str(err.value) and "us-shared-1" in str(err.value)


def test_invalid_rendered_object_fails_plan_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    services.plan_fleet(EXAMPLE, out, today=TODAY)
    before = read_tree(out)
    real = services.render_deployment_full

    def broken(dep, ctx):  # type: ignore[no-untyped-def]
        rendered = real(dep, ctx)
        for _, obj in rendered.objects:
            if obj["kind"] == "Middleware":
                obj["spec"]["ipWhiteList"] = {"sourceRange": ["10.0.0.0/8"]}
                obj["spec"]["bogus"] = True
        return rendered

    monkeypatch.setattr(services, "render_deployment_full", broken)
    state = out / ".plantops" / "state.json"
    state.unlink()  # force a full re-render
    out_new = tmp_path / "out2"
    with pytest.raises(GateFailed) as err:
        services.plan_fleet(EXAMPLE, out_new, today=TODAY)
    assert 'unknown field "bogus"' in str(err.value)
    assert not out_new.exists()
    assert before  # the first tree was written

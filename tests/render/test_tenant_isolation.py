"""One plant's namespace cannot reach another's secrets, backups or namespace (issue #11).

Walks every object of every rendered tree (the golden fleets and the committed example
fleet, which the golden tests prove are exactly what ``plan`` renders) and checks the
isolation the platform promises: each namespace reads secrets only under its own path
and backs up only under its own prefix; every egress rule names a destination (or is
listed with its reason); every AppProject reaches only its own namespaces, by name, and
only the namespaced kinds plantops renders.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantops.render.argocd.project import SECRET_STORE_KIND, TENANT_KINDS
from plantops.render.kubernetes.networkpolicies import METADATA_V4

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TREES = sorted(
    p
    for p in [*GOLDEN.glob("*/expected"), GOLDEN / "acme-manufacturing"]
    if (p / "argocd").is_dir()
)


def _objects(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        return [json.loads(path.read_text())]
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and "kind" in d]


def _tree(root: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``(cluster, folder)`` → the objects of that deployment folder."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in sorted((root / "clusters").glob("*/*/*")):
        if f.suffix in (".yaml", ".json") and f.name != "deployment.json":
            out[(f.parts[-3], f.parts[-2])].extend(
                o for o in _objects(f) if o.get("kind") != "Kustomization"
            )
    return out


def _find_key(obj: Any, key: str) -> list[dict[str, Any]]:
    """Every value of ``key`` anywhere under ``obj``."""
    if isinstance(obj, dict):
        found = [obj[key]] if key in obj else []
        return found + [x for v in obj.values() for x in _find_key(v, key)]
    if isinstance(obj, list):
        return [x for v in obj for x in _find_key(v, key)]
    return []


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


@pytest.mark.parametrize(
    "root", TREES, ids=[p.parent.name if p.name == "expected" else p.name for p in TREES]
)
def test_secrets_and_backup_prefixes_stay_in_their_namespace(root: Path) -> None:
    tree = _tree(root)
    assert tree
    prefixes: dict[str, str] = {}
    paths: dict[str, str] = {}
    identities: dict[str, str] = {}
    for (cluster, folder), objs in tree.items():
        namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
        assert len(namespaces) == 1, (cluster, folder, namespaces)
        (ns,) = namespaces
        stores = {o["metadata"]["name"]: o for o in objs if o["kind"] == "SecretStore"}
        accounts = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
        for store in stores.values():
            # The store logs in as a ServiceAccount of its own namespace, and its provider
            # identity (Vault role, IAM role, Google service account) is nobody else's.
            (provider,) = store["spec"]["provider"].values()
            refs = _find_key(provider, "serviceAccountRef")
            assert refs and all(r.keys() == {"name"} and r["name"] in accounts for r in refs)
            (sa,) = [
                o
                for o in objs
                if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == refs[0]["name"]
            ]
            vault = provider.get("auth", {}).get("kubernetes")
            ident = (
                f"{vault['mountPath']}:{vault['role']}"  # a Vault role is per auth mount
                if vault
                else next(
                    v
                    for k, v in sa["metadata"].get("annotations", {}).items()
                    if k in ("eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account")
                )
            )
            assert identities.setdefault(ident, f"{cluster}/{ns}") == f"{cluster}/{ns}", ident
        for o in objs:
            if o["kind"] == "ExternalSecret":
                ref = o["spec"]["secretStoreRef"]
                if stores:
                    # never a cluster-wide store once the namespace has its own
                    assert ref["kind"] == "SecretStore" and ref["name"] in stores, ref
                for item in o["spec"]["data"]:
                    key = item["remoteRef"]["key"]
                    # <fleet>/<cluster>/<namespace>/...: its own path, nobody else's.
                    assert key.split("/")[1:3] == [cluster, ns], (folder, key)
                    prefixes.setdefault("/".join(key.split("/")[:3]), f"{cluster}/{ns}")
                    assert prefixes["/".join(key.split("/")[:3])] == f"{cluster}/{ns}"
            if o["kind"] == "ObjectStore":
                dest = o["spec"]["configuration"]["destinationPath"]
                assert dest.endswith(f"/{cluster}/{ns}"), dest
                assert dest not in paths, (dest, paths.get(dest), ns)
                paths[dest] = ns
                creds = o["spec"]["configuration"]["s3Credentials"]
                if "accessKeyId" in creds:
                    secret = creds["accessKeyId"]["name"]
                    sources = [
                        x
                        for x in objs
                        if x["kind"] == "ExternalSecret" and x["metadata"]["name"] == secret
                    ]
                    # The backup key pair is the deployment's own, from its own path.
                    assert sources and all(
                        d["remoteRef"]["key"].split("/")[1:3] == [cluster, ns]
                        for d in sources[0]["spec"]["data"]
                    )
    # No two backup prefixes nest: one deployment's prefix never covers another's.
    for a in paths:
        for b in paths:
            assert a == b or not b.startswith(a + "/"), (a, b)


@pytest.mark.parametrize(
    "root", TREES, ids=[p.parent.name if p.name == "expected" else p.name for p in TREES]
)
def test_every_egress_rule_names_a_destination(root: Path) -> None:
    seen = 0
    for objs in _tree(root).values():
        for o in objs:
            if o["kind"] != "NetworkPolicy":
                continue
            notes = o["metadata"].get("annotations", {})
            for rule in o["spec"].get("egress", []):
                seen += 1
                assert rule.get("to"), (o["metadata"]["name"], rule)
                blocks = [p["ipBlock"] for p in rule["to"] if "ipBlock" in p]
                for b in blocks:
                    if b["cidr"] == "0.0.0.0/0":
                        assert b.get("except") == [METADATA_V4], b
                        assert "plantops.io/egress-unenforced" in notes, o["metadata"]["name"]
    assert seen


@pytest.mark.parametrize(
    "root", TREES, ids=[p.parent.name if p.name == "expected" else p.name for p in TREES]
)
def test_app_projects_reach_only_their_own_namespaces_and_kinds(root: Path) -> None:
    projects = {
        o["metadata"]["name"]: o
        for f in sorted((root / "argocd" / "projects").glob("*.yaml"))
        for o in _objects(f)
    }
    tree = _tree(root)
    apps = [
        o for f in sorted((root / "argocd" / "applications").rglob("*.json")) for o in _objects(f)
    ]
    assert apps and projects
    allowed_kinds = {
        (k["group"], k["kind"])
        for p in projects.values()
        for k in p["spec"]["namespaceResourceWhitelist"]
    }
    # SecretStore only where the fleet renders one per namespace (platform.secrets)
    stores = any(o["kind"] == "SecretStore" for objs in tree.values() for o in objs)
    assert allowed_kinds == set(TENANT_KINDS) - (set() if stores else {SECRET_STORE_KIND})
    assert (
        not {
            ("", "Secret"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("rbac.authorization.k8s.io", "Role"),
        }
        & allowed_kinds
    )
    owner_of: dict[str, str] = {}
    for name, p in projects.items():
        spec = p["spec"]
        dest_ns = {d["namespace"] for d in spec["destinations"]}
        assert "*" not in dest_ns
        whitelisted = {c["name"] for c in spec["clusterResourceWhitelist"]}
        assert all(
            c["kind"] == "Namespace" and c["group"] == "" for c in spec["clusterResourceWhitelist"]
        )
        assert whitelisted == dest_ns, name
        for ns in dest_ns:
            assert owner_of.setdefault(ns, name) == name, f"{ns} in two projects"
    for app in apps:
        spec = app["spec"]
        project = projects[spec["project"]]["spec"]
        path = spec["source"]["path"]
        cluster, folder = Path(path).parts[-2:]
        objs = tree[(cluster, folder)]
        ns_allowed = {c["name"] for c in project["clusterResourceWhitelist"]}
        kinds = {(k["group"], k["kind"]) for k in project["namespaceResourceWhitelist"]}
        for o in objs:
            if o["kind"] == "Namespace":
                assert o["metadata"]["name"] in ns_allowed
            else:
                assert (_group(o["apiVersion"]), o["kind"]) in kinds, (path, o["kind"])
                assert o["metadata"]["namespace"] in ns_allowed


def test_tenant_kinds_are_exactly_the_rendered_kinds() -> None:
    rendered = {
        (_group(o["apiVersion"]), o["kind"])
        for root in TREES
        for objs in _tree(root).values()
        for o in objs
        if o["kind"] != "Namespace"
    }
    assert rendered == set(TENANT_KINDS)


def _pod_specs(o: dict[str, Any]) -> list[dict[str, Any]]:
    if o["kind"] in ("Deployment", "StatefulSet", "Job"):
        return [o["spec"]["template"]["spec"]]
    return []


@pytest.mark.parametrize(
    "root", TREES, ids=[p.parent.name if p.name == "expected" else p.name for p in TREES]
)
def test_odoo_checks_the_database_servers_identity(root: Path) -> None:
    """verify-full against CloudNativePG's own CA, through PgBouncer too."""
    checked = 0
    for (_cluster, _folder), objs in _tree(root).items():
        pg = [o for o in objs if o["kind"] == "Cluster"]
        if not pg:
            continue
        (cluster,) = pg
        ca_secret = f"{cluster['metadata']['name']}-ca"
        for o in objs:
            if o["kind"] == "ConfigMap":
                for text in o.get("data", {}).values():
                    if "db_sslmode" in text:
                        assert "db_sslmode = verify-full" in text, o["metadata"]["name"]
            if o["kind"] == "Pooler":
                alt = cluster["spec"]["certificates"]["serverAltDNSNames"]
                assert o["metadata"]["name"] in alt
            for spec in _pod_specs(o):
                volumes = {v["name"]: v for v in spec.get("volumes", [])}
                for c in spec.get("initContainers", []) + spec["containers"]:
                    env = {e["name"]: e.get("value") for e in c.get("env", [])}
                    if "PGPASSWORD" not in env:
                        continue  # does not talk to PostgreSQL
                    checked += 1
                    if "PGHOST" in env:
                        assert env.get("PGSSLMODE") == "verify-full", c["name"]
                    root_cert = env.get("PGSSLROOTCERT")
                    assert root_cert, (o["metadata"]["name"], c["name"])
                    mount = next(
                        m for m in c["volumeMounts"] if root_cert.startswith(m["mountPath"] + "/")
                    )
                    secret = volumes[mount["name"]]["secret"]
                    assert secret["secretName"] == ca_secret
                    assert secret["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert checked

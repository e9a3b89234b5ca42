"""The built-in platform baseline: one Rule per thing a plantops namespace must be.

Each rule's Python check is the reference; ``cel`` (where the rule reads one object) is
the same rule as a ValidatingAdmissionPolicy expression, true when compliant. Rules
that need several objects at once (a namespace's default-deny, the connection budget,
quota fit) run here only; admission sees one object at a time.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from plantops.check.capacity import (
    check_nodes,
    check_quota,
    namespace_demand,
)
from plantops.check.policy.model import (
    Document,
    PolicyContext,
    Rule,
    Severity,
    Violation,
)
from plantops.check.policy.workloads import (
    LONG_RUNNING_KINDS,
    WORKLOAD_KINDS,
    containers,
    effective,
    pod_spec,
    security,
)
from plantops.sizing import connections as conn


def _lit(value: Any) -> str:
    """A CEL literal (JSON lists, maps and strings are CEL literals)."""
    return json.dumps(value, sort_keys=True)


def _label(name: str) -> str:
    return f"object.metadata.labels[{_lit(name)}]"


def _has_label(name: str) -> str:
    return f"has(object.metadata.labels) && {_lit(name)} in object.metadata.labels"


# --- supply chain ---------------------------------------------------------------------


def _digest(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    for path, c in containers(doc.obj):
        if "@sha256:" not in str(c.get("image", "")):
            yield f"{path}.image", f"image {c.get('image')!r} is not pinned by digest"


def _registry(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    if not ctx.registries:
        return  # a manifest directory without policies/settings.yaml: no allowlist known
    for path, c in containers(doc.obj):
        image = str(c.get("image", ""))
        if not any(image.startswith(f"{r}/") for r in ctx.registries):
            yield f"{path}.image", f"image {image!r} is not from an allowed registry"


def image_repository(image: str) -> str:
    """``registry/name`` of an image reference, without its tag or digest."""
    name = image.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


def _image_spec_field(odoo_field: str) -> Callable[[Document, str, PolicyContext], str]:
    """The spec field of the image at a finding's path: a platform image's own field
    (``fleet.platform.images.redis``), else ``odoo_field``."""

    def at(doc: Document, path: str, ctx: PolicyContext) -> str:
        for base, c in containers(doc.obj):
            if path.startswith(base + "."):
                found = ctx.image_fields.get(image_repository(str(c.get("image", ""))), "")
                if found and found != "fleet.odoo.image":
                    return found
                return odoo_field if found else ""
        return ""

    return at


# --- workload hardening ---------------------------------------------------------------


def _pod_setting(key: str, ok: Any, what: str) -> Any:
    def check(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
        _, pod = pod_spec(doc.obj)
        for path, c in containers(doc.obj):
            value = effective(c, pod, key)
            if not ok(value):
                yield f"{path}.securityContext.{key}", f"container {c.get('name')!r} {what}"

    return check


def _container_setting(key: str, ok: Any, what: str) -> Any:
    def check(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
        for path, c in containers(doc.obj):
            if not ok(security(c).get(key)):
                yield f"{path}.securityContext.{key}", f"container {c.get('name')!r} {what}"

    return check


def _drops_all(caps: Any) -> bool:
    return isinstance(caps, Mapping) and "ALL" in (caps.get("drop") or ())


def _seccomp_ok(profile: Any) -> bool:
    return isinstance(profile, Mapping) and profile.get("type") in ("RuntimeDefault", "Localhost")


def _resources(section: str) -> Any:
    def check(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
        for path, c in containers(doc.obj):
            got = (c.get("resources") or {}).get(section) or {}
            missing = [r for r in ("cpu", "memory") if r not in got]
            if missing:
                yield (
                    f"{path}.resources.{section}",
                    f"container {c.get('name')!r} sets no {section} for {', '.join(missing)}",
                )

    return check


def _probes(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    if doc.kind not in LONG_RUNNING_KINDS:
        return
    for path, c in containers(doc.obj, init=False):
        missing = [p for p in ("readinessProbe", "livenessProbe") if p not in c]
        if missing:
            yield path, f"container {c.get('name')!r} has no {' nor '.join(missing)}"


HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _host_namespaces(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    base, pod = pod_spec(doc.obj)
    for key in HOST_NAMESPACES:
        if pod.get(key) is True:
            yield f"{base}.{key}", f"the pod shares the node's {key[4:]} namespace"


def _host_path(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    base, pod = pod_spec(doc.obj)
    for i, v in enumerate(pod.get("volumes") or ()):
        if isinstance(v, Mapping) and "hostPath" in v:
            yield f"{base}.volumes[{i}].hostPath", f"volume {v.get('name')!r} mounts a host path"


# --- network --------------------------------------------------------------------------


def _namespaces(docs: Sequence[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {}
    for d in docs:
        ns = d.name if d.kind == "Namespace" else d.namespace
        if ns:
            out.setdefault(ns, []).append(d)
    return out


def _is_default_deny(d: Document) -> bool:
    spec = d.obj.get("spec") or {}
    return (
        d.kind == "NetworkPolicy"
        and spec.get("podSelector") in ({}, None)
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or ())
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def _default_deny(
    docs: Sequence[Document], ctx: PolicyContext
) -> Iterator[tuple[Document, str, str]]:
    for ns, members in sorted(_namespaces(docs).items()):
        workloads = [d for d in members if d.kind in WORKLOAD_KINDS or d.kind == "Cluster"]
        if workloads and not any(_is_default_deny(d) for d in members):
            anchor = next((d for d in members if d.kind == "Namespace"), workloads[0])
            yield (
                anchor,
                "$",
                f"namespace {ns} has no default-deny NetworkPolicy (Ingress and Egress)",
            )


def _service_type(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    kind = (doc.obj.get("spec") or {}).get("type", "ClusterIP")
    controller = doc.labels.get("app.kubernetes.io/name") in ctx.ingress_controllers
    if kind in ("NodePort", "LoadBalancer") and not controller:
        yield "$.spec.type", f"Service of type {kind} outside the ingress controller"


def _open_peer(rule: Mapping[str, Any]) -> bool:
    to = rule.get("to")
    if not to:
        return True
    return any(
        isinstance(p, Mapping) and (p.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0")
        for p in to
    )


def _egress(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    for i, rule in enumerate((doc.obj.get("spec") or {}).get("egress") or ()):
        if not isinstance(rule, Mapping) or not _open_peer(rule):
            continue
        ports = rule.get("ports") or ()
        if not ports:
            yield f"$.spec.egress[{i}]", "egress to any destination on any port"
            continue
        for j, p in enumerate(ports):
            if p.get("port") not in ctx.open_egress_ports:
                yield (
                    f"$.spec.egress[{i}].ports[{j}]",
                    f"egress to any destination on port {p.get('port')}, not an allowed endpoint",
                )


# --- ingress --------------------------------------------------------------------------

_POSITIVE_PREFIX = re.compile(r"(^|[^!])PathPrefix\(`")
_ADMIN_EXPOSED = re.compile(r"(^|[^!])PathPrefix\(`/(web(/(database)?)?)?`\)")
_LOGIN = re.compile(r"(^|[^!])PathPrefix\(`/web/login`\)")


def _middlewares(route: Mapping[str, Any]) -> list[str]:
    return [
        str(m.get("name", "")) for m in route.get("middlewares") or () if isinstance(m, Mapping)
    ]


def _routes(doc: Document) -> list[Mapping[str, Any]]:
    return [r for r in (doc.obj.get("spec") or {}).get("routes") or () if isinstance(r, Mapping)]


def _redirect(route: Mapping[str, Any]) -> bool:
    """A route that only redirects to HTTPS (the ``web`` entry point's) serves nothing."""
    return any(m.endswith("redirect-https") for m in _middlewares(route))


_CEL_REDIRECT = "(has(r.middlewares) && r.middlewares.exists(m, m.name.endsWith('redirect-https')))"


def _tls(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    routes = _routes(doc)
    redirect_only = bool(routes) and all(_redirect(r) for r in routes)
    if not (doc.obj.get("spec") or {}).get("tls") and not redirect_only:
        yield "$.spec.tls", "the route terminates no TLS"


def _admin_paths(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    for i, r in enumerate(_routes(doc)):
        match = str(r.get("match", ""))
        allow = _redirect(r) or any("allowlist" in m for m in _middlewares(r))
        catch_all = (
            not _POSITIVE_PREFIX.search(match) and "!PathPrefix(`/web/database`)" not in match
        )
        if (catch_all or _ADMIN_EXPOSED.search(match)) and not allow:
            yield f"$.spec.routes[{i}].match", "the route serves /web/database to anyone"


def _login_rate_limit(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    routes = _routes(doc)
    serves_odoo = any(
        s.get("port") == 8069 for r in routes if not _redirect(r) for s in r.get("services") or ()
    )
    limited = any(
        _LOGIN.search(str(r.get("match", "")))
        and any(m.endswith("rate-limit") for m in _middlewares(r))
        for r in routes
    )
    if serves_odoo and not limited:
        yield "$.spec.routes", "no route rate-limits /web/login"


def _hsts(docs: Sequence[Document], ctx: PolicyContext) -> Iterator[tuple[Document, str, str]]:
    for _ns, members in sorted(_namespaces(docs).items()):
        sts = {
            d.name
            for d in members
            if d.kind == "Middleware"
            and int(((d.obj.get("spec") or {}).get("headers") or {}).get("stsSeconds") or 0) > 0
        }
        for d in members:
            if d.kind != "IngressRoute":
                continue
            for i, r in enumerate(_routes(d)):
                if not _redirect(r) and not sts.intersection(_middlewares(r)):
                    yield d, f"$.spec.routes[{i}].middlewares", f"route {i} sends no HSTS header"


# --- data -----------------------------------------------------------------------------


def _instances(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    tier = ctx.tier(doc)
    if tier is None or not ctx.production(doc):
        return
    have = int((doc.obj.get("spec") or {}).get("instances") or 1)
    if have < tier.postgres_instances:
        yield (
            "$.spec.instances",
            f"{have} PostgreSQL instance(s), the tier needs {tier.postgres_instances}",
        )


def _wal_archiver(spec: Mapping[str, Any]) -> bool:
    plugins = spec.get("plugins") or ()
    return bool((spec.get("backup") or {}).get("barmanObjectStore")) or any(
        isinstance(p, Mapping) and p.get("isWALArchiver") is True for p in plugins
    )


def _wal(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    tier = ctx.tier(doc)
    if tier is not None and tier.pitr and not _wal_archiver(doc.obj.get("spec") or {}):
        yield "$.spec.plugins", "no WAL archiving, the tier promises point-in-time recovery"


def _cron_interval_minutes(schedule: str) -> int | None:
    """Largest gap between runs over a week of a CloudNativePG schedule (six fields,
    seconds first, robfig/cron); None when it cannot be read."""
    fields = schedule.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        return None
    bounds = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))

    def values(text: str, lo: int, hi: int) -> set[int] | None:
        out: set[int] = set()
        for part in text.split(","):
            rng, _, step_text = part.partition("/")
            step = int(step_text) if step_text.isdigit() else 1
            if rng in ("*", "?"):
                a, b = lo, hi
            elif "-" in rng:
                x, _, y = rng.partition("-")
                if not (x.isdigit() and y.isdigit()):
                    return None
                a, b = int(x), int(y)
            elif rng.isdigit():
                a = int(rng)
                b = hi if step_text else a
            else:
                return None
            out.update(range(a, b + 1, step))
        return out

    parsed = [values(f, lo, hi) for f, (lo, hi) in zip(fields, bounds, strict=True)]
    if any(p is None for p in parsed):
        return None
    if fields[3] not in ("*", "?") or fields[4] not in ("*", "?"):
        return 28 * 1440  # day-of-month or month schedules: monthly or rarer
    _, minutes, hours, _, _, weekdays = (p or set() for p in parsed)
    # Runs over one week, minute resolution: what RPOs of minutes to a day need.
    dows = weekdays if fields[5] not in ("*", "?") else set(range(7))
    runs = sorted(d * 1440 + h * 60 + m for d in dows for h in hours for m in minutes)
    if not runs:
        return None
    gaps = [b - a for a, b in itertools.pairwise(runs)] + [runs[0] + 7 * 1440 - runs[-1]]
    return max(gaps)


def _seconds(text: Any) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|h|d)?\s*", str(text))
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "s"
    return {"ms": n // 1000, "s": n, "min": n * 60, "h": n * 3600, "d": n * 86400}[unit]


def _backups(docs: Sequence[Document], ctx: PolicyContext) -> Iterator[tuple[Document, str, str]]:
    for _ns, members in sorted(_namespaces(docs).items()):
        schedules: dict[str, list[str]] = {}
        for d in members:
            if d.kind == "ScheduledBackup":
                spec = d.obj.get("spec") or {}
                cluster = str((spec.get("cluster") or {}).get("name", ""))
                schedules.setdefault(cluster, []).append(str(spec.get("schedule", "")))
        for d in members:
            if d.kind != "Cluster" or not d.obj.get("apiVersion", "").startswith(
                "postgresql.cnpg.io"
            ):
                continue
            spec = d.obj.get("spec") or {}
            mine = schedules.get(d.name, [])
            if not mine or not (_wal_archiver(spec) or spec.get("backup")):
                yield (
                    d,
                    "$.spec",
                    f"cluster {d.name} has no object-store backup with a ScheduledBackup",
                )
                continue
            tier = ctx.tier(d)
            if tier is None:
                continue
            params = (spec.get("postgresql") or {}).get("parameters") or {}
            timeout = _seconds(params.get("archive_timeout", "5min"))
            if _wal_archiver(spec) and timeout is not None and timeout <= tier.rpo_minutes * 60:
                continue  # WAL shipped at least every archive_timeout bounds the loss
            gaps = [_cron_interval_minutes(s) for s in mine]
            best = min((g for g in gaps if g is not None), default=None)
            if best is None or best > tier.rpo_minutes:
                yield (
                    d,
                    "$.spec.postgresql.parameters.archive_timeout",
                    f"backups every {best} min and no WAL archiving within the tier's RPO of "
                    f"{tier.rpo_minutes} min",
                )


def _storage_classes(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    spec = doc.obj.get("spec") or {}
    found: list[tuple[str, Any]] = []
    if doc.kind == "PersistentVolumeClaim":
        found.append(("$.spec.storageClassName", spec.get("storageClassName")))
    elif doc.kind == "Cluster":
        found.append(
            ("$.spec.storage.storageClass", (spec.get("storage") or {}).get("storageClass"))
        )
    elif doc.kind == "StatefulSet":
        for i, t in enumerate(spec.get("volumeClaimTemplates") or ()):
            found.append(
                (
                    f"$.spec.volumeClaimTemplates[{i}].spec.storageClassName",
                    (t.get("spec") or {}).get("storageClassName"),
                )
            )
    for path, name in found:
        # Without the fleet the approved classes are unknown: nothing to compare against.
        if ctx.storage_classes and name is not None and name not in ctx.storage_classes:
            yield path, f"storage class {name!r} is not approved"


def _redis_conf(doc: Document) -> str | None:
    data = doc.obj.get("data") or {}
    conf = data.get("redis.conf") if isinstance(data, Mapping) else None
    return conf if isinstance(conf, str) else None


_APPENDONLY = re.compile(r"(?m)^\s*appendonly\s+yes\s*$")


def _redis_persistence(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    tier = ctx.tier(doc)
    conf = _redis_conf(doc)
    if conf is not None and tier is not None and tier.ha and not _APPENDONLY.search(conf):
        yield '$.data["redis.conf"]', "Redis keeps no append-only file, sessions die with the pod"


# --- odoo -----------------------------------------------------------------------------


def odoo_confs(doc: Document) -> Iterator[tuple[str, str]]:
    data = doc.obj.get("data") or {}
    if not isinstance(data, Mapping):
        return
    for key in sorted(data):
        value = data[key]
        if str(key).endswith(".conf") and isinstance(value, str) and "[options]" in value:
            yield str(key), value


# odoo/tools/config.py configmanager._parse_config (16.0-18.0): of the file's values only
# 'True'/'true' and 'False'/'false' become booleans, any other text stays a string (so
# "FALSE" or "0" is truthy); 19.0's Option(..., parse=strtobool) accepts those two too.
# The rules therefore accept exactly those spellings.
FALSE = ("False", "false")
TRUE = ("True", "true")


def _option(conf: str, name: str) -> str | None:
    m = re.search(rf"(?m)^\s*{name}\s*=\s*(.*?)\s*$", conf)
    return m.group(1) if m else None


def _web(conf: str) -> bool:
    return (_option(conf, "http_enable") or "True") not in FALSE


def _list_db(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    if ctx.environment(doc) in ctx.dev_environments:
        return
    for key, conf in odoo_confs(doc):
        # odoo/tools/config.py: list_db defaults to True, so only an explicit False hides
        # the database manager.
        if (_option(conf, "list_db") or "True") not in FALSE:
            yield f'$.data["{key}"]', f"{key} lists databases (list_db = False outside dev)"


def _proxy_mode(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    for key, conf in odoo_confs(doc):
        if _web(conf) and (_option(conf, "proxy_mode") or "False") not in TRUE:
            yield f'$.data["{key}"]', f"{key} serves behind the ingress without proxy_mode = True"


def _workers(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    if not ctx.production(doc):
        return
    for key, conf in odoo_confs(doc):
        workers = _option(conf, "workers") or "0"
        if _web(conf) and (not workers.isdigit() or int(workers) < 1):
            yield f'$.data["{key}"]', f"{key} runs threaded (workers = {workers}) in production"


_ADMIN = re.compile(r"(?m)^\s*admin_passwd\s*=")


def _master_password(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    data = doc.obj.get("data") or {}
    for key in sorted(data) if isinstance(data, Mapping) else ():
        if isinstance(data[key], str) and _ADMIN.search(data[key]):
            yield f'$.data["{key}"]', f"{key} holds the Odoo master password in a ConfigMap"


def _int(text: Any, default: int = 0) -> int:
    try:
        return int(str(text))
    except ValueError:
        return default


def _connection_budget(
    docs: Sequence[Document], ctx: PolicyContext
) -> Iterator[tuple[Document, str, str]]:
    """Odoo pools against the cluster's max_connections at the worst moment (HPA max plus
    surge), the model of plantops.sizing.connections applied to rendered objects."""
    for _ns, members in sorted(_namespaces(docs).items()):
        clusters = [
            d for d in members if d.kind == "Cluster" and "cnpg" in str(d.obj.get("apiVersion"))
        ]
        if len(clusters) != 1:
            continue
        pg = clusters[0]
        params = ((pg.obj.get("spec") or {}).get("postgresql") or {}).get("parameters") or {}
        max_conn = _int(params.get("max_connections", 100), 100)
        confs = {k: c for d in members if d.kind == "ConfigMap" for k, c in odoo_confs(d)}
        hpa_max = {
            ((d.obj.get("spec") or {}).get("scaleTargetRef") or {}).get("name"): _int(
                (d.obj.get("spec") or {}).get("maxReplicas"), 1
            )
            for d in members
            if d.kind == "HorizontalPodAutoscaler"
        }
        # Argo CD runs a wave's Sync-hook Jobs to completion before the next wave rolls the
        # Deployments out: the peak is the rollout (HPA max + surge) or one hook wave on top
        # of the running pods (HPA max), whichever is higher.
        steady = rollout = 0
        hooks: dict[str, int] = {}
        for d in members:
            if d.kind not in ("Deployment", "StatefulSet", "Job"):
                continue
            conf = _mounted_conf(d, confs)
            if conf is None:
                continue
            spec = d.obj.get("spec") or {}
            per_pod = _per_pod(d, conf)
            if d.kind == "Job":
                annotations = d.meta.get("annotations") or {}
                wave = str(annotations.get("argocd.argoproj.io/sync-wave", "0"))
                if "argocd.argoproj.io/hook" in annotations:
                    hooks[wave] = hooks.get(wave, 0) + per_pod
                else:
                    rollout += per_pod
                    steady += per_pod
                continue
            replicas = hpa_max.get(d.name, _int(spec.get("replicas", 1), 1))
            surge = _int(
                ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", 0)
            )
            steady += replicas * per_pod
            rollout += (replicas + surge) * per_pod
        used = max([rollout, *(steady + h for h in hooks.values())])
        databases = sum(1 for d in members if d.kind == "Database")
        pooler = any(d.kind == "Pooler" for d in members)
        platform = conn.platform_connections(
            kubernetes=True, databases=max(1, databases), pgbouncer=pooler
        )
        reserved = max(
            _int(params.get("reserved_connections", 0)),
            _int(params.get("superuser_reserved_connections", conn.PG_SUPERUSER_RESERVED))
            + platform,
        )
        budget = max_conn - reserved
        if used > budget:
            yield (
                pg,
                "$.spec.postgresql.parameters.max_connections",
                f"Odoo may open {used} connections at HPA max plus surge, the budget is {budget} "
                f"({max_conn} max_connections - {reserved} reserved)",
            )


def _per_pod(d: Document, conf: str) -> int:
    """Connections one pod may hold: every process's whole pool (sizing.connections)."""
    maxconn = _int(_option(conf, "db_maxconn"), 64)
    workers = _int(_option(conf, "workers"), 0)
    if not (workers and _web(conf)):
        return maxconn
    gevent = _option(conf, "db_maxconn_gevent")
    try:
        own_gevent = conn.series_model(
            d.labels.get("app.kubernetes.io/version", "")
        ).has_db_maxconn_gevent
    except ValueError:
        own_gevent = gevent is not None
    return workers * maxconn + (_int(gevent, maxconn) if own_gevent else maxconn)


def _mounted_conf(d: Document, confs: Mapping[str, str]) -> str | None:
    """The odoo.conf a workload runs with: the ConfigMap key its ODOO_CONF names, else by
    component (cron and db-init read odoo-cron.conf, as the renderer mounts them)."""
    for _, c in containers(d.obj):
        for e in c.get("env") or ():
            if isinstance(e, Mapping) and e.get("name") == "ODOO_CONF" and e.get("value") in confs:
                return confs[str(e["value"])]
    if d.labels.get("app.kubernetes.io/name") != "odoo":
        return None
    component = d.labels.get("app.kubernetes.io/component", "")
    if component == "web":
        return confs.get("odoo.conf")
    if component in ("cron", "db-init"):
        return confs.get("odoo-cron.conf")
    return None


# --- availability ---------------------------------------------------------------------


def _is_web(doc: Document) -> bool:
    return doc.kind == "Deployment" and doc.labels.get("app.kubernetes.io/component") == "web"


def _pdb(docs: Sequence[Document], ctx: PolicyContext) -> Iterator[tuple[Document, str, str]]:
    for _, members in sorted(_namespaces(docs).items()):
        pdbs = [
            ((d.obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            for d in members
            if d.kind == "PodDisruptionBudget"
        ]
        for d in members:
            tier = ctx.tier(d)
            if not _is_web(d) or tier is None or not tier.ha or not ctx.production(d):
                continue
            labels = (((d.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
                "labels"
            ) or {}
            if not any(sel and all(labels.get(k) == v for k, v in sel.items()) for sel in pdbs):
                yield (
                    d,
                    "$.spec.template.metadata.labels",
                    "no PodDisruptionBudget covers the web pods",
                )


def _web_replicas(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    tier = ctx.tier(doc)
    if _is_web(doc) and tier is not None and tier.ha and ctx.production(doc):
        n = int((doc.obj.get("spec") or {}).get("replicas") or 1)
        if n < 2:
            yield "$.spec.replicas", f"{n} web replica(s) in an HA tier, at least 2 needed"


def _topology(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    spec = doc.obj.get("spec") or {}
    if int(spec.get("replicas") or 1) < 2:
        return
    base, pod = pod_spec(doc.obj)
    anti = (pod.get("affinity") or {}).get("podAntiAffinity")
    if not pod.get("topologySpreadConstraints") and not anti:
        yield f"{base}.topologySpreadConstraints", "replicas may all land on one node or zone"


# --- secrets --------------------------------------------------------------------------


def _secret_data(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    for key in ("data", "stringData"):
        if doc.obj.get(key):
            yield f"$.{key}", "a Secret with values in the tree (use an ExternalSecret)"


_CREDENTIAL_NAME = re.compile(r"(?i)(PASSW|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)")
ENTROPY_MIN_LENGTH = 20
_NAME_SHAPED = re.compile(r"[a-z0-9]{1,16}(?:[-_][a-z0-9]{1,16})+")
ENTROPY_BITS = 4.0


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_like_credential(name: str, value: str) -> bool:
    if not value:
        return False
    if _CREDENTIAL_NAME.search(name):
        return True
    # A long token of mixed characters with no spaces and no path or host shape, and not
    # a name: lowercase words joined by '-' or '_' (namespaces, prefixes such as
    # "shared-group-0025-eu-central-staging") are identifiers, while a generated secret
    # is one long run (hex) or mixes cases and symbols (base64).
    token = len(value) >= ENTROPY_MIN_LENGTH and not re.search(r"[\s/.:]", value)
    if not token or _NAME_SHAPED.fullmatch(value):
        return False
    return _entropy(value) >= ENTROPY_BITS


def _env_credentials(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    for path, c in containers(doc.obj):
        for i, e in enumerate(c.get("env") or ()):
            literal = isinstance(e, Mapping) and isinstance(e.get("value"), str)
            if literal and looks_like_credential(str(e.get("name", "")), e["value"]):
                yield (
                    f"{path}.env[{i}].value",
                    f"env {e.get('name')!r} holds what looks like a credential",
                )


# --- gitops ---------------------------------------------------------------------------


def _sync_windows(
    docs: Sequence[Document], ctx: PolicyContext
) -> Iterator[tuple[Document, str, str]]:
    projects = {d.name: d for d in docs if d.kind == "AppProject"}
    for d in docs:
        if d.kind != "Application" or d.labels.get("plantops.io/environment") != "prod":
            continue
        if d.labels.get("plantops.io/plant") not in ctx.freeze_plants:
            continue
        project = projects.get(str((d.obj.get("spec") or {}).get("project", "")))
        if project is None or not (project.obj.get("spec") or {}).get("syncWindows"):
            yield (
                d,
                "$.spec.project",
                "the plant has freeze windows but its project has no sync windows",
            )


DATA_KINDS = frozenset({"Cluster", "PersistentVolumeClaim", "ObjectStore", "Database"})


def _prune_data(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    if not ctx.production(doc):
        return
    if doc.kind == "StatefulSet" and not (doc.obj.get("spec") or {}).get("volumeClaimTemplates"):
        return
    options = str((doc.meta.get("annotations") or {}).get("argocd.argoproj.io/sync-options", ""))
    if "Prune=false" not in options:
        yield (
            '$.metadata.annotations["argocd.argoproj.io/sync-options"]',
            "data in production may be pruned by an automated sync",
        )


# --- capacity -------------------------------------------------------------------------


def _units(docs: Sequence[Document]) -> dict[str, list[Document]]:
    out: dict[str, list[Document]] = {}
    for d in docs:
        out.setdefault(d.unit, []).append(d)
    return out


def _quota(docs: Sequence[Document], ctx: PolicyContext) -> Iterator[tuple[Document, str, str]]:
    for unit, members in sorted(_units(docs).items()):
        quota = next((d for d in members if d.kind == "ResourceQuota"), None)
        if quota is None:
            continue
        demand = namespace_demand([d.obj for d in members])
        for f in check_quota(unit, demand):
            yield quota, f"$.spec.hard[{_lit(f.resource)}]", f"{f.resource} {f.message}"


def _node_fit(docs: Sequence[Document], ctx: PolicyContext) -> Iterator[tuple[Document, str, str]]:
    for unit, members in sorted(_units(docs).items()):
        pools = ctx.node_pools.get(ctx.unit(members[0]).cluster)
        if not pools:
            continue
        demand = namespace_demand([d.obj for d in members])
        if not demand.pods:
            continue
        anchor = next((d for d in members if d.kind in WORKLOAD_KINDS), members[0])
        for f in check_nodes(unit, demand, pools):
            yield anchor, "$.spec", f"{f.resource} {f.message}"


# --- ownership ------------------------------------------------------------------------

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
UNLABELLED_KINDS = frozenset({"Kustomization"})


def _labels(doc: Document, ctx: PolicyContext) -> Iterator[Violation]:
    missing = [k for k in STANDARD_LABELS if k not in doc.labels]
    if missing and doc.kind not in UNLABELLED_KINDS:
        yield "$.metadata.labels", f"missing the standard label(s) {', '.join(missing)}"


# --- the CEL forms --------------------------------------------------------------------

_C = "variables.containers"
_SC = "has(c.securityContext) && has(c.securityContext.{k})"
_PSC = "has(variables.podSpec.securityContext) && has(variables.podSpec.securityContext.{k})"


def _cel_effective(key: str, test: str) -> str:
    """Container setting, else the pod's, must pass ``test`` (``{v}`` the value)."""
    c_val = f"c.securityContext.{key}"
    p_val = f"variables.podSpec.securityContext.{key}"
    return (
        f"{_C}.all(c, {_SC.format(k=key)} ? {test.format(v=c_val)} : "
        f"({_PSC.format(k=key)} && {test.format(v=p_val)}))"
    )


def _conf_values(test: str) -> str:
    """Every Odoo conf in a ConfigMap passes ``test`` (``v`` is its text)."""
    return (
        "!has(object.data) || object.data.all(k, !k.endsWith('.conf') || "
        f"!object.data[k].contains('[options]') || ({test.replace('{v}', 'object.data[k]')}))"
    )


_WEB_CONF = "!{v}.matches('(?m)^\\\\s*http_enable\\\\s*=\\\\s*(False|false)\\\\s*$')"


def _option_is(name: str, pattern: str) -> str:
    return f"{{v}}.matches('(?m)^\\\\s*{name}\\\\s*=\\\\s*{pattern}\\\\s*$')"


def _ha_tiers(ctx: PolicyContext) -> list[str]:
    return sorted(t for t, i in ctx.tiers.items() if i.ha)


def _prod() -> str:
    return f"{_has_label('plantops.io/environment')} && {_label('plantops.io/environment')} in [\"prod\", \"production\"]"


def _in_tiers(tiers: list[str]) -> str:
    return f"{_has_label('plantops.io/tier')} && {_label('plantops.io/tier')} in {_lit(tiers)}"


W = WORKLOAD_KINDS


BASELINE: tuple[Rule, ...] = (
    Rule(
        "PO-IMG-001",
        "Images pinned by digest",
        Severity.HIGH,
        "pin the image as registry/name@sha256:<digest> (fleet.yaml odoo.digest)",
        W,
        _digest,
        cel=lambda ctx: f"{_C}.all(c, c.image.contains('@sha256:'))",
        spec_field="fleet.odoo.digest",
        spec_field_at=_image_spec_field("fleet.odoo.digest"),
    ),
    Rule(
        "PO-IMG-002",
        "Images from an allowed registry",
        Severity.HIGH,
        "pull from a registry in policies/settings.yaml registries (mirror the image there)",
        W,
        _registry,
        cel=lambda ctx: f"{_C}.all(c, {_lit(list(ctx.registries))}.exists(r, c.image.startsWith(r + '/')))",
        spec_field="fleet.odoo.image",
        spec_field_at=_image_spec_field("fleet.odoo.image"),
    ),
    Rule(
        "PO-POD-001",
        "Containers run as non-root",
        Severity.HIGH,
        "set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser",
        W,
        _pod_setting("runAsNonRoot", lambda v: v is True, "may run as root"),
        cel=lambda ctx: _cel_effective("runAsNonRoot", "{v} == true"),
    ),
    Rule(
        "PO-POD-002",
        "No privilege escalation",
        Severity.HIGH,
        "set securityContext.allowPrivilegeEscalation: false on every container",
        W,
        _container_setting(
            "allowPrivilegeEscalation", lambda v: v is False, "may escalate privileges"
        ),
        cel=lambda ctx: f"{_C}.all(c, {_SC.format(k='allowPrivilegeEscalation')} && c.securityContext.allowPrivilegeEscalation == false)",
    ),
    Rule(
        "PO-POD-003",
        "Capabilities dropped",
        Severity.MEDIUM,
        "set securityContext.capabilities.drop: [ALL] and add back only what is needed",
        W,
        _container_setting("capabilities", _drops_all, "keeps its Linux capabilities"),
        cel=lambda ctx: f"{_C}.all(c, {_SC.format(k='capabilities')} && has(c.securityContext.capabilities.drop) && 'ALL' in c.securityContext.capabilities.drop)",
    ),
    Rule(
        "PO-POD-004",
        "Read-only root filesystem",
        Severity.MEDIUM,
        "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it writes",
        W,
        _container_setting(
            "readOnlyRootFilesystem", lambda v: v is True, "can write its root filesystem"
        ),
        cel=lambda ctx: f"{_C}.all(c, {_SC.format(k='readOnlyRootFilesystem')} && c.securityContext.readOnlyRootFilesystem == true)",
    ),
    Rule(
        "PO-POD-005",
        "Seccomp RuntimeDefault",
        Severity.MEDIUM,
        "set securityContext.seccompProfile.type: RuntimeDefault on the pod",
        W,
        _pod_setting("seccompProfile", _seccomp_ok, "runs without a seccomp profile"),
        cel=lambda ctx: _cel_effective(
            "seccompProfile", "{v}.type in ['RuntimeDefault', 'Localhost']"
        ),
    ),
    Rule(
        "PO-POD-006",
        "Resource requests set",
        Severity.MEDIUM,
        "set resources.requests.cpu and .memory (plantops sizes them from the tier profile)",
        W,
        _resources("requests"),
        cel=lambda ctx: f"{_C}.all(c, has(c.resources) && has(c.resources.requests) && 'cpu' in c.resources.requests && 'memory' in c.resources.requests)",
    ),
    Rule(
        "PO-POD-007",
        "Resource limits set",
        Severity.MEDIUM,
        "set resources.limits.cpu and .memory",
        W,
        _resources("limits"),
        cel=lambda ctx: f"{_C}.all(c, has(c.resources) && has(c.resources.limits) && 'cpu' in c.resources.limits && 'memory' in c.resources.limits)",
    ),
    Rule(
        "PO-POD-008",
        "Readiness and liveness probes",
        Severity.LOW,
        "add readinessProbe and livenessProbe (Odoo: GET /web/health)",
        LONG_RUNNING_KINDS,
        _probes,
        cel=lambda ctx: "variables.podSpec.containers.all(c, has(c.readinessProbe) && has(c.livenessProbe))",
    ),
    Rule(
        "PO-POD-009",
        "No host namespaces",
        Severity.CRITICAL,
        "remove hostNetwork, hostPID and hostIPC from the pod spec",
        W,
        _host_namespaces,
        cel=lambda ctx: " && ".join(
            f"!(has(variables.podSpec.{k}) && variables.podSpec.{k} == true)"
            for k in HOST_NAMESPACES
        ),
    ),
    Rule(
        "PO-POD-010",
        "No hostPath volumes",
        Severity.HIGH,
        "use a PersistentVolumeClaim or an emptyDir instead of hostPath",
        W,
        _host_path,
        cel=lambda ctx: "!has(variables.podSpec.volumes) || variables.podSpec.volumes.all(v, !has(v.hostPath))",
    ),
    Rule(
        "PO-POD-011",
        "No privileged containers",
        Severity.CRITICAL,
        "remove securityContext.privileged: true",
        W,
        _container_setting("privileged", lambda v: v is not True, "is privileged"),
        cel=lambda ctx: f"{_C}.all(c, !({_SC.format(k='privileged')} && c.securityContext.privileged == true))",
    ),
    Rule(
        "PO-NET-001",
        "Default-deny NetworkPolicy in every namespace",
        Severity.HIGH,
        "add a NetworkPolicy with podSelector: {} and policyTypes [Ingress, Egress], no rules",
        group=_default_deny,
    ),
    Rule(
        "PO-NET-002",
        "No NodePort or LoadBalancer outside the ingress controller",
        Severity.HIGH,
        "use type ClusterIP and route through the ingress controller",
        frozenset({"Service"}),
        _service_type,
        cel=lambda ctx: (
            "!has(object.spec.type) || !(object.spec.type in ['NodePort', 'LoadBalancer']) || "
            f"({_has_label('app.kubernetes.io/name')} && {_label('app.kubernetes.io/name')} in {_lit(list(ctx.ingress_controllers))})"
        ),
    ),
    Rule(
        "PO-NET-003",
        "Egress only to allowed endpoints",
        Severity.MEDIUM,
        "name the destination (podSelector/namespaceSelector) or restrict open egress to allowed ports",
        frozenset({"NetworkPolicy"}),
        _egress,
        cel=lambda ctx: (
            "!has(object.spec.egress) || object.spec.egress.all(e, "
            "(has(e.to) && size(e.to) > 0 && e.to.all(p, !has(p.ipBlock) || !(p.ipBlock.cidr in ['0.0.0.0/0', '::/0']))) || "
            f"(has(e.ports) && size(e.ports) > 0 && e.ports.all(p, has(p.port) && p.port in {_lit(list(ctx.open_egress_ports))})))"
        ),
    ),
    Rule(
        "PO-ING-001",
        "TLS on every route",
        Severity.HIGH,
        "set spec.tls (secretName from the cert-manager Certificate)",
        frozenset({"IngressRoute", "Ingress"}),
        _tls,
        cel=lambda ctx: f"has(object.spec.tls) || (has(object.spec.routes) && size(object.spec.routes) > 0 && object.spec.routes.all(r, {_CEL_REDIRECT}))",
    ),
    Rule(
        "PO-ING-002",
        "HSTS on every route",
        Severity.MEDIUM,
        "attach a headers Middleware with stsSeconds > 0 to every route",
        group=_hsts,
    ),
    Rule(
        "PO-ING-003",
        "Database manager restricted",
        Severity.HIGH,
        "exclude !PathPrefix(`/web/database`) from public routes or add an ipallowlist middleware",
        frozenset({"IngressRoute"}),
        _admin_paths,
        cel=lambda ctx: (
            "!has(object.spec.routes) || object.spec.routes.all(r, "
            f"{_CEL_REDIRECT} || (has(r.middlewares) && r.middlewares.exists(m, m.name.contains('allowlist'))) || "
            "(!r.match.matches('(^|[^!])PathPrefix\\\\(`/(web(/(database)?)?)?`\\\\)') && "
            "(r.match.matches('(^|[^!])PathPrefix\\\\(`') || r.match.contains('!PathPrefix(`/web/database`)'))))"
        ),
    ),
    Rule(
        "PO-ING-004",
        "Rate limit on the login endpoint",
        Severity.MEDIUM,
        "route PathPrefix(`/web/login`) through a rateLimit middleware named *-rate-limit",
        frozenset({"IngressRoute"}),
        _login_rate_limit,
        cel=lambda ctx: (
            f"!has(object.spec.routes) || !object.spec.routes.exists(r, !{_CEL_REDIRECT} && has(r.services) && r.services.exists(s, has(s.port) && s.port == 8069)) || "
            "object.spec.routes.exists(r, r.match.matches('(^|[^!])PathPrefix\\\\(`/web/login`\\\\)') && "
            "has(r.middlewares) && r.middlewares.exists(m, m.name.endsWith('rate-limit')))"
        ),
    ),
    Rule(
        "PO-DATA-001",
        "PostgreSQL instances at the tier minimum",
        Severity.HIGH,
        "set the Cluster's instances to the tier's postgres_instances",
        frozenset({"Cluster"}),
        _instances,
        cel=lambda ctx: (
            f"!({_has_label('plantops.io/tier')}) || !({_label('plantops.io/tier')} in "
            f"{_lit({t: i.postgres_instances for t, i in ctx.tiers.items()})}) || "
            f"(has(object.spec.instances) ? object.spec.instances : 1) >= "
            f"{_lit({t: i.postgres_instances for t, i in ctx.tiers.items()})}[{_label('plantops.io/tier')}]"
        ),
        cel_match=lambda ctx: _prod(),
        spec_field="tier.postgres_instances",
    ),
    Rule(
        "PO-DATA-002",
        "Backups configured within the RPO",
        Severity.HIGH,
        "archive WAL to an object store (archive_timeout <= RPO) and schedule base backups",
        group=_backups,
        spec_field="tier.backup",
    ),
    Rule(
        "PO-DATA-003",
        "WAL archiving for PITR tiers",
        Severity.HIGH,
        "enable the barman-cloud plugin with isWALArchiver: true",
        frozenset({"Cluster"}),
        _wal,
        cel=lambda ctx: (
            "(has(object.spec.backup) && has(object.spec.backup.barmanObjectStore)) || "
            "(has(object.spec.plugins) && object.spec.plugins.exists(p, has(p.isWALArchiver) && p.isWALArchiver == true))"
        ),
        cel_match=lambda ctx: _in_tiers(sorted(t for t, i in ctx.tiers.items() if i.pitr)),
        spec_field="tier.backup.pitr",
    ),
    Rule(
        "PO-DATA-004",
        "Approved storage classes",
        Severity.MEDIUM,
        "use a storage class listed for the cluster in fleet.yaml",
        frozenset({"PersistentVolumeClaim", "Cluster", "StatefulSet"}),
        _storage_classes,
        cel=lambda ctx: (
            f"object.kind == 'PersistentVolumeClaim' ? (!has(object.spec.storageClassName) || object.spec.storageClassName in {_lit(list(ctx.storage_classes))}) : "
            f"object.kind == 'Cluster' ? (!has(object.spec.storage) || !has(object.spec.storage.storageClass) || object.spec.storage.storageClass in {_lit(list(ctx.storage_classes))}) : "
            f"(!has(object.spec.volumeClaimTemplates) || object.spec.volumeClaimTemplates.all(t, !has(t.spec.storageClassName) || t.spec.storageClassName in {_lit(list(ctx.storage_classes))}))"
        ),
        spec_field="fleet.clusters",
    ),
    Rule(
        "PO-DATA-005",
        "Redis persistence for HA tiers",
        Severity.MEDIUM,
        "set appendonly yes in redis.conf",
        frozenset({"ConfigMap"}),
        _redis_persistence,
        cel=lambda ctx: "!has(object.data) || !('redis.conf' in object.data) || object.data['redis.conf'].matches('(?m)^\\\\s*appendonly\\\\s+yes\\\\s*$')",
        cel_match=lambda ctx: _in_tiers(_ha_tiers(ctx)),
        spec_field="tier.ha",
    ),
    Rule(
        "PO-ODOO-001",
        "Database listing off outside dev",
        Severity.HIGH,
        "set list_db = False (fleet.yaml environments[].list_db)",
        frozenset({"ConfigMap"}),
        _list_db,
        cel=lambda ctx: _conf_values(_option_is("list_db", "(False|false)")),
        cel_match=lambda ctx: f"!({_has_label('plantops.io/environment')}) || !({_label('plantops.io/environment')} in {_lit(list(ctx.dev_environments))})",
        spec_field="fleet.environments",
    ),
    Rule(
        "PO-ODOO-002",
        "proxy_mode behind the ingress",
        Severity.MEDIUM,
        "set proxy_mode = True so Odoo trusts X-Forwarded-* from the ingress",
        frozenset({"ConfigMap"}),
        _proxy_mode,
        cel=lambda ctx: _conf_values(
            f"!({_WEB_CONF}) || {_option_is('proxy_mode', '(True|true)')}"
        ),
    ),
    Rule(
        "PO-ODOO-003",
        "Multi-process Odoo in production",
        Severity.MEDIUM,
        "set workers >= 1 (plantops sizes them from the tier)",
        frozenset({"ConfigMap"}),
        _workers,
        cel=lambda ctx: _conf_values(f"!({_WEB_CONF}) || {_option_is('workers', '0*[1-9][0-9]*')}"),
        cel_match=lambda ctx: _prod(),
    ),
    Rule(
        "PO-ODOO-004",
        "Connection budget within max_connections",
        Severity.HIGH,
        "lower db_maxconn or workers, cap the HPA, or raise max_connections",
        group=_connection_budget,
        spec_field="fleet.defaults",
    ),
    Rule(
        "PO-ODOO-005",
        "No master password in a ConfigMap",
        Severity.CRITICAL,
        "append admin_passwd from a Secret at start (the renderer's config init container)",
        frozenset({"ConfigMap"}),
        _master_password,
        cel=lambda ctx: "!has(object.data) || object.data.all(k, !object.data[k].matches('(?m)^\\\\s*admin_passwd\\\\s*='))",
    ),
    Rule(
        "PO-AVAIL-001",
        "PodDisruptionBudget for HA web pods",
        Severity.MEDIUM,
        "add a PodDisruptionBudget selecting the web pods",
        group=_pdb,
        spec_field="tier.ha",
    ),
    Rule(
        "PO-AVAIL-002",
        "Two web replicas in HA tiers",
        Severity.HIGH,
        "set the tier's web_replicas to 2 or more",
        frozenset({"Deployment"}),
        _web_replicas,
        cel=lambda ctx: "(has(object.spec.replicas) ? object.spec.replicas : 1) >= 2",
        cel_match=lambda ctx: (
            f"{_prod()} && {_in_tiers(_ha_tiers(ctx))} && "
            f"{_has_label('app.kubernetes.io/component')} && {_label('app.kubernetes.io/component')} == 'web'"
        ),
        spec_field="tier.web_replicas",
    ),
    Rule(
        "PO-AVAIL-003",
        "Replicas spread over nodes and zones",
        Severity.LOW,
        "add topologySpreadConstraints (zone and hostname) or pod anti-affinity",
        frozenset({"Deployment", "StatefulSet"}),
        _topology,
        cel=lambda ctx: (
            "(has(object.spec.replicas) ? object.spec.replicas : 1) < 2 || "
            "has(variables.podSpec.topologySpreadConstraints) || "
            "(has(variables.podSpec.affinity) && has(variables.podSpec.affinity.podAntiAffinity))"
        ),
    ),
    Rule(
        "PO-SEC-001",
        "No Secret values in the tree",
        Severity.CRITICAL,
        "render an ExternalSecret that reads the value from the secret store",
        frozenset({"Secret"}),
        _secret_data,
        cel=lambda ctx: "(!has(object.data) || size(object.data) == 0) && (!has(object.stringData) || size(object.stringData) == 0)",
    ),
    Rule(
        "PO-SEC-002",
        "No credentials in environment values",
        Severity.HIGH,
        "read the value with valueFrom.secretKeyRef",
        W,
        _env_credentials,
    ),
    Rule(
        "PO-GITOPS-001",
        "Sync windows for plants with freeze windows",
        Severity.MEDIUM,
        "give the plant's AppProject syncWindows from its freeze_windows",
        group=_sync_windows,
        spec_field="plant.freeze_windows",
    ),
    Rule(
        "PO-GITOPS-002",
        "Data never pruned in production",
        Severity.HIGH,
        "annotate argocd.argoproj.io/sync-options: Prune=false,Delete=false",
        DATA_KINDS | {"StatefulSet"},
        _prune_data,
        cel=lambda ctx: (
            "(object.kind == 'StatefulSet' && !has(object.spec.volumeClaimTemplates)) || "
            "(has(object.metadata.annotations) && 'argocd.argoproj.io/sync-options' in object.metadata.annotations && "
            "object.metadata.annotations['argocd.argoproj.io/sync-options'].contains('Prune=false'))"
        ),
        cel_match=lambda ctx: _prod(),
    ),
    Rule(
        "PO-CAP-001",
        "Namespace fits its ResourceQuota at peak",
        Severity.HIGH,
        "raise the quota or lower the peak (surge, HPA maximum, hooks)",
        group=_quota,
    ),
    Rule(
        "PO-CAP-002",
        "Every pod fits a node",
        Severity.HIGH,
        "use a larger node pool or smaller pods",
        group=_node_fit,
        spec_field="fleet.clusters",
    ),
    Rule(
        "PO-OWN-001",
        "Standard labels",
        Severity.LOW,
        "label app.kubernetes.io/name, part-of and managed-by",
        frozenset(),
        _labels,
        cel=lambda ctx: " && ".join(f"({_has_label(k)})" for k in STANDARD_LABELS),
    ),
)


def baseline_rules() -> tuple[Rule, ...]:
    return BASELINE


def iter_rule_ids(rules: Iterable[Rule]) -> list[str]:
    return [r.id for r in rules]


__all__ = ["BASELINE", "baseline_rules", "looks_like_credential", "odoo_confs"]

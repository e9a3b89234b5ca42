"""Realistic sample objects, shaped like what plantops renders (shared with the benchmark)."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def labels(plant: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "odoo",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "plantops",
        "plantops.io/plant": plant,
        "plantops.io/environment": "prod",
        "plantops.io/tier": "gold",
        "plantops.io/pattern": "dedicated-namespace",
    }


def deployment(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{plant}-odoo-web",
            "namespace": plant,
            "labels": labels(plant, "web"),
        },
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {
                "matchLabels": {"plantops.io/plant": plant, "app.kubernetes.io/component": "web"}
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels(plant, "web")},
                "spec": {
                    "serviceAccountName": f"{plant}-odoo",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 101,
                        "fsGroup": 101,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "labelSelector": {"matchLabels": {"plantops.io/plant": plant}},
                        }
                    ],
                    "containers": [
                        {
                            "name": "odoo",
                            "image": "registry.example.com/odoo@sha256:" + "a" * 64,
                            "args": ["--config=/etc/odoo/odoo.conf"],
                            "ports": [
                                {"name": "http", "containerPort": 8069},
                                {"name": "websocket", "containerPort": 8072},
                            ],
                            "env": [
                                {
                                    "name": "PGPASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": f"{plant}-db", "key": "password"}
                                    },
                                }
                            ],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi"},
                                "limits": {"cpu": 2, "memory": "2Gi"},
                            },
                            "startupProbe": {
                                "httpGet": {"path": "/web/health", "port": "http"},
                                "failureThreshold": 30,
                                "periodSeconds": 10,
                            },
                            "readinessProbe": {"httpGet": {"path": "/web/health", "port": 8069}},
                            "livenessProbe": {"httpGet": {"path": "/web/health", "port": 8069}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/odoo", "readOnly": True},
                                {"name": "filestore", "mountPath": "/var/lib/odoo"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{plant}-odoo-conf"}},
                        {
                            "name": "filestore",
                            "persistentVolumeClaim": {"claimName": f"{plant}-filestore"},
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    }


def service(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{plant}-odoo", "namespace": plant, "labels": labels(plant, "web")},
        "spec": {
            "type": "ClusterIP",
            "selector": {"plantops.io/plant": plant, "app.kubernetes.io/component": "web"},
            "ports": [
                {"name": "http", "port": 8069, "targetPort": "http", "protocol": "TCP"},
                {"name": "websocket", "port": 8072, "targetPort": 8072},
            ],
        },
    }


def config_map(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{plant}-odoo-conf",
            "namespace": plant,
            "labels": labels(plant, "config"),
        },
        "data": {"odoo.conf": "[options]\nproxy_mode = True\nlist_db = False\nworkers = 4\n"},
    }


def network_policy(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{plant}-odoo-egress",
            "namespace": plant,
            "labels": labels(plant, "net"),
        },
        "spec": {
            "podSelector": {"matchLabels": {"plantops.io/plant": plant}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "traefik"}
                            },
                            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 8069}, {"protocol": "TCP", "port": 8072}],
                }
            ],
            "egress": [
                {
                    "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": f"{plant}-pg"}}}],
                    "ports": [{"protocol": "TCP", "port": 5432}],
                },
                {"to": [{"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.1.0/24"]}}]},
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            ],
        },
    }


def pdb(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": f"{plant}-odoo-web",
            "namespace": plant,
            "labels": labels(plant, "web"),
        },
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"plantops.io/plant": plant}}},
    }


def cnpg_cluster(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {
            "name": f"{plant}-pg",
            "namespace": plant,
            "labels": labels(plant, "database"),
        },
        "spec": {
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4",
            "primaryUpdateStrategy": "unsupervised",
            "storage": {"size": "50Gi", "storageClass": "fast"},
            "walStorage": {"size": "10Gi"},
            "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
            "postgresql": {
                "parameters": {"max_connections": "200", "shared_buffers": "1GB"},
                "synchronous": {"method": "any", "number": 1},
            },
            "bootstrap": {"initdb": {"database": plant, "owner": plant}},
            "monitoring": {"enablePodMonitor": True},
            "plugins": [
                {
                    "name": "barman-cloud.cloudnative-pg.io",
                    "isWALArchiver": True,
                    "parameters": {"barmanObjectName": f"{plant}-store"},
                }
            ],
        },
    }


def ingress_route(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {
            "name": f"{plant}-odoo",
            "namespace": plant,
            "labels": labels(plant, "ingress"),
        },
        "spec": {
            "entryPoints": ["websecure"],
            "routes": [
                {
                    "match": f"Host(`{plant}.erp.example.com`)",
                    "kind": "Rule",
                    "middlewares": [{"name": f"{plant}-headers"}],
                    "services": [{"name": f"{plant}-odoo", "port": 8069}],
                },
                {
                    "match": f"Host(`{plant}.erp.example.com`) && PathPrefix(`/websocket`)",
                    "kind": "Rule",
                    "services": [{"name": f"{plant}-odoo", "port": 8072}],
                },
            ],
            "tls": {"secretName": f"{plant}-tls", "options": {"name": "modern"}},
        },
    }


def middleware(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {
            "name": f"{plant}-admin-allow",
            "namespace": plant,
            "labels": labels(plant, "ingress"),
        },
        "spec": {"ipAllowList": {"sourceRange": ["10.0.0.0/8", "192.168.10.0/24"]}},
    }


def headers_middleware(plant: str = "lyon") -> Obj:
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": f"{plant}-headers", "namespace": plant},
        "spec": {
            "headers": {
                "stsSeconds": 31536000,
                "stsIncludeSubdomains": True,
                "contentTypeNosniff": True,
                "frameDeny": True,
            }
        },
    }


CORE_FACTORIES = (deployment, service, config_map, network_policy, pdb)
CR_FACTORIES = (cnpg_cluster, ingress_route, middleware, headers_middleware)


def mutated(obj: Obj, path: str, value: Any) -> Obj:
    """A deep copy of ``obj`` with ``value`` set at a dotted ``path`` (``[n]`` for lists)."""
    result = copy.deepcopy(obj)
    node: Any = result
    parts = path.replace("[", ".[").split(".")
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return result

"""Fleet spec v1 (``apiVersion: plantops.io/v1``): the pydantic models of the YAML files.

These models describe what a user writes, nothing more: defaults are filled and
references are resolved later by :mod:`plantops.model`. Every model forbids
unknown keys so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import string
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

API_VERSION = "plantops.io/v1"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
SERIES = ("16.0", "17.0", "18.0", "19.0")
# Tiers whose backups must be encrypted unless fleet.yaml says otherwise (ranks 1-2 too).
ENCRYPTED_TIERS = ("critical", "high")

Name = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]
# Cloud and fleet regions alike are lower-case words joined by '-' (eu-central,
# us-east-1, europe-west4, westeurope): a DNS label, as they end up in labels and names.
Region = Annotated[
    str,
    Field(
        pattern=DNS_LABEL,
        max_length=63,
        description="Region: lower-case letters, digits and '-' (eu-central, us-east-1);"
        " a Kubernetes plant's region must be one of the fleet's cluster regions.",
    ),
]
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Percent = Annotated[StrictFloat, Field(gt=0, lt=100)]


# Numbers and switches are taken only as YAML wrote them: ``named: true`` is not 1 and
# ``production: 1`` or ``"yes"`` is not true (pydantic's lax mode would coerce them).
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- fleet.yaml ----------------------------------------------------------------


class Edition(StrEnum):
    ce = "ce"
    ee = "ee"


class Organization(Strict):
    name: str = Field(min_length=1)
    slug: Name
    domain: str = Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,}$",
        description="Base DNS domain; plants are served at <plant>[-<env>].<domain>.",
    )


class OdooSpec(Strict):
    series: Literal["16.0", "17.0", "18.0", "19.0"]
    edition: Edition = Edition.ce
    image: str = Field(
        min_length=1, description="Image repository, e.g. registry.acme.example/odoo/odoo"
    )
    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Default image digest; releases pin their own.",
    )


class EnvironmentSpec(Strict):
    name: Name
    promotes_from: Name | None = Field(
        default=None, description="Previous stage in the promotion chain; empty for the first."
    )
    production: StrictBool = False
    size_factor: StrictFloat = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Share of the plant's peak concurrent users this environment is sized for.",
    )
    list_db: StrictBool = Field(
        default=False, description="Expose Odoo's database manager (dev only)."
    )
    target_revision: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[^\s]+$",
        description="Git revision (branch, tag or commit) of the rendered tree this "
        "environment's Argo CD Applications deploy (default platform.gitops_revision); "
        "pinning it per environment promotes a release stage by stage.",
    )


class ClusterKind(StrEnum):
    shared = "shared"
    dedicated = "dedicated"


class Provider(StrEnum):
    eks = "eks"
    aks = "aks"
    gke = "gke"
    openshift = "openshift"
    rke2 = "rke2"
    k3s = "k3s"
    onprem = "onprem"


class NodePool(Strict):
    name: Name
    vcpu: StrictInt = Field(gt=0, le=512)
    memory_gib: StrictInt = Field(gt=0, le=4096)
    min_nodes: StrictInt = Field(default=1, ge=0)
    max_nodes: StrictInt = Field(default=3, ge=1)
    dedicated_to: Name | None = Field(
        default=None, description="Plant code this pool is reserved for."
    )
    reserved_cpu_m: StrictInt | None = Field(
        default=None,
        ge=0,
        description="Millicores per node kept from pods (kube/system reserved, DaemonSets); "
        "by default GKE's kube-reserved scale plus 200m for DaemonSets (docs/capacity.md).",
    )
    reserved_memory_mib: StrictInt | None = Field(
        default=None,
        ge=0,
        description="MiB per node kept from pods (kube/system reserved, eviction threshold, "
        "DaemonSets); by default GKE's kube-reserved scale plus 100 MiB eviction and "
        "400 MiB for DaemonSets (docs/capacity.md).",
    )
    max_pods: StrictInt = Field(default=110, gt=0, le=1000, description="kubelet --max-pods.")

    @model_validator(mode="after")
    def _bounds(self) -> NodePool:
        if self.reserved_cpu_m is not None and self.reserved_cpu_m >= self.vcpu * 1000:
            raise ValueError(f"reserved_cpu_m ({self.reserved_cpu_m}) leaves no CPU for pods")
        if (
            self.reserved_memory_mib is not None
            and self.reserved_memory_mib >= self.memory_gib * 1024
        ):
            raise ValueError(
                f"reserved_memory_mib ({self.reserved_memory_mib}) leaves no memory for pods"
            )
        if self.max_nodes < self.min_nodes:
            raise ValueError(f"max_nodes ({self.max_nodes}) is below min_nodes ({self.min_nodes})")
        return self


class StorageClass(Strict):
    name: Name
    access_modes: list[Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]] = Field(
        min_length=1
    )
    default: StrictBool = False


class ClusterSpec(Strict):
    name: Name
    region: Region
    kind: ClusterKind
    provider: Provider
    kubernetes_version: str = Field(pattern=r"^1\.(2[5-9]|3[0-9])$")
    zones: list[str] = Field(min_length=1)
    node_pools: list[NodePool] = Field(min_length=1)
    storage_classes: list[StorageClass] = Field(min_length=1)


class Retention(Strict):
    daily: StrictInt = Field(ge=0, le=366)
    weekly: StrictInt = Field(ge=0, le=104)
    monthly: StrictInt = Field(ge=0, le=120)


class BackupObjectives(Strict):
    rpo_minutes: StrictInt = Field(gt=0)
    rto_minutes: StrictInt = Field(gt=0)
    retention: Retention
    verify: Literal["every", "weekly"] = "weekly"
    pitr: StrictBool = False
    encryption: Literal["required", "optional"] | None = Field(
        default=None,
        description="Whether a backup of this tier may be written in clear. Default:"
        " required for the tiers named critical and high and for ranks 1 and 2, optional"
        " otherwise. A required tier's backup is refused without a key.",
    )


class SloTargets(Strict):
    availability: Percent
    latency_p95_ms: StrictInt = Field(gt=0)


class TierSpec(Strict):
    description: str = ""
    rank: StrictInt = Field(ge=1, description="1 is the most demanding tier.")
    ha: StrictBool = False
    web_replicas: StrictInt = Field(ge=1, le=50)
    max_web_replicas: StrictInt | None = Field(default=None, ge=1, le=100)
    cron_replicas: StrictInt = Field(default=1, ge=1, le=4)
    postgres_instances: StrictInt = Field(ge=1, le=9)
    postgres_sync_replicas: StrictInt = Field(default=0, ge=0, le=8)
    pgbouncer: StrictBool = False
    redis_replicas: StrictInt = Field(default=0, ge=0, le=5)
    resource_profile: Name
    backup: BackupObjectives
    slo: SloTargets
    log_retention_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days Loki keeps this tier's Odoo logs (plantops observe render);"
        " default 31.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TierSpec:
        if self.postgres_sync_replicas >= self.postgres_instances:
            raise ValueError(
                "postgres_sync_replicas must be below postgres_instances "
                f"({self.postgres_sync_replicas} >= {self.postgres_instances})"
            )
        if self.max_web_replicas is not None and self.max_web_replicas < self.web_replicas:
            raise ValueError("max_web_replicas must be at least web_replicas")
        if self.ha and self.web_replicas < 2:
            raise ValueError("an HA tier needs web_replicas >= 2")
        return self


class ResourceProfile(Strict):
    web_cpu: StrictFloat = Field(gt=0, le=64, description="vCPU per Odoo web pod (limit).")
    web_memory_gib: StrictFloat = Field(gt=0, le=256)
    cron_cpu: StrictFloat = Field(gt=0, le=16)
    cron_memory_gib: StrictFloat = Field(gt=0, le=64)
    postgres_cpu: StrictFloat = Field(gt=0, le=128)
    postgres_memory_gib: StrictFloat = Field(gt=0, le=1024)
    postgres_storage_gib: StrictInt = Field(gt=0)
    filestore_gib: StrictInt = Field(gt=0)
    redis_memory_gib: StrictFloat = Field(gt=0, le=64)


class Thresholds(Strict):
    """``classification:`` thresholds of the scored model (docs/classification.md).

    Every field is optional: a fleet that sets none gets the documented defaults.
    """

    critical_score: StrictFloat = Field(
        default=12, gt=0, description="Score from which a plant is in the critical tier."
    )
    high_score: StrictFloat = Field(
        default=6, gt=0, description="Score from which a plant is in the high tier."
    )
    pilot_max_score: StrictFloat = Field(
        default=1,
        ge=0,
        description="Highest score a plant with at most pilot_max_named_users may have and "
        "still be a pilot.",
    )
    extended_hours_per_week: StrictFloat = Field(
        default=50, gt=0, le=168, description="Shift coverage above this is extended hours."
    )
    multi_shift_hours_per_week: StrictFloat = Field(
        default=80, gt=0, le=168, description="Shift coverage from this on is multi-shift."
    )
    continuous_hours_per_week: StrictFloat = Field(
        default=120, gt=0, le=168, description="Shift coverage from this on is round the clock."
    )
    high_volume_orders_per_day: StrictInt = Field(default=2000, gt=0)
    high_volume_stock_moves_per_day: StrictInt = Field(default=20000, gt=0)
    large_peak_users: StrictInt = Field(default=150, gt=0)
    dedicated_cluster_peak_users: StrictInt = Field(default=400, gt=0)
    pilot_max_named_users: StrictInt = Field(default=25, gt=0)
    critical_integrations: StrictInt | None = Field(
        default=None,
        ge=1,
        description="Ignored (kept so older fleet files validate): the scored model weighs "
        "every integration by type, criticality and direction.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.high_score >= self.critical_score:
            raise ValueError(
                f"high_score ({self.high_score}) must be below critical_score "
                f"({self.critical_score})"
            )
        if self.pilot_max_score >= self.high_score:
            raise ValueError(
                f"pilot_max_score ({self.pilot_max_score}) must be below high_score "
                f"({self.high_score})"
            )
        hours = (
            self.extended_hours_per_week,
            self.multi_shift_hours_per_week,
            self.continuous_hours_per_week,
        )
        if not hours[0] < hours[1] < hours[2]:
            raise ValueError(
                "extended_hours_per_week < multi_shift_hours_per_week < "
                f"continuous_hours_per_week is required (got {' / '.join(f'{h:g}' for h in hours)})"
            )
        if self.large_peak_users > self.dedicated_cluster_peak_users:
            raise ValueError(
                f"large_peak_users ({self.large_peak_users}) exceeds "
                f"dedicated_cluster_peak_users ({self.dedicated_cluster_peak_users})"
            )
        return self


class VmSize(Strict):
    name: Name
    vcpu: StrictFloat = Field(gt=0, le=512)
    memory_gib: StrictFloat = Field(gt=0, le=4096)
    month: StrictFloat = Field(ge=0, description="Price of one VM of this size per month.")


class Pricing(Strict):
    """Unit prices for `plantops cost` (docs/cost.md); every field after the first four
    has a default, so a fleet that only gives unit rates still validates."""

    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    vcpu_hour: StrictFloat = Field(ge=0)
    gib_hour: StrictFloat = Field(ge=0)
    storage_gib_month: StrictFloat = Field(ge=0, description="Volume storage, classes not listed.")
    dedicated_cluster_month: StrictFloat = Field(
        default=0, ge=0, description="Control-plane fee of a dedicated cluster."
    )
    shared_cluster_month: StrictFloat = Field(
        default=0, ge=0, description="Control-plane fee of a shared cluster (platform cost)."
    )
    storage_classes: dict[Name, StrictFloat] = Field(
        default_factory=dict,
        description="Price per GiB-month by storage class name (e.g. an RWX file system); "
        "classes not listed cost storage_gib_month.",
    )
    backup_gib_month: StrictFloat | None = Field(
        default=None, ge=0, description="Object storage for backups; storage_gib_month if empty."
    )
    node_month: dict[str, StrictFloat] = Field(
        default_factory=dict,
        description="Price of one node per month by '<cluster>/<node pool>'; by default "
        "the pool's vCPU and memory at vcpu_hour and gib_hour.",
    )
    ingress_month: StrictFloat = Field(
        default=0, ge=0, description="Per cluster: ingress controller and load balancer."
    )
    monitoring_month: StrictFloat = Field(
        default=0, ge=0, description="Per cluster: Prometheus, Alertmanager, their storage."
    )
    vm_sizes: list[VmSize] = Field(
        default_factory=list,
        description="VM sizes plants on runtime: vm can run on; the smallest that fits is "
        "priced. Empty: a size of 2^n vCPU x 4 GiB at the unit rates.",
    )

    @field_validator("node_month")
    @classmethod
    def _node_keys(cls, value: dict[str, float]) -> dict[str, float]:
        for key, price in value.items():
            cluster, _, pool = key.partition("/")
            if not cluster or not pool or price < 0:
                raise ValueError(f"node_month {key!r}: give '<cluster>/<pool>' and a price >= 0")
        return value


class SecretStoreRef(Strict):
    kind: Literal["SecretStore", "ClusterSecretStore"] = "ClusterSecretStore"
    name: Name


class Defaults(Strict):
    users_per_worker: StrictInt = Field(default=6, ge=1, le=50)
    min_workers: StrictInt = Field(default=2, ge=1)
    max_cron_threads: StrictInt = Field(default=2, ge=1, le=8)
    postgres_max_connections: StrictInt = Field(default=200, ge=20, le=5000)
    postgres_reserved_connections: StrictInt = Field(
        default=10, ge=3, description="Superuser, replication and monitoring slots kept free."
    )
    pgbouncer_max_client_conn: StrictInt = Field(default=1000, ge=50)
    limit_time_cpu: StrictInt = Field(default=600, gt=0)
    limit_time_real: StrictInt = Field(default=1200, gt=0)
    limit_request: StrictInt = Field(default=65536, gt=0)
    secret_store: SecretStoreRef
    smtp_relay: str | None = Field(default=None, description="host:port of the outgoing mail relay")
    admin_cidrs: list[str] = Field(
        default_factory=list, description="Networks allowed to reach Odoo admin paths outside prod."
    )
    hours_per_month: StrictFloat = Field(default=730, gt=0)
    data_horizon_years: StrictInt = Field(
        default=3, ge=1, le=20, description="Years of data PostgreSQL storage is sized for."
    )
    data_growth_percent: StrictFloat = Field(
        default=10, ge=0, le=200, description="Yearly growth of order and stock-move volume."
    )


ImageRef = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$",
        description="Image reference; pin it by digest (name@sha256:...) for production.",
    ),
]


class ObjectStorage(Strict):
    """An S3-compatible bucket (path) plus where its keys live in the secret store."""

    destination: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._/-]*)?$",
        description="s3://bucket[/prefix]; plantops appends <cluster>/<namespace>.",
    )
    endpoint_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s]+$", description="For non-AWS S3 (MinIO, Ceph)."
    )
    region: Region | None = None
    uri_style: Literal["host", "path"] | None = Field(
        default=None,
        description="S3 addressing: host (virtual-hosted) or path; by default host for AWS "
        "and path for other endpoints.",
    )
    credentials_key: str | None = Field(
        default="plantops/object-storage",
        min_length=1,
        description="Static keys (any value): each deployment reads its own key pair, "
        "ACCESS_KEY_ID and ACCESS_SECRET_KEY, from <fleet>/<cluster>/<namespace>/"
        "object-storage/backup (or /filestore) in the secret store, never one fleet-wide "
        "pair; null to use the workload identity (IAM role) instead.",
    )


class StorageSettings(Strict):
    postgres_storage_class: Name | None = Field(
        default=None,
        description="Storage class for PostgreSQL volumes; the cluster default if empty.",
    )
    filestore: Literal["pvc", "s3"] = Field(
        default="pvc", description="Where Odoo keeps attachments: a volume, or object storage."
    )
    filestore_storage_class: Name | None = Field(
        default=None,
        description="Class of the filestore volume; if empty, the cluster default for a single "
        "web replica and the cluster's ReadWriteMany class for more.",
    )
    filestore_bucket: ObjectStorage | None = Field(
        default=None, description="Bucket for filestore: s3 (needs the attachment_s3 addon)."
    )

    @model_validator(mode="after")
    def _bucket(self) -> StorageSettings:
        if self.filestore == "s3" and self.filestore_bucket is None:
            raise ValueError("filestore: s3 needs filestore_bucket")
        return self


class IngressSettings(Strict):
    controller_namespace: Name = Field(
        default="traefik", description="Namespace of the Traefik ingress controller."
    )
    entry_point: str = Field(default="websecure", pattern=r"^[a-z][a-z0-9-]*$")
    http_entry_point: str = Field(default="web", pattern=r"^[a-z][a-z0-9-]*$")
    cluster_issuer: Name = Field(
        default="letsencrypt",
        description="cert-manager ClusterIssuer that signs host certificates.",
    )
    login_rate_average: StrictInt = Field(
        default=10, gt=0, description="Requests per second per client to login and RPC paths."
    )
    login_rate_burst: StrictInt = Field(default=20, gt=0)


GpgKeyId = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Fa-f]{16}$",
        description="A long GnuPG key id: 16 hexadecimal digits (gpg --keyid-format=long).",
    ),
]


RegistryPrefix = Annotated[
    str,
    Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9][a-z0-9._-]*)*$"),
]


def image_allowed(image: str, registries: list[str] | tuple[str, ...]) -> bool:
    """``image`` comes from one of ``registries`` (a host, or a host/path prefix)."""
    return any(image.startswith(f"{r.rstrip('/')}/") for r in registries)


class PlatformImages(Strict):
    redis: ImageRef = "docker.io/library/redis:7.4"
    redis_exporter: ImageRef = "docker.io/oliver006/redis_exporter:v1.67.0"
    postgres: ImageRef = Field(
        default="docker.io/library/postgres:16",
        description="PostgreSQL for VM plants (CloudNativePG picks its own on Kubernetes).",
    )
    traefik: ImageRef = Field(default="docker.io/library/traefik:v3.3", description="VM plants.")
    registries: list[RegistryPrefix] = Field(
        default_factory=list,
        description="Registry allowlist (host or host/path): every platform image and "
        "odoo.image must come from one; `plantops check` flags rendered images outside it "
        "(PO-IMG-002) unless policies/settings.yaml gives its own list.",
    )

    @model_validator(mode="after")
    def _allowed(self) -> PlatformImages:
        for field in ("redis", "redis_exporter", "postgres", "traefik"):
            image = getattr(self, field)
            if self.registries and not image_allowed(image, self.registries):
                raise ValueError(
                    f"{field}: {image!r} is not from an allowed registry "
                    f"({', '.join(self.registries)}): mirror it there or extend registries"
                )
        return self


SECRET_TEMPLATE_FIELDS = ("fleet", "cluster", "namespace")


def _check_template(value: str) -> str:
    for _, field, _, _ in string.Formatter().parse(value):
        if field is not None and field not in SECRET_TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{field}}}: use {{fleet}}, {{cluster}} or {{namespace}}"
            )
    return value


Template = Annotated[str, Field(min_length=1), AfterValidator(_check_template)]


class VaultSecrets(Strict):
    server: str = Field(pattern=r"^https://[^\s/]+(/[^\s]*)?$", description="Vault address.")
    path: str = Field(default="secret", min_length=1, description="KV mount.")
    version: Literal["v1", "v2"] = "v2"
    auth_mount: Template = Field(
        default="kubernetes-{cluster}",
        description="Vault Kubernetes auth mount, one per cluster (each mount trusts one "
        "cluster's API server to review the ServiceAccount token).",
    )
    role: Template = Field(
        default="plantops-{namespace}",
        description="Vault role per deployment; bind it to the namespace's secret-store "
        "ServiceAccount and a policy reading only <fleet>/<cluster>/<namespace>/*.",
    )


class AwsSecrets(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
    service: Literal["SecretsManager", "ParameterStore"] = "SecretsManager"
    role_arn: Template = Field(
        pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/",
        description="IAM role per deployment (IRSA on the secret-store ServiceAccount), "
        "e.g. arn:aws:iam::123456789012:role/plantops-{namespace}.",
    )


class GcpSecrets(Strict):
    project_id: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    service_account: Template = Field(
        description="Google service account per deployment (Workload Identity), "
        "e.g. pl-{namespace}@my-project.iam.gserviceaccount.com.",
    )


class SecretsSettings(Strict):
    """The secret store's provider: plantops renders a namespaced SecretStore per
    deployment namespace, authenticating with that namespace's own identity."""

    provider: Literal["vault", "aws", "gcp"]
    vault: VaultSecrets | None = None
    aws: AwsSecrets | None = None
    gcp: GcpSecrets | None = None

    @model_validator(mode="after")
    def _one_provider(self) -> SecretsSettings:
        given = [p for p in ("vault", "aws", "gcp") if getattr(self, p) is not None]
        if given != [self.provider]:
            raise ValueError(
                f"provider: {self.provider} needs its own block `{self.provider}:` and no other "
                f"(given: {', '.join(given) or 'none'})"
            )
        return self


class PlatformSettings(Strict):
    """Where the shared platform services live; every field has a default."""

    argocd_namespace: Name = "argocd"
    gitops_repo: str | None = Field(
        default=None,
        min_length=1,
        description="Git URL Argo CD reads the rendered tree from "
        "(default https://git.<domain>/<slug>/plantops-deploy.git).",
    )
    gitops_revision: str = Field(default="main", min_length=1)
    gitops_signature_keys: list[GpgKeyId] = Field(
        default_factory=list,
        description="Long (16-hex) GnuPG key ids allowed to sign the rendered tree's commits; "
        "when set, every AppProject lists them in signatureKeys and Argo CD refuses to sync "
        "an unsigned commit or one signed by another key. The public keys must be imported "
        "into Argo CD (argocd-gpg-keys-cm).",
    )
    cnpg_namespace: Name = Field(default="cnpg-system", description="CloudNativePG operator.")
    monitoring_namespace: Name = Field(default="monitoring", description="Prometheus.")
    storage: StorageSettings = Field(default_factory=StorageSettings)
    ingress: IngressSettings = Field(default_factory=IngressSettings)
    backup_store: ObjectStorage | None = Field(
        default=None,
        description="Object store for PostgreSQL base backups and WAL "
        "(default s3://<slug>-plantops-backups).",
    )
    images: PlatformImages = Field(default_factory=PlatformImages)
    secrets: SecretsSettings | None = Field(
        default=None,
        description="Secret provider details: a namespaced SecretStore per deployment. "
        "Without it every ExternalSecret uses defaults.secret_store (one shared store).",
    )


GateName = Literal[
    "addons", "vulnerabilities", "policy", "rehearsal", "smoke", "approvals", "soak", "windows"
]


class ApprovalRule(Strict):
    count: StrictInt = Field(default=0, ge=0, le=20, description="Approvals needed.")
    roles: list[Name] = Field(
        default_factory=list,
        description="Roles that must each be among the approvers (the count includes them).",
    )


class ReleaseWindow(Strict):
    """When a stage may be changed (plant local time); outside freezes and shift changes."""

    name: Name
    rrule: str = Field(description="Recurrence rule, e.g. FREQ=WEEKLY;BYDAY=SA")
    at: HHMM = Field(description="Local start time of each recurrence.")
    duration_hours: StrictFloat = Field(gt=0, le=24 * 7)

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str) -> str:
        check_rrule(value)
        return value


class StageRelease(Strict):
    """The gates a release must pass to enter one stage (``releases.stages.<env>``)."""

    gates: list[GateName] = Field(default_factory=list)
    approvals: ApprovalRule = Field(default_factory=ApprovalRule)
    approvals_by_tier: dict[Name, ApprovalRule] = Field(
        default_factory=dict, description="Per-tier approval rules (override `approvals`)."
    )
    soak_hours: StrictFloat = Field(
        default=0, ge=0, description="Time in the previous stage before this one."
    )
    wave_soak_hours: StrictFloat = Field(
        default=0, ge=0, description="Time after the previous wave of this stage."
    )
    windows: list[ReleaseWindow] = Field(
        default_factory=list, description="Allowed windows; empty: any time outside freezes."
    )


class ReleaseSettings(Strict):
    stages: dict[Name, StageRelease] = Field(default_factory=dict)
    shift_change_margin_minutes: StrictInt = Field(
        default=30, ge=0, le=240, description="No promotion this close to a shift start or end."
    )
    vulns_policy: str | None = Field(
        default=None, description="Vulnerability policy YAML, relative to the fleet repo."
    )


class FleetSpec(Strict):
    """``fleet.yaml``."""

    apiVersion: Literal["plantops.io/v1"]
    kind: Literal["Fleet"]
    organization: Organization
    odoo: OdooSpec
    environments: list[EnvironmentSpec] = Field(min_length=1)
    clusters: list[ClusterSpec] = Field(default_factory=list)
    tiers: dict[Name, TierSpec] = Field(min_length=1)
    resource_profiles: dict[Name, ResourceProfile] = Field(min_length=1)
    classification: Thresholds = Field(default_factory=Thresholds)
    pricing: Pricing
    defaults: Defaults
    platform: PlatformSettings = Field(default_factory=PlatformSettings)
    releases: ReleaseSettings = Field(default_factory=ReleaseSettings)

    @model_validator(mode="after")
    def _odoo_image_allowed(self) -> FleetSpec:
        allowed = self.platform.images.registries
        if allowed and not image_allowed(self.odoo.image, allowed):
            raise ValueError(
                f"odoo.image {self.odoo.image!r} is not from platform.images.registries "
                f"({', '.join(allowed)})"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _backup_encryption_defaults(cls, data: Any) -> Any:
        # The default depends on the tier's name and rank, which TierSpec alone does not
        # know: resolved here, so every reader (render, backup, deployment.json) sees the
        # one value in force. Malformed input is left for the field validators to locate.
        if not isinstance(data, dict) or not isinstance(data.get("tiers"), dict):
            return data
        tiers: dict[Any, Any] = {}
        for name, given in data["tiers"].items():
            tiers[name] = given
            backup = given.get("backup") if isinstance(given, dict) else None
            if isinstance(backup, dict) and "encryption" not in backup:
                rank = given.get("rank")
                required = name in ENCRYPTED_TIERS or (type(rank) is int and rank <= 2)
                backup = {**backup, "encryption": "required" if required else "optional"}
                tiers[name] = {**given, "backup": backup}
        return {**data, "tiers": tiers}


# --- plants/<code>.yaml -------------------------------------------------------


class Placement(Strict):
    preference: Literal["auto", "shared", "dedicated"] = "auto"
    cluster: Name | None = Field(
        default=None, description="Cluster to run on; chosen by region if empty."
    )
    tenant_group: Name | None = Field(
        default=None, description="Plants of one tenant group share a multi-tenant Odoo."
    )


class Users(Strict):
    named: StrictInt = Field(ge=1)
    peak_concurrent: StrictInt = Field(ge=1)

    @model_validator(mode="after")
    def _peak(self) -> Users:
        if self.peak_concurrent > self.named:
            raise ValueError(
                f"peak_concurrent ({self.peak_concurrent}) exceeds named users ({self.named})"
            )
        return self


class Regulation(StrEnum):
    fda_21_cfr_part_11 = "fda-21-cfr-part-11"
    iso_13485 = "iso-13485"
    iatf_16949 = "iatf-16949"
    gxp = "gxp"
    iso_9001 = "iso-9001"
    iso_27001 = "iso-27001"
    sox = "sox"


class IntegrationType(StrEnum):
    MES = "MES"
    WMS = "WMS"
    EDI = "EDI"
    IoT = "IoT"
    API = "API"
    PLM = "PLM"


class Level(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class Integration(Strict):
    name: Name
    type: IntegrationType
    direction: Literal["inbound", "outbound", "bidirectional"]
    criticality: Level
    endpoint: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.-]+(/[0-9]{1,2})?:[0-9]{1,5}$",
        description="host:port or CIDR:port Odoo talks to (needed for outbound traffic).",
    )


class Volume(Strict):
    orders_per_day: StrictInt = Field(default=0, ge=0)
    stock_moves_per_day: StrictInt = Field(default=0, ge=0)


class Profile(Strict):
    production_critical: StrictBool = False
    regulatory: list[Regulation] = Field(default_factory=list)
    integrations: list[Integration] = Field(default_factory=list)
    volume: Volume = Field(default_factory=Volume)
    latency_sensitivity: Level = Level.medium
    customization: Literal["none", "light", "moderate", "heavy"] = "light"
    data_residency: str | None = Field(default=None, pattern=r"^[A-Z]{2,3}$")
    warehouse_only: StrictBool = False


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Shift(Strict):
    name: Name
    start: HHMM
    end: HHMM
    days: list[Weekday] = Field(default_factory=lambda: list(ALL_DAYS), min_length=1)

    @model_validator(mode="after")
    def _not_empty(self) -> Shift:
        if self.start == self.end:
            raise ValueError("a shift cannot start and end at the same time")
        return self


class FreezeKind(StrEnum):
    month_end_close = "month-end-close"
    mrp_run = "mrp-run"
    shutdown = "shutdown"
    audit = "audit"
    peak_season = "peak-season"
    other = "other"


class FreezeWindow(Strict):
    """A period with no changes: one-off (start/end) or recurring (RFC 5545 RRULE)."""

    name: Name
    kind: FreezeKind
    start: dt.datetime | None = Field(default=None, description="One-off start, plant local time.")
    end: dt.datetime | None = None
    rrule: str | None = Field(
        default=None, description="Recurrence rule, e.g. FREQ=MONTHLY;BYMONTHDAY=-1"
    )
    at: HHMM | None = Field(default=None, description="Local start time of each recurrence.")
    duration_hours: StrictFloat | None = Field(default=None, gt=0, le=24 * 31)

    @model_validator(mode="after")
    def _one_shape(self) -> FreezeWindow:
        one_off = self.start is not None or self.end is not None
        recurring = self.rrule is not None
        if one_off == recurring:
            raise ValueError("give either start and end (one-off) or rrule, at and duration_hours")
        if one_off:
            if self.start is None or self.end is None or self.end <= self.start:
                raise ValueError("a one-off freeze needs start and end, end after start")
        elif self.at is None or self.duration_hours is None:
            raise ValueError("a recurring freeze needs at (HH:MM) and duration_hours")
        return self

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        if value is None:
            return value
        check_rrule(value)
        return value


RRULE_KEYS = {
    "FREQ",
    "INTERVAL",
    "BYMONTHDAY",
    "BYDAY",
    "BYMONTH",
    "BYSETPOS",
    "BYHOUR",
    "COUNT",
    "UNTIL",
    "WKST",
}
RRULE_FREQ = {"DAILY", "WEEKLY", "MONTHLY", "YEARLY"}


def check_rrule(value: str) -> None:
    """Reject an RRULE that plantops cannot expand (no dateutil needed just to check keys)."""
    parts = dict(p.split("=", 1) for p in value.split(";") if "=" in p)
    if len(parts) != len(value.split(";")):
        raise ValueError(f"rrule {value!r} must be KEY=VALUE pairs separated by ';'")
    unknown = set(parts) - RRULE_KEYS
    if unknown:
        raise ValueError(f"rrule has unsupported keys {sorted(unknown)}")
    if parts.get("FREQ") not in RRULE_FREQ:
        raise ValueError(f"rrule FREQ must be one of {sorted(RRULE_FREQ)}")


OverrideTarget = Literal[
    "pattern",
    "tier",
    "web_replicas",
    "postgres_instances",
    "pgbouncer",
    "resource_profile",
    "users_per_worker",
]


class Override(Strict):
    """A controlled exception to what classification or the tier would decide."""

    target: OverrideTarget
    value: str | int | bool
    owner: str = Field(min_length=3, description="Who answers for this exception (e-mail).")
    reason: str = Field(min_length=10)
    expires: dt.date
    ticket: str | None = None


class PlantSpec(Strict):
    """``plants/<code>.yaml``."""

    apiVersion: Literal["plantops.io/v1"]
    kind: Literal["Plant"]
    code: Name
    name: str = Field(min_length=1)
    region: Region
    timezone: str
    runtime: Literal["kubernetes", "vm"] = "kubernetes"
    placement: Placement = Field(default_factory=Placement)
    environments: list[Name] | None = Field(
        default=None, description="Stages this plant runs in; all fleet environments if omitted."
    )
    users: Users
    profile: Profile = Field(default_factory=Profile)
    shifts: list[Shift] = Field(default_factory=list)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    release_wave: StrictInt | None = Field(
        default=None,
        ge=0,
        le=99,
        description="Promotion wave within a stage (0 = canary); default from the tier: "
        "the least demanding tier first, the most demanding last.",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
            close = sorted(
                z for z in available_timezones() if z.split("/")[-1] == value.split("/")[-1]
            )
            hint = (
                f"; did you mean {close[0]}?" if close else " (an IANA name such as Europe/Berlin)"
            )
            raise ValueError(f"unknown timezone {value!r}{hint}") from None
        return value


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema for editors: a fleet.yaml or a plant file, told apart by ``kind``."""
    fleet = FleetSpec.model_json_schema(ref_template="#/$defs/{model}")
    plant = PlantSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = {**fleet.pop("$defs", {}), **plant.pop("$defs", {})}
    defs["FleetSpec"] = fleet
    defs["PlantSpec"] = plant
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://plantops.io/schemas/v1/spec.json",
        "title": "plantops fleet spec v1",
        "oneOf": [{"$ref": "#/$defs/FleetSpec"}, {"$ref": "#/$defs/PlantSpec"}],
        "$defs": dict(sorted(defs.items())),
    }


__all__ = [
    "API_VERSION",
    "SERIES",
    "ClusterSpec",
    "EnvironmentSpec",
    "FleetSpec",
    "FreezeWindow",
    "Integration",
    "ObjectStorage",
    "Override",
    "PlantSpec",
    "PlatformSettings",
    "ResourceProfile",
    "Shift",
    "TierSpec",
    "spec_json_schema",
]

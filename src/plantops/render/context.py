"""Fleet-wide settings every renderer needs, resolved once per plan (defaults filled in)."""

from __future__ import annotations

from dataclasses import dataclass

from plantops.spec.models import (
    Defaults,
    FleetSpec,
    ObjectStorage,
    PlatformSettings,
    SecretStoreRef,
)


@dataclass(frozen=True)
class RenderContext:
    domain: str
    slug: str
    platform: PlatformSettings
    defaults: Defaults
    gitops_repo: str
    backup_store: ObjectStorage

    @property
    def secret_store(self) -> SecretStoreRef:
        return self.defaults.secret_store

    @classmethod
    def from_fleet(cls, spec: FleetSpec) -> RenderContext:
        org = spec.organization
        p = spec.platform
        repo = p.gitops_repo or f"https://git.{org.domain}/{org.slug}/plantops-deploy.git"
        store = p.backup_store or ObjectStorage(destination=f"s3://{org.slug}-plantops-backups")
        return cls(
            domain=org.domain,
            slug=org.slug,
            platform=p,
            defaults=spec.defaults,
            gitops_repo=repo,
            backup_store=store,
        )

"""The immutable release lock: what a release *is*, so the same artifact moves through the
stages.

A lock holds the Odoo series and edition, the image by digest (a tag alone is refused: a
tag can be moved, a digest cannot), each addon with its version, checksum and — where its
directory is in a Git repository — the commit and whether the work tree was dirty, a hash
of the image's package list and a hash of the configuration the fleet renders. Its id is
the SHA-256 of the canonical JSON of that content (sorted keys, no whitespace, no
timestamps, no local paths): the same content always gives the same id, on any machine,
and a lock edited by hand no longer matches its id.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plantops.addons import Addon
from plantops.addons.inputs import PackageList
from plantops.errors import UserError, display_path
from plantops.inputs import Limits, json_value, read_text

LOCK_VERSION = 1
LOCK_LIMITS = Limits(max_bytes=16 * 1024 * 1024, max_nodes=1_000_000, max_depth=16)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# A reference: [registry[:port]/]path[:tag]@sha256:<64 hex> (distribution/reference grammar,
# simplified to what a lock needs: a repository and a digest).
_REF = re.compile(
    r"^(?P<repo>[a-z0-9][a-z0-9._\-/:]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?@(?P<digest>.+)$"
)


class LockError(UserError):
    """A lock that cannot be made or trusted (exit 2)."""


@dataclass(frozen=True)
class ImageRef:
    repository: str
    digest: str
    tag: str | None = None

    @property
    def pinned(self) -> str:
        return f"{self.repository}@{self.digest}"


def parse_image_ref(ref: str) -> ImageRef:
    match = _REF.match(ref.strip())
    if match is None:
        raise LockError(
            f"--image {ref}: a release pins its image by digest, not by tag "
            "(expected REPOSITORY[:TAG]@sha256:<64 hex>; `docker buildx imagetools inspect` "
            "or `crane digest` prints it)"
        )
    digest = match["digest"]
    if not _DIGEST.match(digest):
        raise LockError(f"--image {ref}: digest {digest!r} is not sha256:<64 lowercase hex>")
    return ImageRef(match["repo"], digest, match["tag"])


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def lock_id(content: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(content).encode()).hexdigest()


def package_list_hash(packages: PackageList) -> str:
    """Over the canonical ``name==version`` lines, so reordering or comments change nothing."""
    lines = sorted(f"{n}=={v or ''}" for n, v in packages.versions.items())
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class GitSource:
    commit: str
    dirty: bool


def git_source(directory: Path, *, timeout: float = 10.0) -> GitSource | None:
    """The commit of the repository holding ``directory`` and whether that directory has
    uncommitted changes; ``None`` outside a repository or without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return GitSource(head.stdout.strip(), bool(status.stdout.strip()))


def build_lock_content(
    *,
    series: str,
    edition: str,
    image: ImageRef,
    addons: Sequence[Addon],
    checksums: Mapping[str, str],
    sources: Mapping[str, GitSource | None],
    packages: PackageList | None,
    config_hash: str,
    deployments: int,
) -> dict[str, Any]:
    """The canonical content (pure). ``checksums``/``sources`` are keyed by addon name;
    only the addon that Odoo loads (first in the addons paths) is locked."""
    first: dict[str, Addon] = {}
    for addon in sorted(addons, key=lambda a: (a.order, a.name)):
        first.setdefault(addon.name, addon)
    entries = []
    for name in sorted(first):
        a = first[name]
        src = sources.get(name)
        entries.append(
            {
                "name": name,
                "version": a.parsed.manifest.version,
                "installable": a.parsed.manifest.installable,
                "checksum": checksums[name],
                "source": {"commit": src.commit, "dirty": src.dirty} if src else None,
            }
        )
    return {
        "version": LOCK_VERSION,
        "odoo": {"series": series, "edition": edition},
        "image": {"repository": image.repository, "digest": image.digest},
        "addons": entries,
        "packages": package_list_hash(packages) if packages is not None else None,
        "config": {"sha256": config_hash, "deployments": deployments},
    }


def render_lock(content: Mapping[str, Any]) -> str:
    """The lock file text: its id and content, indented for review, newline-terminated."""
    return json.dumps({"id": lock_id(content), "lock": content}, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Lock:
    id: str
    content: Mapping[str, Any]
    file: str


def read_lock(path: Path) -> Lock:
    """A lock file whose content still matches its id (else :class:`LockError`, exit 2)."""
    shown = display_path(path, Path.cwd())
    doc = json_value(read_text(path, shown, limits=LOCK_LIMITS), shown, limits=LOCK_LIMITS)
    if not isinstance(doc, dict) or set(doc) != {"id", "lock"} or not isinstance(doc["lock"], dict):
        raise LockError(f"{shown}: not a plantops release lock (expected {{id, lock}})")
    content = doc["lock"]
    if content.get("version") != LOCK_VERSION:
        raise LockError(
            f"{shown}: lock version {content.get('version')!r}, expected {LOCK_VERSION}"
        )
    actual = lock_id(content)
    if doc["id"] != actual:
        raise LockError(
            f"{shown}: content does not match its id {doc['id']} (it hashes to {actual}); "
            "the lock was edited after it was created — create a new release instead"
        )
    if not _DIGEST.match(str(content.get("image", {}).get("digest", ""))):
        raise LockError(f"{shown}: image has no sha256 digest")
    return Lock(actual, content, shown)


__all__ = [
    "LOCK_VERSION",
    "GitSource",
    "ImageRef",
    "Lock",
    "LockError",
    "build_lock_content",
    "canonical_json",
    "git_source",
    "lock_id",
    "package_list_hash",
    "parse_image_ref",
    "read_lock",
    "render_lock",
]

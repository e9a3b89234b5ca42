"""Release pins: which release one plant runs in one environment, as a file in the fleet repo.

``<fleet>/releases/<plant>/<environment>.yaml`` is written by promotion (and rollback) and
read by the renderer, so the pinned image digest and the release's configuration hash flow
into that deployment's rendered tree — and only into it: a pin change re-renders one
deployment, not the fleet. A deployment without a pin renders the fleet-wide image.

A pin holds the release (lock id), the image by digest, the digest of the lock's addon
entries, the modules the upgrade must update (``odoo -u``; from the lock diff against the
release it replaces), the fleet's configuration hash, the stage, when it was promoted,
and the pins it replaced (most recent first, bounded), which is what rollback reads. Its
``digest`` is the SHA-256 of the canonical JSON of everything else, so a pin edited by
hand is told from one plantops wrote: reading refuses it (located, exit 2), and
:func:`write_pin` never replaces a file that is not exactly the pin the caller decided
from (a compare-and-swap under a lock) unless forced.

Parsing and rendering are pure; :func:`read_pins` and :func:`write_pin` are the only I/O
(bounded reads through :mod:`plantops.inputs`; atomic, fsynced writes). Nothing prints.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plantops.addons.checksum import changed_addons
from plantops.errors import Problem, SpecError, UserError, display_path
from plantops.inputs import BadInput
from plantops.names import check_label, is_label
from plantops.plan import Deployment, PinnedRelease
from plantops.release.lock import Lock, canonical_json
from plantops.render.yamlout import emit_yaml
from plantops.spec.cache import ParseCache, spec_cache_dir
from plantops.spec.loader import SourceMap, read_yaml, validate_model

RELEASES_DIR = "releases"
PIN_API = "plantops.io/v1"
PIN_KIND = "ReleasePin"
HISTORY_LIMIT = 10
"""Pins kept behind the current one: enough to roll back through a bad week of promotions,
small enough that the file stays reviewable."""

_SHA256 = r"^sha256:[0-9a-f]{64}$"
Digest = Annotated[str, Field(pattern=_SHA256)]
# [registry[:port]/]path@sha256:<64 hex> — what Kubernetes pulls; a tag is never pinned.
PinnedImage = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}$", max_length=512)
]
# Odoo technical module names (the addon's directory name): a Python identifier in practice.
# No ',' (the -u list separator), no space, nothing a shell could read.
ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,128}$")]
Label = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$", max_length=63)]


class PinError(UserError):
    """A pin that cannot be read, written or trusted (exit 2)."""


class PinConflict(PinError):
    """The pin file is not the one the caller decided from (edited by hand, or written by
    someone else since): nothing was written."""


class PinRecord(BaseModel):
    """One release as pinned to a deployment (the current one, or one in the history)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: Digest = Field(description="The release lock id (`plantops release create`).")
    image: PinnedImage = Field(description="The release's image, REPOSITORY@sha256:….")
    addons: Digest = Field(description="SHA-256 of the lock's addon entries.")
    update_modules: tuple[ModuleName, ...] = Field(
        default=(),
        description="Modules whose checksum changed from the release this one replaced: "
        "what the rendered upgrade Job updates (`odoo -u`). Empty: image-only change.",
    )
    config: Digest = Field(description="The fleet configuration hash of the release.")
    stage: Label = Field(description="The stage the release was promoted to.")
    promoted_at: dt.datetime = Field(description="When it was promoted (UTC).")
    rollback_of: Digest | None = Field(
        default=None,
        description="Set when this pin was written by a rollback: the release " "rolled back from.",
    )

    @field_validator("update_modules")
    @classmethod
    def _sorted_unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))

    @field_validator("promoted_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("promoted_at needs a timezone (write it in UTC, ending in Z)")
        return value.astimezone(dt.UTC).replace(microsecond=0)

    @property
    def migrates(self) -> bool:
        """Whether applying this release runs a module update against the database."""
        return bool(self.update_modules)

    @property
    def upgrade_id(self) -> str:
        """A short id naming this promotion's rendered upgrade objects (the pre-upgrade
        Backup, the upgrade Job): one per release *and* promotion time, so promoting the same
        release again after a rollback never collides with the objects of the first time."""
        seed = f"{self.release}|{_stamp(self.promoted_at)}"
        return hashlib.sha256(seed.encode()).hexdigest()[:10]

    def as_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "release": self.release,
            "image": self.image,
            "addons": self.addons,
            "update_modules": list(self.update_modules),
            "config": self.config,
            "stage": self.stage,
            "promoted_at": _stamp(self.promoted_at),
        }
        if self.rollback_of is not None:
            doc["rollback_of"] = self.rollback_of
        return doc


class Pin(BaseModel):
    """The release pinned to one plant × environment, with the pins it replaced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plant: Label
    environment: Label
    current: PinRecord
    history: tuple[PinRecord, ...] = Field(default=(), max_length=HISTORY_LIMIT)

    @property
    def key(self) -> tuple[str, str]:
        return (self.plant, self.environment)

    @property
    def previous(self) -> PinRecord | None:
        """The pin this one replaced (what a plain rollback returns to)."""
        return self.history[0] if self.history else None

    @property
    def digest(self) -> str:
        return pin_digest(self)

    def body(self) -> dict[str, Any]:
        """The content the digest covers, in file order."""
        return {
            "apiVersion": PIN_API,
            "kind": PIN_KIND,
            "plant": self.plant,
            "environment": self.environment,
            "current": self.current.as_document(),
            "history": [h.as_document() for h in self.history],
        }


class _PinFile(BaseModel):
    """The file as written: a pin plus the digest of its content."""

    model_config = ConfigDict(extra="forbid")

    apiVersion: Literal["plantops.io/v1"]
    kind: Literal["ReleasePin"]
    plant: Label
    environment: Label
    current: PinRecord
    history: list[PinRecord] = Field(default_factory=list, max_length=HISTORY_LIMIT)
    digest: Digest


def _stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pin_digest(pin: Pin) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(pin.body()).encode()).hexdigest()


# --- building pins (pure) ---------------------------------------------------------------


def addons_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of a lock's addon entries (names, versions, checksums, sources)."""
    entries = content.get("addons", [])
    return "sha256:" + hashlib.sha256(canonical_json(entries).encode()).hexdigest()


def addon_checksums(content: Mapping[str, Any]) -> dict[str, str]:
    """``{name: checksum}`` of a lock's installable addons."""
    return {
        str(a["name"]): str(a["checksum"])
        for a in content.get("addons", [])
        if isinstance(a, dict) and a.get("installable", True)
    }


def modules_to_update(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...]:
    """The modules an upgrade from lock content ``old`` to ``new`` must update: addons whose
    checksum changed. With no previous release (a first pin) nothing is updated: the
    database was initialised by the release the fleet ran, and the first pin only fixes it.
    """
    if old is None:
        return ()
    return tuple(changed_addons(addon_checksums(old), addon_checksums(new)))


def record_from_lock(
    lock: Lock,
    *,
    stage: str,
    promoted_at: dt.datetime,
    update_modules: Sequence[str] = (),
) -> PinRecord:
    """The pin record of ``lock`` promoted to ``stage`` at ``promoted_at``."""
    image = lock.content["image"]
    return PinRecord(
        release=lock.id,
        image=f"{image['repository']}@{image['digest']}",
        addons=addons_digest(lock.content),
        update_modules=tuple(update_modules),
        config=str(lock.content["config"]["sha256"]),
        stage=stage,
        promoted_at=promoted_at,
    )


def next_pin(current: Pin | None, record: PinRecord, *, plant: str, environment: str) -> Pin:
    """The pin that replaces ``current`` (``None``: no pin yet) with ``record``; the replaced
    record goes to the front of the history."""
    check_label(plant, "plant")
    check_label(environment, "environment")
    if current is not None and current.key != (plant, environment):
        raise PinError(
            f"pin of {current.plant}/{current.environment} cannot be replaced by "
            f"one for {plant}/{environment}"
        )
    history = (current.current, *current.history)[:HISTORY_LIMIT] if current else ()
    return Pin(plant=plant, environment=environment, current=record, history=history)


def rollback_pin(current: Pin, *, to: str | None = None, at: dt.datetime) -> Pin:
    """The pin that rolls ``current`` back to the record of release ``to`` in its history
    (default: the previous one). The target becomes current again (marked ``rollback_of`` the
    release rolled back from, promoted at ``at``); it and everything newer leave the history,
    so a second rollback goes further back, never forward to the bad release."""
    if not current.history:
        raise PinError(
            f"{current.plant}/{current.environment}: no previous release to roll back to "
            "(the pin has no history); remove the pin to return to the fleet-wide image"
        )
    index = 0
    if to is not None:
        matches = [i for i, h in enumerate(current.history) if h.release.startswith(to)]
        if not matches:
            known = ", ".join(h.release[:19] for h in current.history)
            raise PinError(
                f"--to {to}: not in the pin history of {current.plant}/"
                f"{current.environment} (known: {known})"
            )
        index = matches[0]
    target = current.history[index]
    # Never ``odoo -u`` on the way back: Odoo has no module downgrade, so the record's
    # modules are cleared and the database, if a newer release migrated it, is restored
    # instead (release.rollback decides).
    restored = target.model_copy(
        update={
            "promoted_at": at.astimezone(dt.UTC).replace(microsecond=0),
            "rollback_of": current.current.release,
            "update_modules": (),
        }
    )
    return Pin(
        plant=current.plant,
        environment=current.environment,
        current=restored,
        history=current.history[index + 1 :],
    )


# --- text (pure) -----------------------------------------------------------------------

_HEADER = (
    "# Release pin written by plantops (promote / rollback). Do not edit by hand: the digest\n"
    "# below covers this content, and a changed file is refused until it is restored.\n"
)


def render_pin(pin: Pin) -> str:
    """The pin file text (deterministic: same pin, same bytes)."""
    return _HEADER + emit_yaml({**pin.body(), "digest": pin.digest})


def parse_pin(data: Any, source: SourceMap, *, path_key: tuple[str, str] | None = None) -> Pin:
    """A pin from parsed YAML ``data`` (located :class:`SpecError` otherwise). With
    ``path_key`` (the plant and environment its path names), the content must agree."""
    doc, problems = validate_model(_PinFile, data, source)
    if doc is None:
        raise SpecError(problems)
    pin = Pin(
        plant=doc.plant,
        environment=doc.environment,
        current=doc.current,
        history=tuple(doc.history),
    )
    found: list[Problem] = []
    if path_key is not None and pin.key != path_key:
        where = source.locate(("plant",), value=True)
        found.append(
            Problem(
                where.file,
                where.line,
                where.column,
                "plant",
                f"pin for {pin.plant}/{pin.environment} stored as " f"{path_key[0]}/{path_key[1]}",
                f"a pin lives at {RELEASES_DIR}/<plant>/<environment>.yaml",
            )
        )
    actual = pin.digest
    if doc.digest != actual:
        where = source.locate(("digest",), value=True)
        found.append(
            Problem(
                where.file,
                where.line,
                where.column,
                "digest",
                f"content does not match its digest (it hashes to {actual}): the pin was "
                "edited by hand",
                "restore it (git checkout) and change releases with `plantops promote` or "
                "`plantops rollback`",
            )
        )
    if found:
        raise SpecError(found)
    return pin


# --- pins → deployments (pure) -----------------------------------------------------------


def apply_pins(
    deployments: Sequence[Deployment],
    pins: Mapping[tuple[str, str], Pin],
    *,
    fleet_dir: Path,
    every_deployment: bool = True,
) -> tuple[Deployment, ...]:
    """``deployments`` with their pinned release attached (image by the pinned digest).

    Plants that share one deployment (a tenant group) run one image, so they are pinned
    together: all to the same release, or none. A pin for a plant × environment that no
    deployment serves is refused when ``every_deployment`` (the whole fleet was planned).
    """
    problems: list[Problem] = []
    out: list[Deployment] = []
    served: set[tuple[str, str]] = set()
    for dep in deployments:
        keys = [(t.plant, dep.environment.name) for t in dep.tenants]
        served.update(keys)
        found = [pins[k] for k in keys if k in pins]
        if not found:
            out.append(dep)
            continue
        releases = {p.current.release for p in found}
        if len(found) != len(keys) or len(releases) > 1:
            shown = display_path(pin_path(fleet_dir, *found[0].key), Path.cwd())
            problems.append(
                Problem(
                    shown,
                    1,
                    1,
                    "current.release",
                    f"plants {', '.join(k[0] for k in keys)} share deployment {dep.id} and run "
                    f"one image, but {len(found)} of {len(keys)} are pinned "
                    f"({len(releases)} release(s))",
                    "promote or roll back the plants of a tenant group together",
                )
            )
            out.append(dep)
            continue
        first = found[0]
        repo, _, digest = first.current.image.partition("@")
        previous = first.previous
        out.append(
            dataclasses.replace(
                dep,
                image=repo,
                digest=digest,
                release=PinnedRelease(
                    release=first.current.release,
                    image=repo,
                    digest=digest,
                    config=first.current.config,
                    stage=first.current.stage,
                    promoted_at=_stamp(first.current.promoted_at),
                    update_modules=tuple(
                        sorted({m for p in found for m in p.current.update_modules})
                    ),
                    upgrade_id=first.current.upgrade_id,
                    previous_image=(previous.image if previous else f"{dep.image}@{dep.digest}"),
                    pin_digest=",".join(p.digest for p in found),
                ),
            )
        )
    if every_deployment:
        for key in sorted(set(pins) - served):
            shown = display_path(pin_path(fleet_dir, *key), Path.cwd())
            problems.append(
                Problem(
                    shown,
                    1,
                    1,
                    "plant",
                    f"no deployment serves plant {key[0]} in environment {key[1]}",
                    "remove the pin, or add the plant/environment to the fleet",
                )
            )
    if problems:
        raise SpecError(sorted(problems))
    return tuple(out)


# --- files (I/O) -----------------------------------------------------------------------


def pin_path(fleet_dir: Path, plant: str, environment: str) -> Path:
    check_label(plant, "plant")
    check_label(environment, "environment")
    return fleet_dir / RELEASES_DIR / plant / f"{environment}.yaml"


def _read_one(
    path: Path, shown: str, root: Path, key: tuple[str, str], cache: ParseCache | None = None
) -> Pin:
    data, source, problems = read_yaml(path, shown, cache, root=root)
    if problems:
        raise SpecError(problems)
    return parse_pin(data, source, path_key=key)


def read_pin(fleet_dir: Path, plant: str, environment: str) -> Pin | None:
    """The pin of one plant × environment, or ``None`` when it has none."""
    path = pin_path(fleet_dir, plant, environment)
    if not path.exists() and not path.is_symlink():
        return None
    shown = display_path(path, Path.cwd())
    return _read_one(path, shown, fleet_dir / RELEASES_DIR, (plant, environment))


def _pins_cache(root: Path) -> ParseCache:
    """Parsed pin files by text digest, beside the fleet's own parse cache
    (``$PLANTOPS_SPEC_CACHE``): a plan of a fully promoted fleet reads thousands of pins,
    and parsing is most of their cost. Validation and the digest check run as always."""
    base = spec_cache_dir()
    if base is None:
        return ParseCache(None)
    key = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:24]
    return ParseCache(base / f"{key}-pins.pickle")


def read_pins(fleet_dir: Path, *, use_cache: bool = True) -> dict[tuple[str, str], Pin]:
    """Every pin of the fleet, by ``(plant, environment)``; every problem at once."""
    root = fleet_dir / RELEASES_DIR
    if not root.is_dir():
        return {}
    pins: dict[tuple[str, str], Pin] = {}
    problems: list[Problem] = []
    cache = _pins_cache(root) if use_cache else None
    shown_root = display_path(root, Path.cwd())
    for plant_dir in sorted(root.iterdir()):
        if plant_dir.name.startswith("."):
            continue
        shown_dir = f"{shown_root}/{plant_dir.name}"
        if not is_label(plant_dir.name) or not plant_dir.is_dir() or plant_dir.is_symlink():
            problems.append(
                Problem(
                    shown_dir,
                    1,
                    1,
                    "",
                    "not a plant directory of release pins",
                    f"{RELEASES_DIR}/ holds one directory per plant code",
                )
            )
            continue
        for file in sorted(plant_dir.iterdir()):
            shown = f"{shown_dir}/{file.name}"
            env = file.name.removesuffix(".yaml")
            if file.name.startswith("."):
                continue
            if not file.name.endswith(".yaml") or not is_label(env):
                problems.append(
                    Problem(
                        shown, 1, 1, "", "not a release pin", "pins are named <environment>.yaml"
                    )
                )
                continue
            try:
                pins[(plant_dir.name, env)] = _read_one(
                    file, shown, root, (plant_dir.name, env), cache
                )
            except SpecError as exc:
                problems.extend(exc.problems)
            except BadInput as exc:
                problems.append(exc.problem())
    if problems:
        raise SpecError(sorted(problems))
    if cache is not None:
        cache.save()
    return pins


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # The directory itself is locked (flock works on a directory descriptor): no lock file
    # to commit to the fleet repository or to leave behind.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise PinConflict(
                    f"{directory}: another plantops process is writing release pins; retry"
                ) from None
            raise
        yield
    finally:
        os.close(fd)


def write_pin(fleet_dir: Path, pin: Pin, *, replaces: Pin | None, force: bool = False) -> Path:
    """Write ``pin`` atomically, if and only if the file now holds exactly ``replaces``
    (``None``: no file) — a compare-and-swap under a lock on ``releases/``. A file edited by
    hand, or replaced since the caller read it, raises :class:`PinConflict` and nothing is
    written; ``force`` skips the comparison (the reason belongs in the caller's record)."""
    path = pin_path(fleet_dir, pin.plant, pin.environment)
    shown = display_path(path, Path.cwd())
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(fleet_dir / RELEASES_DIR):
        if not force:
            _check_replaces(fleet_dir, path, shown, replaces)
        text = render_pin(pin)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o644)  # a file of the fleet repository, not a private one
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _check_replaces(fleet_dir: Path, path: Path, shown: str, replaces: Pin | None) -> None:
    exists = path.exists() or path.is_symlink()
    if not exists:
        if replaces is not None:
            raise PinConflict(
                f"{shown}: expected the pin of release {replaces.current.release}, "
                "found no file (removed since it was read); read it again"
            )
        return
    if replaces is None:
        raise PinConflict(f"{shown}: a pin exists already; read it and replace it explicitly")
    try:
        found = _read_one(path, shown, fleet_dir / RELEASES_DIR, replaces.key)
    except (SpecError, BadInput) as exc:
        raise PinConflict(
            f"{shown}: not overwritten, it does not verify ({exc}); restore it "
            "or force the write"
        ) from None
    if found.digest != replaces.digest:
        raise PinConflict(
            f"{shown}: changed since it was read (now release {found.current.release}, "
            f"expected {replaces.current.release}); read it again"
        )


__all__ = [
    "HISTORY_LIMIT",
    "RELEASES_DIR",
    "Pin",
    "PinConflict",
    "PinError",
    "PinRecord",
    "addon_checksums",
    "addons_digest",
    "apply_pins",
    "modules_to_update",
    "next_pin",
    "parse_pin",
    "pin_digest",
    "pin_path",
    "read_pin",
    "read_pins",
    "record_from_lock",
    "render_pin",
    "rollback_pin",
    "write_pin",
]

"""Writing the files a user asks for (``schema -o``, ``init``, ``dr plan --out``): whole or
not at all, never over a directory, never into a folder that does not exist, and — unless
asked — never over a file the user already has.

A refusal is a :class:`~plantops.errors.UserError` (exit 2) naming the path and what to do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from plantops.errors import UserError

# What a fleet repository holds as its own source (spec/loader.py PLANTS_DIR, the policy
# folder of check/policy/config.py): a report written over one of them is a user's
# work lost, whatever the command line said.
_FLEET_SOURCES = ("plants", "policies")


def fleet_source_of(path: Path) -> Path | None:
    """The fleet repository whose own source file ``path`` is (its fleet.yaml, a plant
    file or a policy file), or None."""
    target = path.absolute()
    for root in list(target.parents)[:4]:
        if (root / "fleet.yaml").is_file():
            rel = target.relative_to(root).parts
            if rel == ("fleet.yaml",) or (len(rel) > 1 and rel[0] in _FLEET_SOURCES):
                return root
    return None


def check_writable_target(path: Path, *, overwrite: bool = True) -> None:
    """Refuse a target that can never be written as a file, before any work is done, and
    one that is a fleet repository's own source (fleet.yaml, plants/, policies/)."""
    if path.is_dir():
        raise UserError(f"{path} is a directory; name a file to write")
    parent = path.parent
    if not parent.exists():
        raise UserError(f"folder {parent} does not exist; create it first or choose another path")
    if not parent.is_dir():
        raise UserError(f"{parent} is not a folder, so {path} cannot be written")
    if path.exists() and not path.is_file():
        raise UserError(f"{path} exists and is not a regular file")
    fleet = fleet_source_of(path) if overwrite and path.is_file() else None
    if fleet is not None:
        raise UserError(
            f"{path} is a source file of the fleet at {fleet} (fleet.yaml, plants/,"
            " policies/); plantops never writes over them: choose another path"
        )


def check_output_dir(path: Path, option: str = "--out") -> None:
    """``option`` names a directory to write into: an existing one, or a new one whose
    nearest existing ancestor is a folder (it is created with its parents)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} exists and is not a directory; name a directory")
    fleet = fleet_source_of(path / "_")
    if fleet is not None:
        # files written there would be read back as plants or policies of that fleet
        raise UserError(
            f"{option} {path} is inside the source folders of the fleet at {fleet}"
            " (plants/, policies/); write outside them"
        )
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(
                    f"{option} {path}: {parent} is a file, not a folder; choose another path"
                )
            return


def write_text_atomically(path: Path, text: str, *, overwrite: bool = True) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename (a reader sees the
    old file or the new one, never half of one). Returns False, writing nothing, when the
    file exists and ``overwrite`` is off."""
    check_writable_target(path, overwrite=overwrite)
    if path.exists() and not overwrite:
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            Path(tmp).replace(path)
        else:
            try:
                os.link(tmp, path)  # fails if the file appeared meanwhile: never clobber
            except FileExistsError:
                return False
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


__all__ = ["check_writable_target", "fleet_source_of", "write_text_atomically"]

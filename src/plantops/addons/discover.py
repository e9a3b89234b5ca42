"""Discovery of addons in addons paths, the way Odoo finds them.

Odoo lists, in each directory of ``addons_path``, the entries that hold a manifest file
(odoo/modules/module.py ``get_modules`` / ``is_really_module``) and resolves a module name
to the *first* addons path that has it (``get_module_path``): a second copy further down
the path is shadowed, never loaded. plantops keeps that order and reports the shadowing.

A PATH that holds no addon itself but whose sub-directories do (a folder of checked-out
repositories) is expanded into those sub-directories, sorted by name.

Hostile trees are refused, not walked: a symbolic link that leads out of its addons path,
a FIFO or device where a manifest should be, more entries than any real repository holds.
All such problems are collected and raised together as :class:`AddonsInputError` (exit 2).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from plantops.addons.manifest import MANIFEST_NAMES, ParsedManifest, read_manifest
from plantops.errors import Problem, UserError, display_path
from plantops.inputs import BadInput, confined_target, file_kind

# The OCA's largest repositories hold a few hundred addons; Odoo's own addons/ ~600.
MAX_ENTRIES_PER_PATH = 20_000


class AddonsInputError(UserError):
    """Addons paths that cannot be read safely; every problem at once (exit 2)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        head = f"{len(self.problems)} unreadable addon(s) or addons path(s)"
        super().__init__("\n".join([head, *(p.render() for p in self.problems)]))


@dataclass(frozen=True)
class Addon:
    """One addon directory with its parsed manifest."""

    name: str
    path: Path
    addons_path: Path
    order: int
    """Position of its addons path (0 first): the lowest wins, as in Odoo."""
    parsed: ParsedManifest

    @property
    def manifest_file(self) -> str:
        return self.parsed.file


def _manifest_in(entry: Path) -> Path | None:
    for name in MANIFEST_NAMES:
        candidate = entry / name
        try:
            candidate.lstat()
        except FileNotFoundError:
            continue
        except OSError:
            return candidate  # let the reader name the error
        return candidate
    return None


def _has_addon(directory: Path) -> bool:
    try:
        with os.scandir(directory) as it:
            for n, entry in enumerate(it):
                if n > MAX_ENTRIES_PER_PATH:
                    return False
                if entry.is_dir(follow_symlinks=False) and _manifest_in(Path(entry.path)):
                    return True
    except OSError:
        return False
    return False


def expand_addons_paths(paths: Sequence[Path]) -> list[Path]:
    """Each given PATH, or its sub-directories holding addons when it holds none itself."""
    problems: list[Problem] = []
    out: list[Path] = []
    for path in paths:
        shown = display_path(path, Path.cwd())
        try:
            info = path.stat()
        except OSError as exc:
            problems.append(Problem(shown, 1, 1, "", f"addons path: {exc.strerror}"))
            continue
        if not stat.S_ISDIR(info.st_mode):
            problems.append(
                Problem(
                    shown,
                    1,
                    1,
                    "",
                    f"addons path is {file_kind(info.st_mode)}, not a directory",
                    "give a directory of addons (as in Odoo's addons_path)",
                )
            )
            continue
        if _manifest_in(path):
            problems.append(
                Problem(
                    shown,
                    1,
                    1,
                    "",
                    "this is an addon, not an addons path",
                    f"give its parent directory {display_path(path.parent, Path.cwd())}",
                )
            )
            continue
        if _has_addon(path):
            out.append(path)
            continue
        subs = sorted(
            p for p in path.iterdir() if p.is_dir() and not p.is_symlink() and _has_addon(p)
        )
        out.extend(subs or [path])
    if problems:
        raise AddonsInputError(problems)
    return out


def discover_addons(addons_paths: Sequence[Path]) -> list[Addon]:
    """Every addon of every addons path, in addons-path order then by name."""
    problems: list[Problem] = []
    found: list[Addon] = []
    base = Path.cwd()
    for order, root in enumerate(addons_paths):
        try:
            with os.scandir(root) as it:
                # One past the bound is enough to refuse; never list a million entries.
                entries = sorted(islice(it, MAX_ENTRIES_PER_PATH + 1), key=lambda e: e.name)
        except OSError as exc:
            shown = display_path(root, base)
            problems.append(Problem(shown, 1, 1, "", f"cannot list addons path: {exc.strerror}"))
            continue
        if len(entries) > MAX_ENTRIES_PER_PATH:
            problems.append(
                Problem(
                    display_path(root, base),
                    1,
                    1,
                    "",
                    f"addons path has over {MAX_ENTRIES_PER_PATH:,} entries",
                )
            )
            continue
        root_shown = display_path(root, base)  # once: resolving paths dominates a big scan
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            shown = f"{root_shown}/{entry.name}"
            try:
                linked = entry.is_symlink()
                if linked:
                    target = confined_target(path, shown, root)
                    if not target.is_dir():
                        continue
                elif not entry.is_dir(follow_symlinks=False):
                    continue  # files, FIFOs and sockets beside addons: Odoo ignores them too
                manifest_path = _manifest_in(path)
                if manifest_path is None:
                    continue
                # Neither the addon directory nor its manifest a link: the file is in the
                # tree without resolving it; any link is resolved and confined to ``root``.
                confine = linked or manifest_path.is_symlink()
                parsed = read_manifest(
                    manifest_path,
                    f"{shown}/{manifest_path.name}",
                    root=root if confine else None,
                )
            except BadInput as exc:
                problems.append(exc.problem())
                continue
            found.append(Addon(entry.name, path, root, order, parsed))
    if problems:
        raise AddonsInputError(problems)
    return found


__all__ = [
    "MAX_ENTRIES_PER_PATH",
    "Addon",
    "AddonsInputError",
    "discover_addons",
    "expand_addons_paths",
]

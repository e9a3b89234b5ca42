"""The tree writer: deterministic, incremental, atomic.

A plan is built in a temporary sibling directory and swapped in with two renames,
so readers see the old tree or the new one, never a mix. Each deployment carries
a content hash of its inputs; when it matches the previous tree's, the previous
files are carried over instead of rendering again — a directory the deployment
owns alone is *moved* (one rename), other files are hard-linked. Every move is
journaled first, so a failed run moves them back and a killed run is repaired by
the next one (`_recover`). The state file lists every deployment's hash and
files, sorted, with no timestamps: two runs of the same fleet give byte-identical
trees.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from plantops.errors import InfrastructureError, UserError
from plantops.render import RenderedFile

STATE_FILE = ".plantops/state.json"
JOURNAL = ".plantops-moves"  # in the temporary tree only; never part of the output
COMPLETE = ".plantops-complete"
STATE_VERSION = 1


@dataclass(frozen=True)
class UnitOfWork:
    """One deployment to write: its id, input hash, plants, and how to render it."""

    id: str
    input_hash: str
    plants: tuple[str, ...]
    render: Callable[[], Sequence[RenderedFile]]


RenderMany = Callable[[Sequence[UnitOfWork]], Iterable[Sequence[RenderedFile]]]


def _render_serially(units: Sequence[UnitOfWork]) -> Iterator[Sequence[RenderedFile]]:
    for unit in units:
        yield unit.render()


@dataclass(frozen=True)
class Change:
    deployment: str
    plants: tuple[str, ...]
    action: Literal["added", "changed", "removed", "unchanged"]


@dataclass
class TreeSummary:
    out: Path
    changes: list[Change] = field(default_factory=list)
    rendered: int = 0
    reused: int = 0
    files: int = 0
    dry_run: bool = False

    def by_plant(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for ch in self.changes:
            for plant in ch.plants:
                row = counts.setdefault(
                    plant, {"added": 0, "changed": 0, "removed": 0, "unchanged": 0}
                )
                row[ch.action] += 1
        return dict(sorted(counts.items()))


def _read_state(out: Path) -> dict[str, dict[str, object]]:
    path = out / STATE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # an unreadable state only costs a full re-render
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return {}
    deps = data.get("deployments", {})
    return deps if isinstance(deps, dict) else {}


def _files_of(entry: dict[str, object]) -> list[str]:
    files = entry.get("files")
    return [str(f) for f in files] if isinstance(files, list) else []


def _undo_moves(tmp: Path, into: Path) -> None:
    """Move journaled directories back from ``tmp`` into ``into``."""
    journal = tmp / JOURNAL
    if not journal.is_file():
        return
    for rel in reversed(journal.read_text(encoding="utf-8").splitlines()):
        src, dst = tmp / rel, into / rel
        if src.exists() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)


def _recover(out: Path) -> None:
    """Repair what an interrupted run left: finish or undo a swap, return moved dirs."""
    parent = out.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{out.name}.old-*"))
    tmps = sorted(parent.glob(f".{out.name}.tmp-*"))
    if not out.exists() and olds:
        done = [t for t in tmps if (t / COMPLETE).is_file()]
        if done:  # killed between the two renames of the swap: finish it
            (done[-1] / COMPLETE).unlink()
            (done[-1] / JOURNAL).unlink(missing_ok=True)
            done[-1].rename(out)
            tmps.remove(done[-1])
        else:
            _undo_moves(tmps[-1], olds[-1]) if tmps else None
            olds[-1].rename(out)
            olds = olds[:-1]
    for tmp in tmps:
        if out.exists():
            _undo_moves(tmp, out)
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in olds:
        if stale.exists():
            shutil.rmtree(stale, ignore_errors=True)


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_FILE).is_file():
        raise UserError(
            f"--out {out} is a non-empty directory not written by plantops; "
            "choose an empty or new directory"
        )


def _by_dir(files: list[str]) -> dict[str, list[str]]:
    """File names grouped by their directory ("" for the root), directories sorted."""
    grouped: dict[str, list[str]] = {}
    for rel in files:
        d, _, name = rel.rpartition("/")
        grouped.setdefault(d, []).append(name)
    return dict(sorted(grouped.items()))


def _ancestors(d: str) -> list[str]:
    """``a``, ``a/b``, ``a/b/c`` for ``a/b/c``: shallowest first."""
    parts = d.split("/") if d else []
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _owners(old: dict[str, dict[str, object]]) -> dict[str, set[str]]:
    """For every directory of the old tree, the deployments with files at or below it."""
    owners: dict[str, set[str]] = {}
    for dep_id, entry in old.items():
        for d in {rel.rpartition("/")[0] for rel in _files_of(entry)}:
            for a in _ancestors(d):
                owners.setdefault(a, set()).add(dep_id)
    return owners


class _Builder:
    """Fills the temporary tree; knows how to carry over a deployment from the old one."""

    def __init__(self, out: Path, tmp: Path, owners: dict[str, set[str]], dry_run: bool) -> None:
        self.out, self.tmp, self.owners, self.dry_run = out, tmp, owners, dry_run
        self.made: set[Path] = set()
        self.listings: dict[str, set[str]] = {}
        self.journal = None if dry_run else (tmp / JOURNAL).open("a", encoding="utf-8")

    def _parent(self, target: Path) -> None:
        parent = target.parent
        if parent not in self.made:
            parent.mkdir(parents=True, exist_ok=True)
            self.made.add(parent)

    def write(self, rel: str, content: str) -> None:
        if self.dry_run:
            return
        target = self.tmp / rel
        self._parent(target)
        target.write_text(content, encoding="utf-8", newline="\n")

    def intact(self, files: list[str]) -> bool:
        """Every file of a deployment is still in the old tree (one listing per directory)."""
        for d, names in _by_dir(files).items():
            listing = self.listings.get(d)
            if listing is None:
                try:
                    listing = set(os.listdir(self.out / d))
                except OSError:
                    listing = set()
                self.listings[d] = listing
            if not listing.issuperset(names):
                return False
        return True

    def carry(self, dep_id: str, files: list[str]) -> None:
        if self.dry_run:
            return
        moved: set[str] = set()
        for d, names in _by_dir(files).items():
            chain = _ancestors(d)
            if any(a in moved for a in chain):
                continue
            # the highest directory this deployment owns alone moves in one rename
            own = next((a for a in chain if self.owners.get(a) == {dep_id}), None)
            if own is not None and (self.out / own).is_dir() and not (self.tmp / own).exists():
                assert self.journal is not None
                self.journal.write(own + "\n")
                self.journal.flush()
                target = self.tmp / own
                self._parent(target)
                (self.out / own).rename(target)
                moved.add(own)
                continue
            for name in names:
                rel = f"{d}/{name}" if d else name
                target = self.tmp / rel
                self._parent(target)
                os.link(self.out / rel, target)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def write_tree(
    out: Path,
    units: Iterable[UnitOfWork],
    *,
    selected_plants: Sequence[str] = (),
    extra: Callable[[], Sequence[RenderedFile]] | None = None,
    dry_run: bool = False,
    render_many: RenderMany | None = None,
) -> TreeSummary:
    """Write ``units`` to ``out`` atomically; with ``selected_plants``, keep the others.

    ``render_many`` renders the units that changed (in order, lazily — it may spread the
    work over processes); it may raise once its iterator is exhausted, e.g. when the
    rendered objects failed validation, and nothing is written then.
    """
    out = out.absolute()
    _recover(out)
    _check_target(out)
    old = _read_state(out)
    summary = TreeSummary(out=out, dry_run=dry_run)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    state: dict[str, dict[str, object]] = {}
    if not dry_run:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    b = _Builder(out, tmp, _owners(old), dry_run)
    try:
        units = list(units)
        seen = {unit.id for unit in units}
        reuse: dict[str, list[str]] = {}
        for unit in units:
            prev = old.get(unit.id)
            prev_files = _files_of(prev) if prev else []
            if (
                prev is not None
                and prev.get("hash") == unit.input_hash
                and prev_files
                and b.intact(prev_files)
            ):
                reuse[unit.id] = prev_files
        renders = iter((render_many or _render_serially)([u for u in units if u.id not in reuse]))
        for unit in units:
            if unit.id in reuse:
                files = reuse[unit.id]
                b.carry(unit.id, files)
                summary.reused += 1
                action: Literal["added", "changed", "unchanged"] = "unchanged"
            else:
                rendered = next(renders)
                files = sorted(f.path for f in rendered)
                for f in rendered:
                    b.write(f.path, f.content)
                summary.rendered += 1
                action = "added" if unit.id not in old else "changed"
            summary.files += len(files)
            summary.changes.append(Change(unit.id, unit.plants, action))
            state[unit.id] = {"hash": unit.input_hash, "plants": list(unit.plants), "files": files}
        for _surplus in renders:  # exhausting it lets the renderer raise its verdict
            raise RuntimeError("render_many yielded more results than units")

        selected = set(selected_plants)
        for dep_id, prev in sorted(old.items()):
            if dep_id in seen:
                continue
            raw_plants = prev.get("plants")
            plants = tuple(str(p) for p in raw_plants) if isinstance(raw_plants, list) else ()
            if selected and not selected.intersection(plants):
                files = [f for f in _files_of(prev) if (out / f).is_file()]
                b.carry(dep_id, files)  # not part of this run: carried over untouched
                state[dep_id] = prev
                summary.files += len(files)
                continue
            summary.changes.append(Change(dep_id, plants, "removed"))

        if extra is not None:
            for f in extra():
                b.write(f.path, f.content)
                summary.files += 1
        b.write(
            STATE_FILE,
            json.dumps(
                {"version": STATE_VERSION, "deployments": dict(sorted(state.items()))},
                indent=1,
                sort_keys=True,
            )
            + "\n",
        )
        b.close()
        summary.changes.sort(key=lambda c: c.deployment)
        if dry_run:
            return summary
        (tmp / COMPLETE).touch()
        backup = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(backup)
        (tmp / COMPLETE).unlink()
        (tmp / JOURNAL).unlink(missing_ok=True)
        tmp.rename(out)
        shutil.rmtree(backup, ignore_errors=True)
    except BaseException as exc:
        b.close()
        if not dry_run:
            if out.exists():
                _undo_moves(tmp, out)
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise InfrastructureError(
                f"writing {out} failed: {exc}; the previous tree is unchanged"
            ) from exc
        raise
    return summary

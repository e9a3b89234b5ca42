"""The tree writer.

A plan is written to a temporary sibling directory and swapped in with two
renames; a failed or interrupted run leaves the previous tree as it was (a run
killed between the two renames is repaired by the next one). Each deployment
carries a content hash of its inputs: when it matches the previous tree's, the
previous files are hard-linked instead of rendering again. The state file lists
every deployment's hash and files, sorted, with no timestamps, so two runs of the
same fleet give byte-identical trees.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from plantops.errors import InfrastructureError, UserError
from plantops.render import RenderedFile

STATE_FILE = ".plantops/state.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class UnitOfWork:
    """One deployment to write: its id, input hash, plants, and how to render it."""

    id: str
    input_hash: str
    plants: tuple[str, ...]
    render: Callable[[], Sequence[RenderedFile]]


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


def _recover(out: Path) -> None:
    """Repair a swap that was interrupted between its two renames; drop stale temp dirs."""
    parent = out.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{out.name}.old-*"))
    if not out.exists() and olds:
        olds[-1].rename(out)
        olds = olds[:-1]
    for stale in [*olds, *parent.glob(f".{out.name}.tmp-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_FILE).is_file():
        raise UserError(
            f"--out {out} is a non-empty directory not written by plantops; "
            "choose an empty or new directory"
        )


def write_tree(
    out: Path,
    units: Iterable[UnitOfWork],
    *,
    selected_plants: Sequence[str] = (),
    extra: Callable[[], Sequence[RenderedFile]] | None = None,
    dry_run: bool = False,
) -> TreeSummary:
    """Write ``units`` to ``out`` atomically; with ``selected_plants`` keep the others as they are."""
    out = out.absolute()
    _recover(out)
    _check_target(out)
    old = _read_state(out)
    summary = TreeSummary(out=out, dry_run=dry_run)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    state: dict[str, dict[str, object]] = {}
    try:
        if not dry_run:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
        made_dirs: set[Path] = set()

        def put(rel: str, content: str | None = None, link_from: Path | None = None) -> None:
            if dry_run:
                return
            target = tmp / rel
            parent = target.parent
            if parent not in made_dirs:
                parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(parent)
            if link_from is not None:
                os.link(link_from, target)
            else:
                target.write_text(content or "", encoding="utf-8", newline="\n")

        seen: set[str] = set()
        for unit in units:
            seen.add(unit.id)
            prev = old.get(unit.id)
            prev_files = prev.get("files") if prev else None
            reusable = (
                prev is not None
                and prev.get("hash") == unit.input_hash
                and isinstance(prev_files, list)
                and all((out / str(f)).is_file() for f in prev_files)
            )
            if reusable and isinstance(prev_files, list):
                files = [str(f) for f in prev_files]
                for rel in files:
                    put(rel, link_from=out / rel)
                summary.reused += 1
                action: Literal["added", "changed", "unchanged"] = "unchanged"
            else:
                rendered = unit.render()
                files = sorted(f.path for f in rendered)
                for f in rendered:
                    put(f.path, f.content)
                summary.rendered += 1
                action = "added" if prev is None else "changed"
            summary.files += len(files)
            summary.changes.append(Change(unit.id, unit.plants, action))
            state[unit.id] = {"hash": unit.input_hash, "plants": list(unit.plants), "files": files}

        selected = set(selected_plants)
        for dep_id, prev in sorted(old.items()):
            if dep_id in seen:
                continue
            raw_plants = prev.get("plants")
            plants = tuple(str(p) for p in raw_plants) if isinstance(raw_plants, list) else ()
            prev_files = prev.get("files")
            if selected and not selected.intersection(plants) and isinstance(prev_files, list):
                # not part of this run: carry over untouched
                for rel in prev_files:
                    if (out / str(rel)).is_file():
                        put(str(rel), link_from=out / str(rel))
                state[dep_id] = prev
                summary.files += len(prev_files)
                continue
            summary.changes.append(Change(dep_id, plants, "removed"))

        if extra is not None:
            for f in extra():
                put(f.path, f.content)
                summary.files += 1
        put(
            STATE_FILE,
            json.dumps(
                {"version": STATE_VERSION, "deployments": dict(sorted(state.items()))},
                indent=1,
                sort_keys=True,
            )
            + "\n",
        )
        if dry_run:
            return summary
        backup = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            out.rename(backup)
        tmp.rename(out)
        shutil.rmtree(backup, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InfrastructureError(
            f"writing {out} failed: {exc}; the previous tree is unchanged"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    summary.changes.sort(key=lambda c: c.deployment)
    return summary

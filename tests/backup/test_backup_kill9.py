"""``kill -9`` at every step of ``backup run``, ``backup verify`` and ``backup restore``.

Each command runs in a forked child (its own process group, so the tools it started
are followed too) with a hook on every step that changes the world: a scratch ledger
entry or directory, a child process, a rename, a ``rmdir``, a catalog write, a role or
database statement, the first bytes of a stored object. A first run counts the steps;
then the command is killed with SIGKILL right after step K, for every K. After each
kill:

* no backup is visible unless it is whole (the catalog's complete rows and every
  ``COMPLETE.json`` list objects that are all there, at their size);
* ``plantops backup cleanup --server … --state-db …`` reclaims everything: no scratch
  database, no ``plantops_restore_*`` role, nothing in the temporary folder, no ledger
  entry, no ``*.partial`` object, no ``running`` catalog row;
* with ``restore --force``, the database and filestore being replaced are never lost:
  after the kill and the cleanup, both old copies or both new copies are in place, never
  a mix (the old pair carries a marker table and a marker file to tell them apart), and
  kills before the swap's commit point give the old pair, kills after it the new;
* a restore into a new name is all or nothing: the database and the filestore both
  exist and are whole, or neither does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from odoo_helpers import OdooDb, make_odoo_db
from tests.fixtures.postgres import PgCluster
from typer.testing import CliRunner

import plantops.backup.restore
import plantops.backup.service
import plantops.backup.verify
import plantops.store  # noqa: F401 - imported once here, not in every forked child
from plantops.cli.main import app

pytestmark = pytest.mark.postgres

_TIMEOUT = 60.0


@dataclass
class World:
    """One case's private places: temp folder, ledger, store, catalog."""

    root: Path
    cluster: PgCluster

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def state(self) -> str:
        return f"sqlite:///{self.root / 'state.db'}"

    def env(self) -> dict[str, str]:
        return {
            "TMPDIR": str(self.tmp),
            "PLANTOPS_SCRATCH_LEDGER": str(self.ledger),
            "PLANTOPS_RESTORE_DB_URL": self.cluster.url(),
        }


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    tempfile.tempdir = None
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        tempfile.tempdir = None


def _install_steps(on_step: Callable[[str], None]) -> None:
    """Wrap every world-changing call of the backup code so that ``on_step`` runs right
    after it (in the child only)."""
    import plantops.backup.restore as restore_mod
    from plantops.backup import scratch, stores
    from plantops.store.catalog import Catalog

    depth = 0  # a step inside a step (the unlinks of an rmtree) is not one of its own

    def after(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            nonlocal depth
            depth += 1
            try:
                result = original(*args, **kwargs)
            finally:
                depth -= 1
            if depth == 0:
                # A ledger step names its kind: "scratch.record swap", "scratch.forget dir".
                kind = getattr(result if name == "record" else args[0], "kind", "")
                on_step(f"{label} {kind}" if name in ("record", "forget") else label)
            return result

        setattr(owner, name, wrapped)

    for name in ("record", "forget", "make_dir", "remove_dir"):
        after(scratch, name, f"scratch.{name}")
    for name in ("rename", "replace", "rmdir", "unlink"):
        after(os, name, f"os.{name}")
    after(shutil, "rmtree", "shutil.rmtree")
    for name in (
        "create_restore_role",
        "create_database",
        "drop_database",
        "drop_role",
        "rename_database",
        "move_database",
        "hand_over",
    ):
        if hasattr(restore_mod, name):
            after(restore_mod, name, f"pg.{name}")
    for name in ("create_backup", "complete_backup", "set_status", "add_verification"):
        after(Catalog, name, f"catalog.{name}")
    popen_init = subprocess.Popen.__init__

    def popen(self: Any, *args: Any, **kwargs: Any) -> None:
        popen_init(self, *args, **kwargs)
        if depth == 0:
            on_step(f"spawn {Path(str(self.args[0] if self.args else '?')).name}")

    subprocess.Popen.__init__ = popen  # type: ignore[method-assign]
    write = stores._LocalWriter.write

    def first_write(self: Any, data: bytes, /) -> int:
        n = write(self, data)
        if not getattr(self, "_step_seen", False):
            self._step_seen = True
            if depth == 0:
                on_step(f"first bytes of {self.final.name}")
        return n

    stores._LocalWriter.write = first_write  # type: ignore[method-assign]


def _run_child(world: World, args: list[str], kill_after: int | None) -> tuple[str, list[str]]:
    """Run ``plantops ARGS`` in a forked child; ``kill_after=K`` SIGKILLs it right after
    step K. Returns ("killed" | "exit N", the steps it took)."""
    steps_file = world.root / "steps.log"
    steps_file.unlink(missing_ok=True)
    log = world.root / "child.log"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setpgid(0, 0)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.update(world.env())
            tempfile.tempdir = None
            taken = 0
            steps = steps_file.open("a")  # lives until the child dies

            def on_step(label: str) -> None:
                nonlocal taken
                taken += 1
                steps.write(label + "\n")
                steps.flush()
                if kill_after is not None and taken >= kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)

            _install_steps(on_step)
            from plantops.cli.main import main

            sys.argv = ["plantops", *args]
            code = 0
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            os._exit(code)
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(70)
    deadline = time.monotonic() + _TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"plantops {' '.join(args)} hung:\n{log.read_text()}")
        time.sleep(0.005)
    # The tools it started (pg_dump, pg_restore, psql, age) outlive it as orphans, as after
    # a real kill -9; the next run comes later: let them end.
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.01)
    else:
        os.killpg(pid, signal.SIGKILL)
        raise AssertionError(f"the tools of a killed plantops {args[:2]} never ended")
    steps = steps_file.read_text().splitlines() if steps_file.exists() else []
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL, log.read_text()
        return "killed", steps
    code = os.WEXITSTATUS(status)
    assert code in (0, 1), f"exit {code}:\n{log.read_text()}"
    return f"exit {code}", steps


def _invoke(world: World, *args: str) -> tuple[int, str]:
    with _environ(world.env()):
        result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _visible_backups_are_whole(world: World) -> None:
    from plantops.store import open_catalog

    cat = open_catalog(world.state)
    try:
        for rec in cat.list_backups(statuses=["complete"]):
            for obj in rec.objects:
                path = world.store / rec.location / obj.name
                assert path.is_file() and path.stat().st_size == obj.size_bytes, (rec.id, obj)
    finally:
        cat.close()
    for marker in world.store.rglob("COMPLETE.json") if world.store.exists() else ():
        body = json.loads(marker.read_text())
        for obj in body["objects"]:
            path = marker.parent / obj["name"]
            assert path.is_file() and path.stat().st_size == obj["size"], (marker, obj)


def _leftovers(world: World) -> list[str]:
    from plantops.store import open_catalog

    found: list[str] = []
    with world.cluster.connect() as conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'plantops\\_verify\\_%'"
            " OR datname LIKE '%\\_restoring\\_%' OR datname LIKE '%\\_old\\_%'"
        ):
            found.append(f"database {name}")
        for (name,) in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'plantops\\_restore\\_%'"
        ):
            found.append(f"role {name}")
    found += [f"tmp {p.name}" for p in world.tmp.iterdir()]
    found += [f"ledger {p.name}" for p in world.ledger.glob("*")] if world.ledger.exists() else []
    if world.store.exists():
        found += [f"partial {p}" for p in world.store.rglob("*.partial")]
        for leaf in world.store.glob("*/*/*"):
            if leaf.is_dir() and not (leaf / "COMPLETE.json").exists():
                found.append(f"incomplete store folder {leaf}")
    found += [
        f"hidden {p}"
        for p in world.root.rglob(".*")
        if ".restoring-" in p.name or ".old-" in p.name
    ]
    if Path(world.root / "state.db").exists():
        cat = open_catalog(world.state)
        try:
            found += [f"running row {b.id}" for b in cat.list_backups(statuses=["running"])]
        finally:
            cat.close()
    return found


def _reclaim(world: World) -> None:
    code, out = _invoke(
        world, "backup", "cleanup", "--server", world.cluster.url(), "--state-db", world.state
    )
    assert code == 0, out


@pytest.fixture(scope="module")
def source(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdooDb]:
    db = make_odoo_db(pg_cluster, tmp_path_factory.mktemp("kill9-src"), files=6)
    yield db
    pg_cluster.drop_database(db.name)


def _world(cluster: PgCluster, root: Path) -> World:
    world = World(root, cluster)
    world.tmp.mkdir(parents=True, exist_ok=True)
    return world


def _backup(world: World, db: OdooDb, fmt: str) -> str:
    code, out = _invoke(
        world,
        "backup",
        "run",
        "--db-url",
        db.url,
        "--filestore",
        str(db.filestore),
        "--store",
        str(world.store),
        "--state-db",
        world.state,
        "--plant",
        "lyon",
        "--env",
        "prod",
        "--archive-format",
        fmt,
        "--format",
        "json",
    )
    assert code == 0, out
    return str(json.loads(out)["id"])


def _every_kill(
    world: World,
    args: Callable[[int], list[str]],
    after_each: Callable[[int, list[str]], None],
) -> list[str]:
    """Kill the command after each of its steps; return the steps of the whole run.
    ``after_each(k, steps taken)`` checks the world after the cleanup (k=0: no kill)."""
    outcome, steps = _run_child(world, args(0), None)
    assert outcome == "exit 0", (outcome, (world.root / "child.log").read_text())
    assert len(steps) >= 5, steps

    _reclaim(world)
    assert _leftovers(world) == [], "a run that completed left something"
    after_each(0, steps)
    for k in range(1, len(steps) + 1):
        outcome, taken = _run_child(world, args(k), k)
        assert outcome == "killed", (k, steps, taken)
        _visible_backups_are_whole(world)
        _reclaim(world)
        left = _leftovers(world)
        assert left == [], f"killed after step {k} ({taken[-1]}): {left}"
        after_each(k, taken)
    return steps


def _nothing(_k: int, _taken: list[str]) -> None:
    pass


@pytest.mark.parametrize("fmt", ["odoo-zip", "native", "dump"])
def test_kill_9_at_every_step_of_backup_run(
    pg_cluster: PgCluster, source: OdooDb, tmp_path: Path, fmt: str
) -> None:
    world = _world(pg_cluster, tmp_path)

    def args(_k: int) -> list[str]:
        return [
            "backup",
            "run",
            "--db-url",
            source.url,
            "--filestore",
            str(source.filestore),
            "--store",
            str(world.store),
            "--state-db",
            world.state,
            "--plant",
            "lyon",
            "--env",
            "prod",
            "--archive-format",
            fmt,
        ]

    steps = _every_kill(world, args, _nothing)
    assert any(s.startswith("spawn pg_dump") for s in steps), steps
    assert any(s.startswith("first bytes of") for s in steps), steps
    assert "catalog.complete_backup" in steps, steps


@pytest.mark.parametrize("fmt", ["odoo-zip", "native"])
def test_kill_9_at_every_step_of_backup_verify(
    pg_cluster: PgCluster, source: OdooDb, tmp_path: Path, fmt: str
) -> None:
    world = _world(pg_cluster, tmp_path)
    bid = _backup(world, source, fmt)
    args = ["backup", "verify", bid, "--server", pg_cluster.url(), "--state-db", world.state]
    steps = _every_kill(world, lambda _k: args, _nothing)
    assert "pg.create_database" in steps and "catalog.add_verification" in steps, steps


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_kill_9_at_every_step_of_backup_restore(
    pg_cluster: PgCluster, source: OdooDb, tmp_path: Path, force: bool
) -> None:
    world = _world(pg_cluster, tmp_path)
    bid = _backup(world, source, "native")
    target = f"kill9_restored_{'f' if force else 'n'}"
    filestore = tmp_path / "restored" / "filestore" / target
    filestore.parent.mkdir(parents=True)
    pg_cluster.drop_database(target)

    def args(k: int) -> list[str]:
        to_db = target if force else f"{target}{k}"
        fs = filestore if force else filestore.with_name(f"{target}{k}")
        extra = ["--force"] if force else []
        return [
            "backup",
            "restore",
            bid,
            "--to-db",
            to_db,
            "--filestore",
            str(fs),
            "--server",
            pg_cluster.url(),
            "--state-db",
            world.state,
            *extra,
        ]

    seen: set[str] = set()

    def state(db: str, fs: Path) -> str:
        """ "old" (the marked pair), "new" (a restored pair), "absent" (neither)."""
        if not pg_cluster.database_exists(db):
            assert not fs.exists(), f"filestore {fs} without its database"
            return "absent"
        assert fs.is_dir(), f"database {db} without its filestore"
        with pg_cluster.connect(db) as conn:
            n = conn.execute("SELECT count(*) FROM ir_attachment").fetchone()
            marked = conn.execute("SELECT to_regclass('public.kill9_marker')").fetchone()
        files = [p for p in fs.rglob("*") if p.is_file() and p.name != "kill9-marker"]
        assert n is not None and n[0] == 6 and len(files) == 6, (db, n, files)
        db_old = marked is not None and marked[0] is not None
        fs_old = (fs / "kill9-marker").exists()
        assert db_old == fs_old, f"a mix: database {'old' if db_old else 'new'}, filestore not"
        return "old" if db_old else "new"

    def mark() -> None:
        with pg_cluster.connect(target) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS kill9_marker (x int)")
        (filestore / "kill9-marker").write_text("the copy being replaced\n")

    def check(k: int, taken: list[str]) -> None:
        # The swap commits when its ledger entry is forgotten: before that a kill rolls
        # the restore back, after it the restored pair stays.
        committed = "scratch.forget swap" in taken if k else True
        if not force:
            # All or nothing: a killed restore into a new name leaves nothing of it.
            got = state(f"{target}{k}", filestore.with_name(f"{target}{k}"))
            assert got == ("new" if committed else "absent"), (k, taken[-1:], got)
            seen.add(got)
            return
        # What --force replaces is never lost: the old pair, or the new one once the
        # swap committed, never a mix, never nothing.
        got = state(target, filestore)
        assert got == ("new" if committed else "old"), (k, taken[-1:], got)
        seen.add(got)
        if got == "new":
            mark()

    try:
        if force:  # something to replace, from the first run on
            code, out = _invoke(world, *args(0)[:-1])
            assert code == 0, out
            mark()
        steps = _every_kill(world, args, check)
        assert seen == ({"old", "new"} if force else {"new", "absent"}), seen
        swap = steps[steps.index("scratch.record swap") : steps.index("scratch.forget swap")]
        assert "pg.rename_database" in swap, swap
        if force:
            # The kills fell between the renames of the swap, not only around it.
            assert swap.count("os.rename") == 2 and "pg.move_database" in swap, swap
    finally:
        with pg_cluster.connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (target + "%",)
            ).fetchall()
        for (name,) in rows:
            pg_cluster.drop_database(str(name))

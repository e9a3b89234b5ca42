"""The process memo (``plantops.services.warm``): with it on, every run of ``plan`` in one
process writes the tree and prints the bytes a fresh, cold process gives — after each
kind of change — and it is off unless enabled.

Each step plans in this process (memo on, every disk cache on) and, from copies of the
tree and of the caches as they were before that run, in a new ``python -m plantops.cli``
process; the two trees, stdouts, stderrs and exit codes must be equal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import plantops
from plantops import caches
from plantops.cli.main import app
from plantops.services import warm
from tests.conftest import EXAMPLE, TODAY, read_tree

CACHE_ENVS = {
    "PLANTOPS_SPEC_CACHE": "specs",
    "PLANTOPS_PLAN_CACHE": "plan",
    "PLANTOPS_RENDER_CACHE": "render",
    "PLANTOPS_TREE_CACHE": "trees",
}
SRC = Path(plantops.__file__).resolve().parents[1]

Outcome = tuple[int, str, str, dict[str, bytes]]


@pytest.fixture
def memo_on() -> Iterator[None]:
    warm.enable()
    try:
        yield
    finally:
        warm.disable()


class Plans:
    """Plans of one fleet in this process and in cold processes, side by side."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.fleet = tmp / "fleet"
        shutil.copytree(EXAMPLE, self.fleet)
        self.out = tmp / "out"
        self.cache = tmp / "cache"
        self.monkeypatch = monkeypatch
        self._point_caches(self.cache)

    def _point_caches(self, base: Path) -> None:
        for env, name in CACHE_ENVS.items():
            (base / name).mkdir(parents=True, mode=0o700, exist_ok=True)
            self.monkeypatch.setenv(env, str(base / name))

    def _args(self, today: str, extra: tuple[str, ...] = ()) -> list[str]:
        return ["plan", str(self.fleet), "--out", str(self.out), "--today", today, *extra]

    def warm(self, today: str, extra: tuple[str, ...] = ()) -> Outcome:
        r = CliRunner().invoke(app, self._args(today, extra))
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        tree = read_tree(self.out) if self.out.exists() else {}
        return r.exit_code, r.stdout, r.stderr, tree

    def cold(
        self, today: str, extra: tuple[str, ...], out_before: Path | None, cache_before: Path
    ) -> Outcome:
        """A new process planning from the tree and caches as they were before."""
        parked = self.tmp / "out-warm"
        if self.out.exists():
            self.out.rename(parked)
        if out_before is not None:
            out_before.rename(self.out)
        env = dict(os.environ)
        env["PYTHONPATH"] = str(SRC)
        for var, name in CACHE_ENVS.items():
            env[var] = str(cache_before / name)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "plantops.cli", *self._args(today, extra)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            tree = read_tree(self.out) if self.out.exists() else {}
        finally:
            if self.out.exists():
                shutil.rmtree(self.out)
            if parked.exists():
                parked.rename(self.out)  # the warm process goes on with its own tree
        return proc.returncode, proc.stdout, proc.stderr, tree

    def both(self, today: str = TODAY.isoformat(), extra: tuple[str, ...] = ()) -> Outcome:
        snap_out = self.tmp / "snap-out"
        snap_cache = self.tmp / "snap-cache"
        for d in (snap_out, snap_cache):
            if d.exists():
                shutil.rmtree(d)
        if self.out.exists():
            shutil.copytree(self.out, snap_out, symlinks=True)
        shutil.copytree(self.cache, snap_cache, symlinks=True)
        for d in [snap_cache, *(p for p in snap_cache.rglob("*") if p.is_dir())]:
            d.chmod(0o700)
        got = self.warm(today, extra)
        expected = self.cold(today, extra, snap_out if snap_out.exists() else None, snap_cache)
        assert got[0] == expected[0], (got[1:3], expected[1:3])
        assert got[1] == expected[1]
        assert got[2] == expected[2]
        assert got[3].keys() == expected[3].keys()
        assert got[3] == expected[3]
        return got


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))


def _plant_field(fleet: Path) -> None:
    _replace(fleet / "plants" / "brno-components.yaml", "\nname: ", "\nname: Renamed ")


def _plant_field_again(fleet: Path) -> None:
    _replace(fleet / "plants" / "brno-components.yaml", "\nname: ", "\nname: Again ")


def _tier(fleet: Path) -> None:
    # below what the EU group's production needs: the plan caps it and warns
    _replace(fleet / "fleet.yaml", "    max_web_replicas: 3\n", "    max_web_replicas: 2\n")


def _new_plant(fleet: Path) -> None:
    text = (fleet / "plants" / "pune-pilot.yaml").read_text()
    text = text.replace("code: pune-pilot", "code: pune-second").replace(
        "name: Pune Pilot Line", "name: Pune Second Line"
    )
    (fleet / "plants" / "pune-second.yaml").write_text(text)


def _removed_plant(fleet: Path) -> None:
    (fleet / "plants" / "leipzig-vm.yaml").unlink()


def _policy(fleet: Path) -> None:
    _replace(
        fleet / "policies" / "acme.yaml",
        "message: production web pods run at least two replicas",
        "message: production web pods run at least two replicas (edited)",
    )


def _same_size_edit(fleet: Path) -> None:
    # the same length, at once after the last run: only the text tells it changed
    _replace(fleet / "plants" / "pune-second.yaml", "Pune Second Line", "Pune Secund Line")


def _invalid_plant(fleet: Path) -> None:
    _replace(fleet / "plants" / "pune-second.yaml", "region: ap-south", "region: [ap-south")


def _fixed_plant(fleet: Path) -> None:
    _replace(fleet / "plants" / "pune-second.yaml", "region: [ap-south", "region: ap-south")


def _caches_deleted(fleet: Path) -> None:
    cache = fleet.parent / "cache"
    for name in CACHE_ENVS.values():
        for f in (cache / name).iterdir():
            f.unlink()


Change = Callable[[Path], None]
STEPS: list[tuple[str, Change | None, str] | tuple[str, Change | None, str, tuple[str, ...]]] = [
    ("nothing", None, TODAY.isoformat()),
    ("plant field", _plant_field, TODAY.isoformat()),
    ("tier in fleet.yaml", _tier, TODAY.isoformat()),
    ("new plant", _new_plant, TODAY.isoformat()),
    ("same-size edit", _same_size_edit, TODAY.isoformat()),
    ("removed plant", _removed_plant, TODAY.isoformat()),
    ("policy file", _policy, TODAY.isoformat()),
    ("the date", None, "2026-11-23"),
    ("a date past an override's expiry", None, "2028-07-01"),
    ("back to the date", None, TODAY.isoformat()),
    ("an invalid plant", _invalid_plant, TODAY.isoformat()),
    ("the plant fixed", _fixed_plant, TODAY.isoformat()),
    ("caches deleted", _caches_deleted, TODAY.isoformat()),
    ("one plant only", _plant_field_again, TODAY.isoformat(), ("--plant", "brno-components")),
    ("a dry run", _plant_field_again, TODAY.isoformat(), ("--dry-run",)),
    ("as JSON", None, TODAY.isoformat(), ("--format", "json")),
    ("nothing again", None, TODAY.isoformat()),
]


def test_warm_runs_equal_cold_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memo_on: None
) -> None:
    plans = Plans(tmp_path, monkeypatch)
    first = plans.both()
    assert first[0] == 0 and first[3], first[1:3]
    codes = []
    for name, change, today, *extra in STEPS:
        if change is not None:
            change(plans.fleet)
        got = plans.both(today, *extra)
        codes.append((name, got[0]))
    # the steps did what they mean to: warnings, an expired override, an invalid file
    by_name = dict(codes)
    assert by_name["a date past an override's expiry"] != 0
    assert by_name["an invalid plant"] != 0
    assert all(
        code == 0
        for name, code in codes
        if name
        not in {
            "a date past an override's expiry",
            "an invalid plant",
        }
    ), codes
    # another process plans into the same tree with the same caches between two runs of
    # this one: the files it replaced have new signatures, so nothing kept of them is used
    brno = plans.fleet / "plants" / "brno-components.yaml"
    _replace(brno, "\nname: ", "\nname: Outside ")
    outside = subprocess.run(
        [sys.executable, "-m", "plantops.cli", *plans._args(TODAY.isoformat())],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert outside.returncode == 0, outside.stderr
    _replace(brno, "\nname: Outside ", "\nname: ")
    assert plans.both()[0] == 0
    # and the memo was used: every table holds entries of the last run
    for table in (
        "plan-units",
        "argocd-projects",
        "spec-models",
        "spec-texts",
        "cost-units",
        "cost-lines",
        "tree-state-lines",
    ):
        assert caches._Warm.tables[table].used, table
    assert any(k.endswith("state.json") for k in caches._Warm.files)
    # `cost` in the same process shares the unit plans and cost lines
    _replace(plans.fleet / "fleet.yaml", "    max_web_replicas: 2\n", "    max_web_replicas: 3\n")
    args = ["cost", str(plans.fleet), "--today", TODAY.isoformat()]
    r = CliRunner().invoke(app, args)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cold = subprocess.run(
        [sys.executable, "-m", "plantops.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert (r.exit_code, r.stdout, r.stderr) == (cold.returncode, cold.stdout, cold.stderr)


def test_memo_is_off_by_default() -> None:
    code = (
        "import plantops.cli.main, plantops.caches as c, plantops.services.warm as w;"
        "print(c.warm_enabled(), w.is_enabled(), c._Warm.files, c._Warm.tables)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout == "False False {} {}\n"


def test_off_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not warm.is_enabled()
    plans = Plans(tmp_path, monkeypatch)
    assert plans.warm(TODAY.isoformat())[0] == 0
    assert caches._Warm.files == {} and caches._Warm.tables == {}
    assert caches.warm_table("plan-units") is None


def test_disable_forgets(tmp_path: Path, memo_on: None) -> None:
    path = tmp_path / "f"
    caches.store_sealed(path, b"one")
    assert caches.load_remembered(path, caches.load_sealed) == b"one"
    assert caches._Warm.files
    warm.disable()
    assert caches._Warm.files == {} and not warm.is_enabled()


def test_file_memo_follows_the_signature(tmp_path: Path, memo_on: None) -> None:
    path = tmp_path / "memo.pickle"
    decoded: list[bytes | None] = []

    def decode(p: Path) -> bytes | None:
        found = caches.load_sealed(p)
        decoded.append(found)
        return found

    assert caches.load_remembered(path, decode) is None  # missing: nothing kept
    caches.store_sealed(path, b"one")
    assert caches.load_remembered(path, decode) == b"one"
    assert caches.load_remembered(path, decode) == b"one"
    assert len(decoded) == 2  # the second load came from memory
    caches.store_sealed(path, b"two")  # an atomic rename: a new inode
    assert caches.load_remembered(path, decode) == b"two"
    # what a run writes itself is kept under the new signature, not read back
    before = caches.file_signature(path)
    written = caches.store_sealed(path, b"three")
    caches.remember_written(path, before, written, b"three (as written)")
    assert caches.load_remembered(path, decode) == b"three (as written)"
    # a write that failed keeps nothing: the file is read again
    caches.remember_written(path, caches.file_signature(path), False, b"never")
    assert caches.load_remembered(path, decode) == b"three"
    path.unlink()
    assert caches.load_remembered(path, decode) is None


def test_tables_drop_what_the_last_run_did_not_use(memo_on: None) -> None:
    table = caches.warm_table("t")
    assert table is not None
    table.put("a", 1)
    table.put("b", 2)
    caches.warm_new_run()
    assert table.get("a") == 1  # used by this run
    caches.warm_new_run()
    assert table.get("a") == 1
    assert table.get("b") is None  # not used by the run before: dropped


def _coarse(info: os.stat_result) -> caches.Signature:
    """A signature as a file system with one-second timestamps would give."""
    s = 1_000_000_000
    mtime, ctime = info.st_mtime_ns // s * s, info.st_ctime_ns // s * s
    return (info.st_dev, info.st_ino, info.st_size, mtime, ctime)


@pytest.mark.parametrize("racy_seconds", [caches.RACY_SECONDS, 0.0])
def test_a_racily_clean_plant_file_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memo_on: None, racy_seconds: float
) -> None:
    # one-second timestamps: an edit of the same size in the same second as the last read
    # keeps the file's signature; only the racily-clean rule makes the next load read it
    from plantops import services
    from plantops.spec import loader

    monkeypatch.setattr(loader, "signature_of", _coarse)
    monkeypatch.setattr(caches, "RACY_SECONDS", racy_seconds)
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, fleet)
    plant = fleet / "plants" / "pune-pilot.yaml"
    text = plant.read_text()
    services.open_fleet(fleet, today=TODAY)  # the code paths warmed up: the loads are fast
    for _attempt in range(5):
        while time.time_ns() % 1_000_000_000 > 100_000_000:  # early in a second
            time.sleep(0.01)
        plant.write_text(text)  # written, read and edited again within one second
        names = [p.spec.name for p in services.open_fleet(fleet, today=TODAY).fleet.plants]
        assert "Pune Pilot Line" in names
        before = _coarse(plant.stat())
        plant.write_text(text.replace("Pune Pilot Line", "Pune Pilot Lane"))
        if _coarse(plant.stat()) == before:  # the signature cannot tell
            break
    else:
        pytest.fail("could not write, load and edit within one second")
    names = [p.spec.name for p in services.open_fleet(fleet, today=TODAY).fleet.plants]
    if racy_seconds:
        assert "Pune Pilot Lane" in names and "Pune Pilot Line" not in names
    else:  # without the rule the stale text would be served: the rule is what reads it
        assert "Pune Pilot Line" in names

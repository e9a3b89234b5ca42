"""Release pins: deterministic text, hand edits refused (located), compare-and-swap writes,
rollback through the history."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from pathlib import Path

import pytest

from plantops.errors import SpecError
from plantops.names import BadName
from plantops.release.lock import Lock
from plantops.release.pins import (
    HISTORY_LIMIT,
    Pin,
    PinConflict,
    PinError,
    PinRecord,
    modules_to_update,
    next_pin,
    pin_path,
    read_pin,
    read_pins,
    record_from_lock,
    render_pin,
    rollback_pin,
    write_pin,
)

T0 = dt.datetime(2026, 12, 3, 17, 0, tzinfo=dt.UTC)


def record(n: int, modules: tuple[str, ...] = (), stage: str = "prod") -> PinRecord:
    return PinRecord(
        release="sha256:" + f"{n:02x}" * 32,
        image="registry.acme.example/odoo/odoo@sha256:" + f"{n + 1:02x}" * 32,
        addons="sha256:" + "c" * 64,
        update_modules=modules,
        config="sha256:" + "d" * 64,
        stage=stage,
        promoted_at=T0 + dt.timedelta(hours=n),
    )


def chain(fleet: Path, count: int, plant: str = "brno", env: str = "prod") -> Pin:
    pin: Pin | None = None
    for n in range(1, count + 1):
        new = next_pin(pin, record(n, ("mrp",) if n % 2 else ()), plant=plant, environment=env)
        write_pin(fleet, new, replaces=pin)
        pin = new
    assert pin is not None
    return pin


def test_round_trip_and_deterministic_text(tmp_path: Path) -> None:
    pin = chain(tmp_path, 3)
    path = pin_path(tmp_path, "brno", "prod")
    assert path == tmp_path / "releases/brno/prod.yaml"
    assert path.read_text() == render_pin(pin)
    assert read_pins(tmp_path) == {("brno", "prod"): pin}
    assert read_pin(tmp_path, "brno", "prod") == pin
    assert read_pin(tmp_path, "brno", "dev") is None
    assert [h.release[7:9] for h in pin.history] == ["02", "01"]
    assert pin.previous == record(2)  # even n: an image-only change
    # a normalised record: modules sorted and unique, times in UTC without microseconds
    odd = PinRecord(
        **{
            **record(1).model_dump(),
            "update_modules": ("stock", "mrp", "stock"),
            "promoted_at": dt.datetime(
                2026, 12, 3, 18, 0, 0, 123, tzinfo=dt.timezone(dt.timedelta(hours=1))
            ),
        }
    )
    assert odd.update_modules == ("mrp", "stock")
    assert odd.promoted_at == T0
    assert odd.migrates and not record(2).migrates


def test_history_is_bounded(tmp_path: Path) -> None:
    pin = chain(tmp_path, HISTORY_LIMIT + 3)
    assert len(pin.history) == HISTORY_LIMIT
    assert read_pins(tmp_path)[("brno", "prod")] == pin


def test_hand_edit_is_refused_with_its_line(tmp_path: Path) -> None:
    chain(tmp_path, 1)
    path = pin_path(tmp_path, "brno", "prod")
    text = path.read_text()
    path.write_text(text.replace("stage: prod", "stage: dev"))
    with pytest.raises(SpecError) as exc:
        read_pins(tmp_path)
    (problem,) = exc.value.problems
    assert problem.path == "digest"
    assert (
        problem.line
        == text.splitlines().index(
            next(line for line in text.splitlines() if line.startswith("digest:"))
        )
        + 1
    )
    assert "edited by hand" in problem.message


def test_invalid_content_is_located(tmp_path: Path) -> None:
    chain(tmp_path, 1)
    path = pin_path(tmp_path, "brno", "prod")
    path.write_text(path.read_text().replace("registry.acme.example/odoo/odoo@", "odoo:17.0#"))
    with pytest.raises(SpecError) as exc:
        read_pins(tmp_path)
    assert any(p.path == "current.image" and p.line == 9 for p in exc.value.problems)


def test_pin_stored_under_another_name_is_refused(tmp_path: Path) -> None:
    chain(tmp_path, 1)
    other = tmp_path / "releases/lyon/prod.yaml"
    other.parent.mkdir()
    other.write_text(pin_path(tmp_path, "brno", "prod").read_text())
    (tmp_path / "releases/lyon/notes.txt").write_text("x")
    with pytest.raises(SpecError) as exc:
        read_pins(tmp_path)
    messages = [p.message for p in exc.value.problems]
    assert any("stored as lyon/prod" in m for m in messages)
    assert any("not a release pin" in m for m in messages)


def test_bounded_reads(tmp_path: Path) -> None:
    path = tmp_path / "releases/brno/prod.yaml"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    with pytest.raises(SpecError) as exc:
        read_pins(tmp_path)
    assert "FIFO" in exc.value.problems[0].message
    path.unlink()
    path.symlink_to("/etc/passwd")
    with pytest.raises(SpecError) as exc:
        read_pins(tmp_path)
    assert "outside" in exc.value.problems[0].message


def test_names_that_would_escape_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadName):
        pin_path(tmp_path, "../x", "prod")
    with pytest.raises(BadName):
        next_pin(None, record(1), plant="brno", environment="prod/../../etc")


def test_write_is_a_compare_and_swap(tmp_path: Path) -> None:
    first = next_pin(None, record(1), plant="brno", environment="prod")
    write_pin(tmp_path, first, replaces=None)
    second = next_pin(first, record(2), plant="brno", environment="prod")
    with pytest.raises(PinConflict, match="exists already"):
        write_pin(tmp_path, second, replaces=None)
    write_pin(tmp_path, second, replaces=first)
    stale = next_pin(first, record(3), plant="brno", environment="prod")
    with pytest.raises(PinConflict, match="changed since it was read"):
        write_pin(tmp_path, stale, replaces=first)
    assert read_pin(tmp_path, "brno", "prod") == second
    # a hand edit is never clobbered without force
    path = pin_path(tmp_path, "brno", "prod")
    path.write_text(path.read_text().replace("stage: prod", "stage: dev", 1))
    third = next_pin(second, record(3), plant="brno", environment="prod")
    with pytest.raises(PinConflict, match="does not verify"):
        write_pin(tmp_path, third, replaces=second)
    assert "stage: dev" in path.read_text()
    write_pin(tmp_path, third, replaces=second, force=True)
    assert read_pin(tmp_path, "brno", "prod") == third
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def _race(fleet: str, n: int, base: Pin, queue: multiprocessing.Queue[str]) -> None:
    # every writer decided from the same pin: exactly one may replace it
    new = next_pin(base, record(n), plant="brno", environment="prod")
    try:
        write_pin(Path(fleet), new, replaces=base)
        queue.put(f"won {n}")
    except PinConflict:
        queue.put("lost")


def test_racing_writers_one_wins(tmp_path: Path) -> None:
    base = chain(tmp_path, 1)
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), n, base, queue)) for n in range(2, 8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = sorted(queue.get(timeout=5) for _ in procs)
    winners = [r for r in results if r.startswith("won")]
    assert len(winners) == 1, results
    final = read_pin(tmp_path, "brno", "prod")
    assert final is not None and final.previous == base.current
    assert final.current.release == record(int(winners[0].split()[1])).release


def test_rollback_goes_back_never_forward(tmp_path: Path) -> None:
    pin = chain(tmp_path, 3)
    at = T0 + dt.timedelta(days=1)
    back = rollback_pin(pin, at=at)
    assert back.current.release == record(2).release
    assert back.current.rollback_of == record(3).release
    assert back.current.promoted_at == at
    assert [h.release for h in back.history] == [record(1).release]
    assert back.current.upgrade_id != record(2).upgrade_id
    again = rollback_pin(back, at=at)
    assert again.current.release == record(1).release and again.history == ()
    with pytest.raises(PinError, match="no previous release"):
        rollback_pin(again, at=at)
    to = rollback_pin(pin, to=record(1).release[:12], at=at)
    assert to.current.release == record(1).release and to.history == ()
    with pytest.raises(PinError, match="not in the pin history"):
        rollback_pin(pin, to="sha256:ffff", at=at)
    write_pin(tmp_path, back, replaces=pin)
    assert read_pin(tmp_path, "brno", "prod") == back


def _lock(checksums: dict[str, str], n: int) -> Lock:
    content = {
        "image": {"repository": "r.example/odoo", "digest": "sha256:" + f"{n:02x}" * 32},
        "addons": [{"name": k, "checksum": v, "installable": True} for k, v in checksums.items()],
        "config": {"sha256": "sha256:" + "e" * 64, "deployments": 1},
    }
    return Lock("sha256:" + f"{n + 9:02x}" * 32, content, "x.lock")


def test_from_locks() -> None:
    old = _lock({"mrp": "sha256:1", "stock": "sha256:2"}, 1)
    new = _lock({"mrp": "sha256:1", "stock": "sha256:3", "acme_qc": "sha256:4"}, 2)
    modules = modules_to_update(old.content, new.content)
    assert modules == ("acme_qc", "stock")
    assert modules_to_update(None, new.content) == ()
    rec = record_from_lock(new, stage="test", promoted_at=T0, update_modules=modules)
    assert rec.image == "r.example/odoo@sha256:" + "02" * 32
    assert rec.release == new.id and rec.config == "sha256:" + "e" * 64
    assert rec.addons != record_from_lock(old, stage="test", promoted_at=T0).addons

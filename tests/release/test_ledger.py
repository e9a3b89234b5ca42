"""The ledger on SQLite and a real PostgreSQL: the chain, tampering of every kind, export,
and two processes racing to append the same promotion."""

from __future__ import annotations

import csv
import io
import itertools
import json
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from plantops.store.ledger import GENESIS, Ledger, NewEntry, PromotionConflict, open_ledger
from tests.fixtures.postgres import PgCluster

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'state.db'}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database("ledger")
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    led = open_ledger(db_url)
    for i in range(1, 11):
        led.append([NewEntry("gate", f"sha256:r{i % 2}", "dev", "ci", {"i": i})], now=T0)
    yield led
    led.close()


def sql(led: Ledger, statement: str) -> None:
    with led.engine.begin() as conn:
        conn.execute(text(statement))


def test_an_untouched_chain_verifies(ledger: Ledger) -> None:
    v = ledger.verify()
    assert v.ok and v.entries == 10 and v.head_seq == 10
    entries = list(ledger.iter_entries())
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))


def test_an_edited_payload_is_named(ledger: Ledger) -> None:
    sql(ledger, "UPDATE ledger_entries SET payload = '{\"i\": 99}' WHERE seq = 4")
    v = ledger.verify()
    assert (v.ok, v.first_bad) == (False, 4) and "edited" in v.reason and v.entries == 3


def test_an_edited_actor_is_named(ledger: Ledger) -> None:
    sql(ledger, "UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 7")
    assert ledger.verify().first_bad == 7


def test_a_deleted_entry_is_named(ledger: Ledger) -> None:
    sql(ledger, "DELETE FROM ledger_entries WHERE seq = 5")
    v = ledger.verify()
    assert v.first_bad == 5 and "missing" in v.reason


def test_deleting_the_newest_entries_is_caught_by_the_head(ledger: Ledger) -> None:
    sql(ledger, "DELETE FROM ledger_entries WHERE seq >= 9")
    v = ledger.verify()
    assert not v.ok and v.first_bad == 9 and "head" in v.reason


def test_reordered_entries_are_named(ledger: Ledger) -> None:
    # Swap entries 3 and 6 (through a free sequence number: (chain, seq) is unique).
    sql(ledger, "UPDATE ledger_entries SET seq = 1000 WHERE seq = 3")
    sql(ledger, "UPDATE ledger_entries SET seq = 3 WHERE seq = 6")
    sql(ledger, "UPDATE ledger_entries SET seq = 6 WHERE seq = 1000")
    v = ledger.verify()
    assert v.first_bad == 3 and not v.ok


def test_an_inserted_entry_is_named(ledger: Ledger) -> None:
    # Make room after entry 5 and insert a forged entry that even chains to entry 5.
    from plantops.store.ledger import entry_hash

    for seq in range(10, 5, -1):
        sql(ledger, f"UPDATE ledger_entries SET seq = {seq + 1} WHERE seq = {seq}")
    five = next(e for e in ledger.iter_entries() if e.seq == 5)
    fields = {
        "chain": "releases", "seq": 6, "kind": "approval", "release_id": "sha256:r0",
        "stage": "prod", "actor": "mallory", "recorded_at": five.recorded_at, "payload": {},
    }  # fmt: skip
    forged = entry_hash(five.hash, fields)
    sql(
        ledger,
        "INSERT INTO ledger_entries (chain, seq, kind, release_id, stage, actor, recorded_at,"
        f" payload, prev_hash, hash) VALUES ('releases', 6, 'approval', 'sha256:r0', 'prod',"
        f" 'mallory', '{five.recorded_at}', '{{}}', '{five.hash}', '{forged}')",
    )
    v = ledger.verify()
    # The forged entry chains correctly; the original entry 6 (now 7) no longer follows it.
    assert v.first_bad == 7 and not v.ok


def test_export_json_and_csv_carry_every_entry_with_its_hashes(ledger: Ledger) -> None:
    doc = json.loads("".join(ledger.export("json")))
    assert [d["seq"] for d in doc] == list(range(1, 11))
    assert doc[3]["payload"] == {"i": 4} and doc[3]["prev_hash"] == doc[2]["hash"]
    rows = list(csv.DictReader(io.StringIO("".join(ledger.export("csv")))))
    assert len(rows) == 10 and rows[9]["hash"] == doc[9]["hash"]
    assert json.loads(rows[0]["payload"]) == {"i": 1}


def test_a_second_claim_of_the_same_promotion_is_refused(ledger: Ledger) -> None:
    claim = [("sha256:r1", "prod", "lyon-meddev")]
    ledger.append([NewEntry("promotion", "sha256:r1", "prod")], now=T0, claims=claim)
    with pytest.raises(PromotionConflict):
        ledger.append([NewEntry("promotion", "sha256:r1", "prod")], now=T0, claims=claim)
    assert ledger.verify().entries == 11  # nothing of the loser was kept


def _racer(url: str, barrier: object, results: object, who: str) -> None:
    led = open_ledger(url)
    original = led.append

    def append_after_barrier(*args: object, **kwargs: object) -> object:
        barrier.wait()  # type: ignore[attr-defined]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    def guard(view: object) -> None:
        claimed = view.claims("sha256:race", "prod")  # type: ignore[attr-defined]
        if "detroit-stamping" in claimed:
            raise PromotionConflict("taken")

    try:
        append_after_barrier(
            [NewEntry("promotion", "sha256:race", "prod", who, {"plants": ["detroit-stamping"]})],
            now=T0,
            claims=[("sha256:race", "prod", "detroit-stamping")],
            guard=guard,
        )
        results.put((who, "won"))  # type: ignore[attr-defined]
    except PromotionConflict:
        results.put((who, "lost"))  # type: ignore[attr-defined]
    finally:
        led.close()


@pytest.mark.parametrize("rounds", [3])
def test_two_processes_racing_for_one_promotion_exactly_one_wins(db_url: str, rounds: int) -> None:
    open_ledger(db_url).close()  # migrate once, before the race
    ctx = multiprocessing.get_context("fork")
    for r in range(rounds):
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_racer, args=(db_url, barrier, results, f"p{i}")) for i in (1, 2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        outcomes = sorted(results.get(timeout=5)[1] for _ in procs)
        expected = ["lost", "won"] if r == 0 else ["lost", "lost"]
        assert outcomes == expected
    led = open_ledger(db_url)
    assert led.verify().ok and led.verify().entries == 1
    assert led.claims("sha256:race", "prod") == {"detroit-stamping": 1}
    led.close()


def test_a_rollback_is_recorded_on_the_chain(db_url: str) -> None:
    from plantops.services.release import record_rollback

    e = record_rollback(plant="lyon-meddev", env="prod", from_release="sha256:new",
                        to_release="sha256:old", actor="rita", reason="MRP totals wrong",
                        database_action="restore pre-upgrade backup", db=db_url, now=T0)  # fmt: skip
    led = open_ledger(db_url)
    try:
        assert e.kind == "rollback" and e.seq == 1 and led.verify().ok
        assert led.entries(kinds=("rollback",))[0].payload["to_release"] == "sha256:old"
    finally:
        led.close()

"""The release ledger: append-only, hash-chained entries in the state database.

Each entry carries the SHA-256 of the previous one: ``hash = sha256(prev_hash + canonical
JSON of (chain, seq, kind, release_id, stage, actor, recorded_at, payload))``. Sequence
numbers are unique per chain (a constraint), and the chain's head (newest seq and hash) is
a row of its own that every writer locks first, so appends are serialised:

- SQLite: the ledger's engine opens every transaction with ``BEGIN IMMEDIATE`` (the
  write lock is taken before the head is read; a second writer waits on busy_timeout);
- PostgreSQL: ``SELECT … FROM ledger_heads … FOR UPDATE`` on the head row.

A promotion also inserts one ``promotion_claims`` row per (release, stage, plant); its
primary key is the last word when two promoters race: exactly one commits, the other
gets :class:`PromotionConflict` and nothing of its transaction is kept.

``verify`` recomputes the chain and names the first bad sequence number after any edit,
deletion, insertion or reordering. What a hash chain cannot prove by itself: someone
with write access who rewrites *every* later entry and the head. Anchor the head hash
elsewhere (it is printed by ``ledger verify`` and written into promotion commits).

Never prints; never imports an outer layer.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from plantops.errors import GateFailed, InfrastructureError, UserError
from plantops.store.catalog import db_reason, default_db_url, make_engine, migrate
from plantops.store.models import LedgerEntry, LedgerHead, PromotionClaim

GENESIS = "0" * 64


DEFAULT_CHAIN = "releases"
EXPORT_FIELDS = (
    "seq",
    "kind",
    "release_id",
    "stage",
    "actor",
    "recorded_at",
    "payload",
    "prev_hash",
    "hash",
)


class PromotionConflict(GateFailed):
    """Another promoter recorded the same (release, stage, plant) first (exit 1)."""


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The entry's hash over the previous hash and its canonical fields."""
    return hashlib.sha256((prev_hash + canonical(fields)).encode()).hexdigest()


def utc_text(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class NewEntry:
    kind: str
    release_id: str = ""
    stage: str = ""
    actor: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    chain: str
    seq: int
    kind: str
    release_id: str
    stage: str
    actor: str
    recorded_at: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "seq": self.seq,
            "kind": self.kind,
            "release_id": self.release_id,
            "stage": self.stage,
            "actor": self.actor,
            "recorded_at": self.recorded_at,
            "payload": self.payload,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.hashed_fields(), "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class Verification:
    """The outcome of ``ledger verify``: ``first_bad`` is None when the chain is intact."""

    chain: str
    entries: int
    head_seq: int
    head_hash: str
    first_bad: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad,
            "reason": self.reason,
        }


Guard = Callable[["LedgerView"], None]


class LedgerView:
    """Read access inside the append transaction (after the head lock is held), so a
    guard sees every entry committed before it and none can slip in meanwhile."""

    def __init__(self, conn: Connection, chain: str) -> None:
        self._conn = conn
        self.chain = chain

    def entries(
        self, *, release_id: str | None = None, stage: str | None = None, kinds: Sequence[str] = ()
    ) -> list[Entry]:
        return _select_entries(self._conn, self.chain, release_id, stage, kinds)

    def claims(self, release_id: str, stage: str) -> dict[str, int]:
        rows = self._conn.execute(
            select(PromotionClaim.plant, PromotionClaim.seq).where(
                PromotionClaim.release_id == release_id, PromotionClaim.stage == stage
            )
        )
        return {str(p): int(s) for p, s in rows}


def _row_entry(row: Any) -> Entry:
    return Entry(
        chain=row.chain,
        seq=int(row.seq),
        kind=row.kind,
        release_id=row.release_id,
        stage=row.stage,
        actor=row.actor,
        recorded_at=row.recorded_at,
        payload=dict(row.payload or {}),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


_COLUMNS = (
    LedgerEntry.chain,
    LedgerEntry.seq,
    LedgerEntry.kind,
    LedgerEntry.release_id,
    LedgerEntry.stage,
    LedgerEntry.actor,
    LedgerEntry.recorded_at,
    LedgerEntry.payload,
    LedgerEntry.prev_hash,
    LedgerEntry.hash,
)


def _select_entries(
    conn: Connection,
    chain: str,
    release_id: str | None,
    stage: str | None,
    kinds: Sequence[str],
) -> list[Entry]:
    q = select(*_COLUMNS).where(LedgerEntry.chain == chain)
    if release_id is not None:
        q = q.where(LedgerEntry.release_id == release_id)
    if stage is not None:
        q = q.where(LedgerEntry.stage == stage)
    if kinds:
        q = q.where(LedgerEntry.kind.in_(list(kinds)))
    return [_row_entry(r) for r in conn.execute(q.order_by(LedgerEntry.seq))]


def _immediate_transactions(engine: Engine) -> None:
    # pysqlite opens transactions lazily (at the first write), so two writers could
    # both read the same head; take the write lock at BEGIN instead. This is the
    # SQLAlchemy recipe for SQLite transaction control ("Serializable isolation /
    # Savepoints / Transactional DDL" in the pysqlite dialect docs).
    @event.listens_for(engine, "connect")
    def _no_implicit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Ledger:
    """Repository over the ledger tables; hands out frozen :class:`Entry` records."""

    def __init__(self, engine: Engine, chain: str = DEFAULT_CHAIN) -> None:
        self.engine = engine
        self.chain = chain

    def where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except PromotionConflict:
            raise
        except IntegrityError as exc:
            # uq_ledger_chain_seq or a claim: another writer committed first.
            raise PromotionConflict(
                f"ledger {self.where()}: another writer recorded this first ({exc.orig})"
            ) from exc
        except SQLAlchemyError as exc:
            raise InfrastructureError(f"ledger {self.where()}: {db_reason(exc)}") from exc

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        q = select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.chain == self.chain)
        if conn.dialect.name == "postgresql":
            # Create the head row race-free, then lock it for the rest of the transaction.
            conn.exec_driver_sql(
                "INSERT INTO ledger_heads (chain, seq, hash) VALUES (%(c)s, 0, %(h)s) "
                "ON CONFLICT (chain) DO NOTHING",
                {"c": self.chain, "h": GENESIS},
            )
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            conn.execute(insert(LedgerHead).values(chain=self.chain, seq=0, hash=GENESIS))
            return 0, GENESIS
        return int(row.seq), str(row.hash)

    def append(
        self,
        entries: Sequence[NewEntry],
        *,
        now: datetime,
        claims: Sequence[tuple[str, str, str]] = (),
        guard: Guard | None = None,
    ) -> list[Entry]:
        """Append ``entries`` (and insert ``claims`` as (release, stage, plant)) in one
        transaction, after ``guard`` (which may raise) has seen the locked ledger."""
        stamp = utc_text(now)
        written: list[Entry] = []
        with self._begin() as conn:
            seq, prev = self._lock_head(conn)
            if guard is not None:
                guard(LedgerView(conn, self.chain))
            rows = []
            for new in entries:
                seq += 1
                fields = {
                    "chain": self.chain,
                    "seq": seq,
                    "kind": new.kind,
                    "release_id": new.release_id,
                    "stage": new.stage,
                    "actor": new.actor,
                    "recorded_at": stamp,
                    "payload": json.loads(canonical(new.payload)),
                }
                digest = entry_hash(prev, fields)
                rows.append({**fields, "prev_hash": prev, "hash": digest})
                written.append(Entry(**fields, prev_hash=prev, hash=digest))
                prev = digest
            if rows:
                conn.execute(insert(LedgerEntry), rows)
            if claims:
                conn.execute(
                    insert(PromotionClaim),
                    [{"release_id": r, "stage": s, "plant": p, "seq": seq} for r, s, p in claims],
                )
            conn.execute(
                update(LedgerHead).where(LedgerHead.chain == self.chain).values(seq=seq, hash=prev)
            )
        return written

    def entries(
        self, *, release_id: str | None = None, stage: str | None = None, kinds: Sequence[str] = ()
    ) -> list[Entry]:
        with self._read() as conn:
            return _select_entries(conn, self.chain, release_id, stage, kinds)

    def claims(self, release_id: str, stage: str) -> dict[str, int]:
        with self._read() as conn:
            return LedgerView(conn, self.chain).claims(release_id, stage)

    def page(self, *, after: int = 0, limit: int = 100) -> tuple[list[Entry], int]:
        """Entries with ``seq > after`` (at most ``limit``, in order) and the entry count."""
        with self._read() as conn:
            q = (
                select(*_COLUMNS)
                .where(LedgerEntry.chain == self.chain, LedgerEntry.seq > after)
                .order_by(LedgerEntry.seq)
                .limit(limit)
            )
            rows = [_row_entry(r) for r in conn.execute(q)]
            total = conn.execute(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.chain == self.chain)
            ).scalar_one()
        return rows, int(total)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise InfrastructureError(f"ledger {self.where()}: {db_reason(exc)}") from exc

    def iter_entries(self, batch: int = 5000) -> Generator[Entry, None, None]:
        """Every entry in sequence order, streamed."""
        with self._read() as conn:
            result = conn.execution_options(yield_per=batch).execute(
                select(*_COLUMNS).where(LedgerEntry.chain == self.chain).order_by(LedgerEntry.seq)
            )
            try:
                for row in result:
                    yield _row_entry(row)
            finally:
                result.close()

    def verify(self) -> Verification:
        """Recompute the chain; the first entry that does not hold is named."""
        with closing(self.iter_entries()) as stream:
            bad_at, count, prev = self._walk(stream)
        if bad_at is not None:
            return bad_at
        return self._check_head(count, prev)

    def _walk(self, stream: Iterator[Entry]) -> tuple[Verification | None, int, str]:
        expected, prev, count = 1, GENESIS, 0

        def bad(seq: int, reason: str) -> Verification:
            return Verification(self.chain, count, expected - 1, prev, seq, reason)

        for e in stream:
            if e.seq != expected:
                if e.seq > expected:
                    why = f"entry {expected} is missing (next is {e.seq}): deleted"
                    return bad(expected, why), count, prev
                why = f"entry {e.seq} appears again after {expected - 1}: inserted"
                return bad(e.seq, why), count, prev
            if e.prev_hash != prev:
                return (
                    bad(
                        e.seq,
                        f"entry {e.seq} does not follow entry {e.seq - 1} (prev_hash "
                        f"{e.prev_hash[:12]}…, expected {prev[:12]}…): deleted, inserted or reordered",
                    ),
                    count,
                    prev,
                )
            if entry_hash(prev, e.hashed_fields()) != e.hash:
                why = f"entry {e.seq} was edited: its content no longer hashes to it"
                return bad(e.seq, why), count, prev
            prev, expected, count = e.hash, expected + 1, count + 1
        return None, count, prev

    def _check_head(self, count: int, prev: str) -> Verification:
        with self._read() as conn:
            head = conn.execute(
                select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.chain == self.chain)
            ).first()
        head_seq, head_hash = (int(head.seq), str(head.hash)) if head else (0, GENESIS)
        if head_seq != count or head_hash != prev:
            first = min(head_seq, count) + 1 if head_seq != count else count
            return Verification(
                self.chain,
                count,
                count,
                prev,
                first,
                f"the chain ends at entry {count} but its head records entry {head_seq}: "
                "entries were removed from the end, or rows were written around the ledger",
            )
        return Verification(self.chain, count, count, prev)

    def export(self, fmt: str) -> Iterator[str]:
        """The ledger as JSON lines' array or CSV, streamed in chunks of text."""
        if fmt == "json":
            yield "[\n"
            first = True
            for e in self.iter_entries():
                yield ("" if first else ",\n") + canonical(e.as_dict())
                first = False
            yield "\n]\n"
        elif fmt == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(EXPORT_FIELDS)
            for e in self.iter_entries():
                d = e.as_dict()
                writer.writerow(
                    [canonical(d[k]) if k == "payload" else d[k] for k in EXPORT_FIELDS]
                )
                if buf.tell() > 65536:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
            yield buf.getvalue()
        else:
            raise UserError(f"--format {fmt}: expected json or csv")


def open_ledger(url: str | None = None, *, chain: str = DEFAULT_CHAIN) -> Ledger:
    """Open (and migrate) the state database's ledger at ``url`` or ``PLANTOPS_DB``."""
    engine = make_engine(url or default_db_url())
    if engine.dialect.name == "sqlite":
        _immediate_transactions(engine)
    migrate(engine)
    return Ledger(engine, chain)


__all__ = [
    "DEFAULT_CHAIN",
    "GENESIS",
    "Entry",
    "Ledger",
    "LedgerView",
    "NewEntry",
    "PromotionConflict",
    "Verification",
    "entry_hash",
    "open_ledger",
    "utc_text",
]

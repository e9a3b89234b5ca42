"""Data volume of an Odoo database from a plant's business volume (docs/sizing.md).

Orders and stock moves per day become rows per day in the tables Odoo writes for them,
rows become bytes through a per-row footprint (heap tuple + its share of the indexes),
and bytes per day become the database size at the end of the sizing horizon, with the
yearly growth compounded. PostgreSQL storage, memory and backups are sized from it;
the resource profile stays the floor. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB

# Rows Odoo writes per confirmed, delivered and invoiced sale order (sale, stock,
# account, mail): one sale.order, its lines, one delivery (stock.picking), one
# customer invoice (account.move) with a journal item per product line plus tax,
# receivable and rounding lines, and the chatter: messages on the order, picking and
# invoice (creation, confirmation, posting) and field trackings (state, amounts).
ROWS_PER_ORDER: dict[str, float] = {
    "sale_order": 1,
    "sale_order_line": 5,
    "stock_picking": 1,
    "account_move": 1,
    "account_move_line": 8,
    "mail_message": 6,
    "mail_tracking_value": 8,
}
# Rows per stock move (receipts, internal transfers, manufacturing consumption and
# production; a sale's delivery moves are counted here too): the move, its detailed
# operations (lots, packages: ~1.2 per move), a valuation layer for valued products
# and the picking's chatter shared by ~5 moves.
ROWS_PER_STOCK_MOVE: dict[str, float] = {
    "stock_move": 1,
    "stock_move_line": 1.2,
    "stock_valuation_layer": 1,
    "mail_message": 0.4,
    "mail_tracking_value": 0.6,
}
# Bytes per row, heap and indexes together. A heap tuple costs its 23-byte header plus
# the 4-byte line pointer, aligned to 8 bytes (PostgreSQL docs, "Database Page Layout":
# HeapTupleHeaderData, ItemIdData); Odoo's tables are wide (sale_order_line and
# account_move_line carry 40-60 stored columns: many2one ids, numerics, dates, jsonb
# translations and analytic distributions) and Odoo indexes every many2one declared
# with index=True plus the create/write columns, so an index entry (16 bytes + key) per
# indexed column adds a third to a half of the heap. mail_message holds the HTML body
# (TOASTed past 2 kB). These are estimates from those layouts, to calibrate against a
# plant's pg_total_relation_size(t) / reltuples when one is at hand. stock_move is
# measured in tests/sizing/test_volume_postgres.py on a real PostgreSQL with the stored
# columns and indexes of addons/stock/models/stock_move.py: ~440 bytes a row fresh,
# ~990 after its state updates (non-HOT: state is indexed).
ROW_BYTES: dict[str, int] = {
    "account_move": 1200,
    "account_move_line": 1100,
    "mail_message": 1500,
    "mail_tracking_value": 250,
    "sale_order": 1200,
    "sale_order_line": 1000,
    "stock_move": 1000,
    "stock_move_line": 800,
    "stock_picking": 900,
    "stock_valuation_layer": 500,
}
# Dead tuples autovacuum has not reclaimed yet and pages not full after updates: tables
# Odoo updates after insert (states, computed stored fields) run 20-40 % above their live
# size between vacuums.
BLOAT_PERCENT = 30
# An empty Odoo database with the usual apps installed (ir_* metadata, translations,
# views, assets): a few hundred MB.
BASE_DATABASE_MIB = 512
# Documents still being worked on (open orders and pickings, the month being closed)
# and the pages their queries touch: the working set PostgreSQL should keep in memory.
HOT_DAYS = 31
# Each Odoo session in Redis: session_redis's RedisSessionStore.save
# (camptocamp/odoo-cloud-platform session_redis/session.py) stores json.dumps of the
# session dict (uid, login, context, token) under session:<prefix>:<sid> with an
# expiry (ODOO_SESSION_REDIS_EXPIRATION, rendered 86400 s); ~1 KiB of JSON plus Redis's
# per-key overhead, rounded up to 4 KiB, one per device a named user logs in from.
SESSION_BYTES = 4096
SESSIONS_PER_USER = 3


@dataclass(frozen=True)
class DataVolume:
    rows_per_day: int
    bytes_per_day: int
    data_gib: float
    """Database size at the end of the horizon (all databases of the unit)."""
    hot_mib: int
    """Working set: the base databases plus HOT_DAYS of new rows."""
    session_mib: int


def estimate_volume(
    *,
    orders_per_day: int,
    stock_moves_per_day: int,
    named_users: int,
    databases: int,
    horizon_years: int,
    growth_percent: float,
) -> DataVolume:
    """Rows, bytes and the database size after ``horizon_years`` of growth."""
    rows = 0.0
    raw = 0.0
    for per, count in (
        (ROWS_PER_ORDER, orders_per_day),
        (ROWS_PER_STOCK_MOVE, stock_moves_per_day),
    ):
        for table, n in per.items():
            rows += n * count
            raw += n * count * ROW_BYTES[table]
    per_day = raw * (100 + BLOAT_PERCENT) / 100
    g = growth_percent / 100
    # Year k writes per_day × 365 × (1 + g)^k: a geometric sum over the horizon.
    days = sum(365 * (1 + g) ** k for k in range(horizon_years))
    base = databases * BASE_DATABASE_MIB * MIB
    data = base + per_day * days
    hot = base + per_day * HOT_DAYS
    sessions = named_users * SESSIONS_PER_USER * SESSION_BYTES
    return DataVolume(
        rows_per_day=math.ceil(rows),
        bytes_per_day=math.ceil(per_day),
        data_gib=round(data / GIB, 2),
        hot_mib=math.ceil(hot / MIB),
        session_mib=math.ceil(sessions / MIB),
    )

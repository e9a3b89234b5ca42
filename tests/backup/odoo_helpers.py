"""An Odoo-like database (the tables plantops reads) and its filestore, for tests."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.postgres import PgCluster

from plantops.backup.pg import PgTarget

ODOO_SCHEMA = """
CREATE TABLE ir_module_module (id serial PRIMARY KEY, name varchar NOT NULL UNIQUE,
    state varchar, latest_version varchar);
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE,
    value text NOT NULL);
CREATE TABLE ir_model_data (id serial PRIMARY KEY, name varchar, module varchar,
    model varchar, res_id integer);
CREATE TABLE ir_cron (id serial PRIMARY KEY, name varchar, active boolean);
CREATE TABLE ir_mail_server (id serial PRIMARY KEY, name varchar, smtp_host varchar,
    active boolean);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar, email varchar, note text);
CREATE INDEX res_partner_name_idx ON res_partner (name);
CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar, store_fname varchar,
    checksum varchar, file_size integer, res_model varchar);
INSERT INTO ir_module_module (name, state, latest_version) VALUES
    ('base', 'installed', '17.0.1.3'), ('web', 'installed', '17.0.1.0'),
    ('stock', 'installed', '17.0.1.1'), ('mrp', 'uninstalled', NULL);
INSERT INTO ir_config_parameter (key, value) VALUES
    ('database.uuid', 'a4b1c2d3-0000-4000-8000-000000000001'),
    ('web.base.url', 'https://erp.example.com');
INSERT INTO ir_cron (name, active) VALUES ('Autovacuum', true), ('Send invoices', true),
    ('Carrier sync', true);
INSERT INTO ir_model_data (name, module, model, res_id) VALUES
    ('autovacuum_job', 'base', 'ir.cron', 1);
INSERT INTO ir_mail_server (name, smtp_host, active) VALUES ('prod smtp', 'smtp.example.com', true);
INSERT INTO res_partner (name, email, note)
    SELECT 'Partner ' || g, 'p' || g || '@example.com', md5(g::text)
    FROM generate_series(1, 500) g;
"""


@dataclass
class OdooDb:
    cluster: PgCluster
    name: str
    filestore: Path
    attachments: int

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)

    @property
    def target(self) -> PgTarget:
        return PgTarget.from_url(self.url)


def make_odoo_db(cluster: PgCluster, filestore_root: Path, files: int = 25) -> OdooDb:
    name = cluster.create_database("odoo")
    filestore = filestore_root / "filestore" / name
    with cluster.connect(name) as conn:
        conn.execute(ODOO_SCHEMA)
        for i in range(files):
            data = os.urandom(200 + i * 37)
            sha = hashlib.sha1(data).hexdigest()
            fname = f"{sha[:2]}/{sha}"
            (filestore / sha[:2]).mkdir(parents=True, exist_ok=True)
            (filestore / fname).write_bytes(data)
            conn.execute(
                "INSERT INTO ir_attachment (name, store_fname, checksum, file_size, res_model)"
                " VALUES (%s, %s, %s, %s, 'res.partner')",
                (f"doc{i}.pdf", fname, sha, len(data)),
            )
    return OdooDb(cluster, name, filestore, files)

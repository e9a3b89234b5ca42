"""Build a backup zip the way Odoo's database manager does, from a real database.

Follows odoo/service/db.py ``dump_db`` (backup_format='zip') and ``dump_db_manifest``,
and odoo/tools/osutil.py ``zip_dir``, step by step:

1. the filestore is copied to ``<tmp>/filestore`` (``shutil.copytree``, links followed);
2. ``manifest.json`` is ``json.dump(manifest, fh, indent=4)`` with the keys
   ``odoo_dump``, ``db_name``, ``version``, ``version_info``, ``major_version``,
   ``pg_version`` ("%d.%d" of ``divmod(server_version / 100, 100)``) and ``modules``
   (``name → latest_version`` of installed modules);
3. ``pg_dump --no-owner --file=<tmp>/dump.sql DB``;
4. the directory is zipped ZIP_DEFLATED with zip64 allowed, files only (no directory
   entries), ``dump.sql`` sorted first in the top directory, ``.pyc/.pyo/.swp/.DS_Store``
   skipped, names relative to the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from odoo_helpers import OdooDb

from plantops.backup.pg import find_pg_tool

SKIPPED = (".pyc", ".pyo", ".swp", ".DS_Store")


def odoo_manifest(
    db: OdooDb, version_info: tuple[Any, ...] = (17, 0, 0, "final", 0, "")
) -> dict[str, Any]:
    with db.cluster.connect(db.name) as conn:
        server_version = int(conn.info.server_version)
        modules = dict(
            conn.execute(
                "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
            ).fetchall()
        )
    major = ".".join(str(v) for v in version_info[:2])
    return {
        "odoo_dump": "1",
        "db_name": db.name,
        "version": major,
        "version_info": list(version_info),
        "major_version": major,
        "pg_version": "{:d}.{:d}".format(*(int(v) for v in divmod(server_version / 100, 100))),
        "modules": modules,
    }


def zip_like_odoo(directory: Path, out: Path) -> None:
    """``zip_dir(directory, out, include_dir=False, fnct_sort=lambda n: n != 'dump.sql')``."""
    prefix = len(str(directory)) + 1
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for dirpath, _dirnames, filenames in os.walk(directory):
            for fname in sorted(filenames, key=lambda n: n != "dump.sql"):
                # zip_dir: os.path.splitext, and a bare ".DS_Store" is its own extension.
                stem, ext = os.path.splitext(fname)  # noqa: PTH122
                if (ext or stem) in SKIPPED:
                    continue
                path = Path(dirpath) / fname
                if path.is_file():  # follows links, as os.path.isfile does
                    zf.write(path, str(path)[prefix:])


def make_odoo_zip(db: OdooDb, out: Path, manifest: dict[str, Any] | None = None) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        dump_dir = Path(tmp)
        if db.filestore.exists():
            shutil.copytree(db.filestore, dump_dir / "filestore")
        with (dump_dir / "manifest.json").open("w") as fh:
            json.dump(manifest or odoo_manifest(db), fh, indent=4)
        subprocess.run(
            [find_pg_tool("pg_dump", 15), "--no-owner", f"--file={dump_dir / 'dump.sql'}", db.name],
            env=db.target.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            check=True,
        )
        zip_like_odoo(dump_dir, out)
    return out


def rezip(
    src: Path,
    out: Path,
    changes: dict[str, bytes | None],
    extra: list[tuple[zipfile.ZipInfo | str, bytes]] | None = None,
) -> Path:
    """Copy ``src`` with members replaced (bytes) or removed (None), plus ``extra`` ones."""
    import warnings

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in changes:
                data = changes[info.filename]
                if data is not None:
                    zout.writestr(info.filename, data)
                continue
            zout.writestr(info, zin.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name": wanted by some tests
            for member, data in extra or []:
                zout.writestr(member, data)
    return out

"""No secret value reaches output: a canary placed where a fleet's secrets live — the
secret store behind its references, the environment, the database — never appears in
what validate, classify or plan print, log, render or say in an error."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from plantops.cli.main import app

BASE = Path(__file__).resolve().parent.parent / "spec" / "base"
ENV_NAMES = [
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "VAULT_TOKEN",
    "ODOO_ADMIN_PASSWD",
    "PLANTOPS_DB_PASSWORD",
    "PLANTOPS_AGE_KEY",
]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _plant_the_canary(root: Path, cwd: Path, canary: str) -> dict[str, str]:
    # the secret store the fleet's references point at (defaults.secret_store: vault,
    # object storage credentials_key): values plantops must never read into output
    store = root / "secrets"
    store.mkdir()
    (store / "vault.json").write_text(
        f'{{"plantops/object-storage": {{"ACCESS_SECRET_KEY": "{canary}"}},'
        f' "odoo/admin": "{canary}"}}'
    )
    # the database: a state database holding the canary, where plantops looks by default
    (cwd / ".plantops").mkdir()
    with sqlite3.connect(cwd / ".plantops" / "state.db") as db:
        db.execute("create table secrets (value text)")
        db.execute("insert into secrets values (?)", (canary,))
    env = {name: canary for name in ENV_NAMES}
    env["PLANTOPS_DB"] = f"postgresql://plantops:{canary}@db.example:5432/plantops"
    env["PLANTOPS_DB_URL_ALPHA_PROD"] = f"postgresql://odoo:{canary}@alpha-db:5432/alpha"
    return env


@settings(max_examples=12, deadline=None)
@given(
    canary=st.from_regex(r"CANARY-[A-Za-z0-9]{12,24}", fullmatch=True),
    command=st.sampled_from(["validate", "classify", "plan", "plan-json", "classify-json"]),
    broken=st.sampled_from([None, "users", "yaml", "unknown-plant"]),
)
def test_canary_never_appears(canary: str, command: str, broken: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        root = cwd / "fleet"
        shutil.copytree(BASE, root)
        env = _plant_the_canary(root, cwd, canary)
        if broken == "users":
            alpha = root / "plants" / "alpha.yaml"
            alpha.write_text(alpha.read_text().replace("named: 50", "named: nope"))
        elif broken == "yaml":
            (root / "plants" / "alpha.yaml").write_text("code: [alpha\n")
        out = cwd / "out"
        name, _, fmt = command.partition("-")
        args = [name, str(root)]
        if name == "plan":
            args += ["--out", str(out)]
        if fmt:
            args += ["--format", fmt]
        if broken == "unknown-plant":
            args += ["--plant", "nope"]
        handler = _Collect()
        logging.getLogger().addHandler(handler)
        old = Path.cwd()
        os.chdir(cwd)
        try:
            result = CliRunner().invoke(app, args, env=env)
        finally:
            os.chdir(old)
            logging.getLogger().removeHandler(handler)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert result.exit_code in (0, 2), result.output
        assert canary not in result.output
        assert all(canary not in line for line in handler.lines)
        if out.exists():
            for p in out.rglob("*"):
                if p.is_file():
                    assert canary.encode() not in p.read_bytes(), p

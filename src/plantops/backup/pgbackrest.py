"""pgBackRest for VM plants: drive the commands against a configuration.

The configuration is the one ``plantops plan`` renders (``render.compose.stack``
``render_pgbackrest_conf``; :func:`fleet_config` returns it for a plant): S3 repository,
zstd, aes-256-cbc with the passphrase from the environment at run time, never in the
file. ``restore`` writes ``restore_command`` only from the options on its own command
line, so every command gets ``--config``.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plantops.backup.errors import DatabaseError, TargetExists
from plantops.backup.pg import tool_error
from plantops.errors import UserError
from plantops.inputs import MIB, Limits, read_text
from plantops.names import STANZA, check_name
from plantops.render.compose.systemd import BACKUP_TYPES

if TYPE_CHECKING:
    from plantops.backup.fleet import BackupTarget


def format_target_time(when: dt.datetime) -> str:
    """pgBackRest's time format: ``YYYY-MM-DD HH:MM:SS.mmm+00`` (naive times refused)."""
    if when.tzinfo is None:
        raise UserError(f"target time {when.isoformat()} needs a time zone")
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}+00"


def archive_command(config_file: Path, stanza: str) -> str:
    """The ``archive_command`` for postgresql.conf."""
    return f"pgbackrest --config={config_file} --stanza={stanza} archive-push %p"


def fleet_config(target: BackupTarget) -> tuple[str, str]:
    """``(stanza, pgbackrest.conf)`` of a VM plant, exactly as ``plantops plan`` renders it
    under ``vms/<unit>-<env>/`` (same renderer, same fleet settings).
    """
    from plantops.render.compose.stack import render_pgbackrest_conf, stanza
    from plantops.render.context import RenderContext

    dep = target.deployment
    if dep.cluster is not None:
        raise UserError(
            f"plant {target.plant} runs on Kubernetes (cluster {dep.cluster.name}):"
            " CloudNativePG archives its WAL; see `plantops dr plan`"
        )
    ctx = RenderContext.from_fleet(target.fleet.spec)
    return stanza(dep), render_pgbackrest_conf(dep, ctx)


# A pgbackrest.conf is a few dozen lines; a megabyte is already not one.
CONFIG_LIMITS = Limits(max_bytes=1 * MIB)


def read_config(config_file: Path) -> configparser.ConfigParser:
    """The pgBackRest INI file, read as any user input (a regular file, bounded)."""
    text = read_text(config_file, str(config_file), limits=CONFIG_LIMITS)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=str(config_file))
    except configparser.Error as exc:
        raise UserError(f"pgBackRest config {config_file} is not valid: {exc}") from exc
    return parser


def config_stanza(config_file: Path, stanza: str | None) -> str:
    """``stanza``, checked against the config; or the config's only stanza."""
    sections = [s for s in read_config(config_file).sections() if s != "global"]
    for s in sections:
        # [global:archive-push] and the like are option sections, not stanzas
        if ":" not in s:
            check_name(s, STANZA, f"{config_file}: section")
    sections = [s for s in sections if ":" not in s]
    if stanza is None:
        if len(sections) != 1:
            raise UserError(
                f"{config_file} has {len(sections)} stanzas ({', '.join(sections) or 'none'}):"
                " pass --stanza"
            )
        return sections[0]
    check_name(stanza, STANZA, "--stanza")
    if stanza not in sections:
        raise UserError(
            f"stanza {stanza!r} is not in {config_file} (stanzas: {', '.join(sections) or 'none'})"
        )
    return stanza


def config_pg_path(config_file: Path, stanza: str) -> Path | None:
    value = read_config(config_file).get(stanza, "pg1-path", fallback=None)
    return Path(value) if value else None


@dataclass(frozen=True)
class BackupInfo:
    label: str
    type: str
    started: dt.datetime
    stopped: dt.datetime
    size_bytes: int
    repo_bytes: int


def parse_info(text: str, stanza: str) -> list[BackupInfo]:
    """Backups of ``stanza`` from ``pgbackrest info --output=json``, oldest first."""
    try:
        data: list[dict[str, Any]] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatabaseError(f"pgbackrest info: unreadable output: {exc}") from exc
    out = []
    for st in data:
        if st.get("name") != stanza:
            continue
        for b in st.get("backup", []):
            ts = b.get("timestamp", {})
            info = b.get("info", {})
            out.append(
                BackupInfo(
                    label=str(b.get("label", "")),
                    type=str(b.get("type", "")),
                    started=dt.datetime.fromtimestamp(int(ts.get("start", 0)), dt.UTC),
                    stopped=dt.datetime.fromtimestamp(int(ts.get("stop", 0)), dt.UTC),
                    size_bytes=int(info.get("size", 0)),
                    repo_bytes=int(info.get("repository", {}).get("delta", 0)),
                )
            )
    return out


class PgBackRest:
    """Runs pgbackrest as the given OS user (``runuser`` when we are root)."""

    def __init__(self, config_file: Path, stanza: str, run_as: str | None = None) -> None:
        self.config_file = config_file
        self.stanza = stanza
        self.run_as = run_as

    def _cmd(self, command: str, extra: Sequence[str]) -> list[str]:
        cmd = [
            "pgbackrest",
            f"--config={self.config_file}",
            f"--stanza={self.stanza}",
            *extra,
            command,
        ]
        if self.run_as and os.geteuid() == 0:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        return cmd

    def run(self, command: str, *extra: str, timeout: float = 3600) -> str:
        try:
            proc = subprocess.run(
                self._cmd(command, extra), capture_output=True, check=False, timeout=timeout
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatabaseError(f"pgbackrest {command}: {exc}") from exc
        if proc.returncode != 0:
            raise DatabaseError(
                f"pgbackrest {command} (stanza {self.stanza}) failed with exit"
                f" {proc.returncode}: {tool_error(proc.stderr + proc.stdout)}"
            )
        return proc.stdout.decode(errors="replace")

    def stanza_create(self) -> str:
        return self.run("stanza-create")

    def check(self) -> str:
        return self.run("check")

    def backup(self, backup_type: str = "full") -> str:
        if backup_type not in BACKUP_TYPES:
            raise UserError(f"backup type {backup_type!r}: use one of {', '.join(BACKUP_TYPES)}")
        return self.run("backup", f"--type={backup_type}")

    def info(self) -> str:
        return self.run("info", "--output=json")

    def backups(self) -> list[BackupInfo]:
        return parse_info(self.info(), self.stanza)

    def restore_to_time(
        self, target: dt.datetime | str | None, pg_path: Path, *, promote: bool = True
    ) -> str:
        """Restore into ``pg_path`` (a new, empty data directory) up to ``target`` time, or
        with ``None`` to the end of the archived WAL (pgBackRest ``--type=default``, which
        takes no ``--target-action``: PostgreSQL promotes when the archive ends)."""
        if isinstance(target, dt.datetime):
            target = format_target_time(target)
        live = config_pg_path(self.config_file, self.stanza)
        if live is not None and live.resolve() == pg_path.resolve():
            raise UserError(
                f"{pg_path} is the stanza's own data directory (pg1-path): restore into a new"
                " directory, never in place"
            )
        if pg_path.exists() and (not pg_path.is_dir() or any(pg_path.iterdir())):
            raise TargetExists(
                f"restore target {pg_path} exists and is not an empty directory:"
                " restore into a new directory, never over existing data"
            )
        if target is None:
            return self.run("restore", "--type=default", f"--pg1-path={pg_path}")
        return self.run(
            "restore",
            "--type=time",
            f"--target={target}",
            f"--target-action={'promote' if promote else 'pause'}",
            f"--pg1-path={pg_path}",
        )

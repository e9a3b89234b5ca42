"""pgBackRest for VM plants: render the configuration (pure) and drive the commands.

Repository on disk (posix) or S3; zstd compression; aes-256-cbc encryption whose
passphrase is read from a secret reference (an environment variable or a file) at
run time, never stored in the fleet. ``restore`` writes ``restore_command`` only
from the options on its own command line, so every command gets ``--config``.
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

if TYPE_CHECKING:
    from plantops.backup.fleet import BackupTarget

BACKUP_TYPES = ("full", "diff", "incr")


@dataclass(frozen=True)
class S3Repo:
    bucket: str
    endpoint: str
    region: str
    path: str = "/pgbackrest"
    uri_style: str = "path"


@dataclass(frozen=True)
class PgBackRestConfig:
    stanza: str
    pg_path: Path
    pg_port: int = 5432
    pg_socket_path: Path | None = None
    repo_path: Path | None = None  # posix repository
    s3: S3Repo | None = None
    retention_full: int = 2
    retention_diff: int = 6
    process_max: int = 2
    cipher_pass_ref: str | None = None  # "env:NAME" or "file:/path"
    archive_async: bool = True
    spool_path: Path | None = None
    log_path: Path | None = None
    lock_path: Path | None = None
    compress_type: str = "zst"
    compress_level: int = 3


def resolve_secret(ref: str) -> str:
    """Value of a secret reference: ``env:NAME`` or ``file:/path``."""
    kind, _, where = ref.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if not value:
            raise UserError(f"secret reference {ref}: environment variable {where} is not set")
        return value
    if kind == "file":
        try:
            return Path(where).read_text().strip()
        except OSError as exc:
            raise UserError(f"secret reference {ref}: {exc.strerror}") from exc
    raise UserError(f"secret reference {ref!r}: use env:NAME or file:/path")


def render_config(cfg: PgBackRestConfig, cipher_pass: str | None = None) -> str:
    """The pgbackrest.conf text; ``cipher_pass`` is filled in at run time only."""
    if (cfg.repo_path is None) == (cfg.s3 is None):
        raise UserError("pgBackRest needs exactly one repository: a path or S3")
    lines = ["[global]"]
    if cfg.s3 is not None:
        lines += [
            "repo1-type=s3",
            f"repo1-path={cfg.s3.path}",
            f"repo1-s3-bucket={cfg.s3.bucket}",
            f"repo1-s3-endpoint={cfg.s3.endpoint}",
            f"repo1-s3-region={cfg.s3.region}",
            f"repo1-s3-uri-style={cfg.s3.uri_style}",
            "repo1-s3-key-type=shared",
        ]
    else:
        lines += ["repo1-type=posix", f"repo1-path={cfg.repo_path}"]
    lines += [
        f"repo1-retention-full={cfg.retention_full}",
        f"repo1-retention-diff={cfg.retention_diff}",
        f"compress-type={cfg.compress_type}",
        f"compress-level={cfg.compress_level}",
        f"process-max={cfg.process_max}",
        "start-fast=y",
        "log-level-console=warn",
        "log-level-file=info",
    ]
    if cfg.cipher_pass_ref is not None:
        lines.append("repo1-cipher-type=aes-256-cbc")
        if cipher_pass is not None:
            lines.append(f"repo1-cipher-pass={cipher_pass}")
        else:
            lines.append(f"# repo1-cipher-pass from {cfg.cipher_pass_ref} at run time")
    if cfg.archive_async:
        lines.append("archive-async=y")
        lines.append(f"spool-path={cfg.spool_path or '/var/spool/pgbackrest'}")
    if cfg.log_path is not None:
        lines.append(f"log-path={cfg.log_path}")
    if cfg.lock_path is not None:
        lines.append(f"lock-path={cfg.lock_path}")
    lines += ["", f"[{cfg.stanza}]", f"pg1-path={cfg.pg_path}", f"pg1-port={cfg.pg_port}"]
    if cfg.pg_socket_path is not None:
        lines.append(f"pg1-socket-path={cfg.pg_socket_path}")
    return "\n".join(lines) + "\n"


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


def read_config(config_file: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with config_file.open() as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise UserError(f"pgBackRest config {config_file}: {exc.strerror}") from exc
    except configparser.Error as exc:
        raise UserError(f"pgBackRest config {config_file} is not valid: {exc}") from exc
    return parser


def config_stanza(config_file: Path, stanza: str | None) -> str:
    """``stanza``, checked against the config; or the config's only stanza."""
    sections = [s for s in read_config(config_file).sections() if s != "global"]
    if stanza is None:
        if len(sections) != 1:
            raise UserError(
                f"{config_file} has {len(sections)} stanzas ({', '.join(sections) or 'none'}):"
                " pass --stanza"
            )
        return sections[0]
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

"""Fixtures for the server tests: an app over the example fleet with a SQLite store,
API tokens for every role, and (for the process tests) ``plantops serve`` as a child."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from plantops.server import ServerSettings, create_app
from plantops.services import tokens as services_tokens
from plantops.store.server import ROLES
from tests.conftest import EXAMPLE
from tests.fixtures.postgres import free_port, pg_cluster, pg_db

__all__ = ["pg_cluster", "pg_db"]

# A plant-it token's scope in the example fleet; OTHER is a plant outside it.
SCOPED = "brno-components"
OTHER = "lyon-meddev"
WEBHOOK_KEY = "test-webhook-key-not-for-production"


@dataclass
class Server:
    client: TestClient
    settings: ServerSettings
    tokens: dict[str, str]
    app: FastAPI

    def as_role(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_tokens(db_url: str) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    made = {}
    for role in ROLES:
        plants = (SCOPED,) if role == "plant-it" else ()
        made[role], _ = services_tokens.create_api_token(
            role=role, plants=plants, expires=None, now=now, db_url=db_url
        )
    return made


@pytest.fixture
def fleet_copy(tmp_path: Path) -> Path:
    """The example fleet (read-only use); its own copy so tests may touch files."""
    import shutil

    dest = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("out", ".plantops"))
    return dest


@pytest.fixture
def server_fleet() -> Path:
    """The fleet the ``server`` fixture serves (override in a module for another)."""
    return EXAMPLE


@pytest.fixture
def server_settings(tmp_path: Path, server_fleet: Path) -> ServerSettings:
    return ServerSettings(
        fleet=server_fleet,
        db_url=f"sqlite:///{tmp_path}/state.db",
        out=tmp_path / "out",
        session_secret="test-secret",
        webhook_key=WEBHOOK_KEY,
        deliver_webhooks=False,  # the webhook tests start their own delivery
        webhook_allow_networks=("127.0.0.0/8",),  # the test receivers listen on loopback
    )


@pytest.fixture
def server(server_settings: ServerSettings) -> Iterator[Server]:
    settings = server_settings
    db_url = settings.db_url
    app = create_app(settings)
    tokens = make_tokens(db_url)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield Server(client, settings, tokens, app)


@dataclass
class Process:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def start_serve(
    fleet: Path,
    db_url: str,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    name: str = "a",
    args: tuple[str, ...] = (),
) -> Process:
    """``plantops serve`` as a child process on a free loopback port, once it answers."""
    port = free_port()
    log = workdir / f"serve-{name}-{port}.log"
    cmd = [
        sys.executable, "-m", "plantops.cli", "serve", "--fleet", str(fleet),
        "--port", str(port), "--db", db_url, "--out", str(workdir / f"out-{name}"), *args,
    ]  # fmt: skip
    full_env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        **(env or {}),
    }
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"plantops serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return Process(url, proc, log)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"plantops serve did not answer in 60 s: {log.read_text()}")


def stop(p: Process) -> None:
    p.proc.terminate()
    try:
        p.proc.wait(10)
    except subprocess.TimeoutExpired:
        p.proc.kill()
        p.proc.wait()

"""``plantops daemon start|stop|status``: the resident plan server.

``start`` launches :mod:`plantops.cli.planserver` in the background for the current
environment (or in the foreground, for a service manager) and waits until it answers;
from then on ``plantops plan`` in the same environment runs there. ``stop`` asks it to
finish and waits; ``status`` says whether one runs and how many runs it served.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from plantops.cli import planclient
from plantops.cli.console import err, out
from plantops.errors import EXIT_INFRA, EXIT_USAGE

daemon_app = typer.Typer(
    help="A resident plan server: `plantops plan` runs there, without start-up costs.",
    no_args_is_help=True,
)

_START_SECONDS = 60.0


def _socket(create: bool = False) -> Path:
    """This environment's socket path, its folder checked (made by ``start`` only)."""
    env = dict(os.environ)
    folder = planclient.runtime_dir(env)
    if not folder.exists():
        if not create:
            return planclient.socket_path(env)
        try:
            folder.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            err.print(f"error: cannot make {folder}: {exc.strerror or exc}")
            raise typer.Exit(EXIT_INFRA) from exc
    problem = planclient.private_dir_problem(folder)
    if problem is not None:
        err.print(f"error: {problem}; set PLANTOPS_DAEMON_DIR to a private folder")
        raise typer.Exit(EXIT_USAGE)
    path = planclient.socket_path(env)
    if len(os.fsencode(path)) > 107:
        err.print(
            f"error: {path}: too long for a Unix socket (107 bytes at most);"
            " set PLANTOPS_DAEMON_DIR to a shorter folder"
        )
        raise typer.Exit(EXIT_USAGE)
    return path


def start(
    idle: Annotated[
        float,
        typer.Option(
            "--idle", help="Stop after this many minutes without a request (0: never).", min=0
        ),
    ] = 60.0,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Serve in this process (for systemd and the like).")
    ] = False,
) -> None:
    """Start a plan server for this environment (a no-op when one runs)."""
    path = _socket(create=True)
    running = planclient.request(path, "ping")
    if running is not None:
        out.print(f"a plan server already runs (pid {running.get('pid')}, {path})")
        return
    args = [sys.executable, "-m", "plantops.cli.planserver", "--socket", str(path)]
    args += ["--idle", str(idle * 60)]
    if foreground:
        raise typer.Exit(subprocess.call(args))
    log = path.with_suffix(".log")
    with open(log, "ab", buffering=0) as fh:  # noqa: PTH123
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, start_new_session=True
        )
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        answer = planclient.request(path, "ping", timeout=2.0)
        if answer is not None:
            out.print(f"plan server started: pid {answer.get('pid')}, socket {path}, log {log}")
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    err.print(f"error: the plan server did not start; see {log}")
    raise typer.Exit(EXIT_INFRA)


def stop() -> None:
    """Stop this environment's plan server (a no-op when none runs)."""
    path = _socket()
    answer = planclient.request(path, "stop")
    if answer is None:
        out.print("no plan server runs for this environment")
        return
    deadline = time.monotonic() + _START_SECONDS
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    out.print(f"plan server {answer.get('pid')} stopped after {answer.get('served', 0)} run(s)")


def status() -> None:
    """Whether a plan server runs for this environment (exit 1: none)."""
    path = _socket()
    answer = planclient.request(path, "ping")
    if answer is None:
        out.print(f"no plan server runs for this environment ({path})")
        raise typer.Exit(1)
    up = time.time() - float(answer.get("started", time.time()))
    out.print(
        f"plan server pid {answer.get('pid')}: up {up:.0f} s, {answer.get('served', 0)} run(s)"
        f" served, socket {path}"
    )


def register(app: typer.Typer) -> None:
    daemon_app.command("start")(start)
    daemon_app.command("stop")(stop)
    daemon_app.command("status")(status)
    app.add_typer(daemon_app, name="daemon")

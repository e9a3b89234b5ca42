"""A ``running`` backup row is its run's while that process lives: a later process that
got the same pid (pids are reused) does not keep the row alive forever."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

from plantops.backup.archive import process_started, run_alive


def test_process_start_is_read_from_proc() -> None:
    began = process_started(os.getpid())
    assert began is not None
    assert began <= datetime.now(UTC) + timedelta(seconds=2)
    child = subprocess.Popen(["sleep", "5"])
    try:
        child_began = process_started(child.pid)
        assert child_began is not None and child_began >= began - timedelta(seconds=2)
    finally:
        child.kill()
        child.wait()
    assert process_started(child.pid) is None  # gone


def test_a_run_is_alive_only_in_the_process_that_began_it() -> None:
    began = process_started(os.getpid())
    assert began is not None
    # This process began the run (the row's start is after the process's): alive.
    assert run_alive(os.getpid(), datetime.now(UTC))
    assert run_alive(os.getpid(), (began + timedelta(seconds=1)).replace(tzinfo=None))
    # The row is older than the process now holding its pid: another process, dead run.
    assert not run_alive(os.getpid(), began - timedelta(hours=1))
    child = subprocess.Popen(["true"])
    child.wait()
    assert not run_alive(child.pid, datetime.now(UTC))

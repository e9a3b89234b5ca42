"""Run one hostile case: in a forked child (bounded in seconds, killed if it hangs), through
Typer's CliRunner, and check the verdict the issue asks of every case.

A case ends in one of three ways: a located error (exit 2, the message names the file
and line, or the option or path at fault), a correct result (exit 0, or 1 for findings),
or a documented refusal (exit 2 with the documented message). Never a traceback, never
a hang, never a write outside the places the case allows.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import plantops.cli.main  # noqa: F401  (imported once here: forked children inherit it)

SECONDS = 20.0  # a generous bound for a loaded 2-core machine; cases take ~0.1 s
LOCATED = re.compile(r"[\w./-]+\.(ya?ml|json):\d+(:\d+)?")


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    output: str  # stdout and stderr
    exception: str | None  # repr of an exception other than SystemExit, if any


def _child(args: list[str], cwd: str, env: dict[str, str], conn: object) -> None:
    from typer.testing import CliRunner

    from plantops.cli.main import app

    os.chdir(cwd)
    os.environ.update(env)
    tempfile.tempdir = None  # read $TMPDIR again: a case may give its own
    result = CliRunner().invoke(app, args)
    exc = result.exception
    bad = None if exc is None or isinstance(exc, SystemExit) else repr(exc)
    if bad is not None:
        import traceback

        bad += "\n" + "".join(traceback.format_exception(exc))
    outcome = Outcome(result.exit_code, result.output, bad)
    conn.send_bytes(pickle.dumps(outcome))  # type: ignore[attr-defined]


def run_cli(args: Iterable[str], cwd: Path, env: dict[str, str] | None = None) -> Outcome:
    """``plantops ARGS`` in a forked child; the test fails if it runs over SECONDS."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(list(args), str(cwd), env or {}, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(SECONDS):
            raise AssertionError(f"plantops {' '.join(args)} did not finish in {SECONDS} s")
        outcome: Outcome = pickle.loads(parent.recv_bytes())
    finally:
        proc.join(1)
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
    return outcome


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (links not followed)."""
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = p.lstat()
            found[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def check(
    outcome: Outcome,
    *,
    allowed: Iterable[int],
    expect: Iterable[str] = (),
    located: bool = False,
) -> None:
    """The verdict every hostile case must meet."""
    assert outcome.exception is None, f"uncaught exception:\n{outcome.exception}"
    assert "Traceback" not in outcome.output, outcome.output
    allowed = set(allowed)
    assert outcome.exit_code in allowed, (outcome.exit_code, outcome.output)
    if outcome.exit_code == 2:
        assert (
            "error" in outcome.output.lower() or "usage" in outcome.output.lower()
        ), outcome.output
        if located:
            assert LOCATED.search(outcome.output), f"no file:line in:\n{outcome.output}"
    for text in expect:
        assert text in outcome.output, f"{text!r} not in:\n{outcome.output}"


def changed_outside(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], places: Iterable[str]
) -> list[str]:
    """Paths created, changed or removed that are not under one of ``places``."""
    prefixes = tuple(p.rstrip("/") for p in places)

    def inside(rel: str) -> bool:
        return any(rel == p or rel.startswith(p + "/") for p in prefixes)

    # the tree writer's lock and staging siblings (`.out.lock`) belong to its place
    def ours(rel: str) -> bool:
        return inside(rel) or any(
            Path(rel).name.startswith(f".{Path(p).name}.")
            and str(Path(rel).parent) == str(Path(p).parent)
            for p in prefixes
        )

    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k) and not ours(k))


def _call_child(fn: Callable[[], object], conn: object) -> None:
    try:
        value: object = ("ok", fn())
    except BaseException as exc:  # reported to the parent, which fails the test
        value = ("raised", repr(exc))
    conn.send_bytes(pickle.dumps(value))  # type: ignore[attr-defined]


def run_bounded(fn: Callable[[], object]) -> object:
    """``fn()`` in a forked child, bounded by SECONDS; its exception fails the caller."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_call_child, args=(fn, child))
    proc.start()
    child.close()
    try:
        if not parent.poll(SECONDS):
            raise AssertionError(f"did not finish in {SECONDS} s")
        status, value = pickle.loads(parent.recv_bytes())
    finally:
        proc.join(1)
        if proc.is_alive():
            proc.kill()
            proc.join()
        parent.close()
    assert status == "ok", value
    return value

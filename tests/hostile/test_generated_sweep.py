"""Generated hostile command lines for every command (issue 10: "fix the class, then test
it with generated inputs").

The command tree is read from the Typer app itself, so a new command or option is swept
without a line here. For each draw, Hypothesis picks a command and, for its arguments and
some of its options, a value from the pool of the option's role: paths (pipes, loops,
dangling links, ``..`` out of the tree, device files, YAML and JSON bombs, binary junk,
names too long, NUL bytes), names that become paths or keys, dates, URLs, numbers and
choices. Every run must end without a traceback or a hang, with an exit code the CLI
documents (0, 1 findings, 2 bad input, 3 infrastructure), a message on exit 2, and no
write outside its working folder or to the fleet's own files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantops.cli.main import build_app
from tests.hostile.harness import check, run_cli, snapshot

BASE = Path(__file__).resolve().parent.parent / "spec" / "base"

# Commands that serve until stopped when their input is good: their bad-input cases are
# in test_cli_cases.py and tests/server; a sweep would start real servers.
LONG_RUNNING = {("serve",), ("metrics", "serve"), ("daemon", "start")}

PATHS = [
    "fleet",
    "fleet/fleet.yaml",
    "fleet/plants",
    "missing",
    "missing/deeper/x",
    "file",
    "file/under",
    "empty",
    "fifo",
    "loop",
    "dangling",
    "link-to-outside",
    "../outside/x",
    "fleet/../../outside/y",
    "/dev/null",
    "/proc/self/status",
    "bomb.yaml",
    "deep.json",
    "deep.yaml",
    "junk.bin",
    "x" * 300,
    "nul\x00byte",
    "-",
    "",
]
NAMES = [
    "alpha",
    "prod",
    "nope",
    "",
    " ",
    "../../x",
    "prod/../../x",
    "..",
    "a/b",
    "UPPER",
    "x" * 300,
    "ünïcödé",
    "-x",
    "nul\x00byte",
    "$(id)",
]
TIMES = ["2026-12-04", "2027-02-30", "not-a-date", "9999-12-31T23:59:59Z", "", "1970-01-01"]
URLS = [
    "mongodb://x",
    "mysql://u:p@h/d",
    "sqlite:///../outside/x.db",
    "postgresql://nobody@127.0.0.1:1/x",
    "http://127.0.0.1:1",
    "http://[::1",
    "file:///etc/passwd",
    "",
    "::::",
]
NUMBERS = ["-1", "0", "1", "abc", "1e400", "99999999999999999999", ""]

PATH_WORDS = (
    "fleet",
    "out",
    "output",
    "file",
    "paths",
    "lock",
    "config",
    "filestore",
    "store",
    "key",
    "schemas",
    "reports",
    "probe_results",
    "target",
    "directory",
    "old",
    "new",
    "addons",
    "packages",
    "policy",
    "vex",
    "rendered",
    "license_matrix",
    "binaries",
    "locks",
    "vulns",
    "rehearsal",
    "smoke",
    "ca_file",
    "probe_password_file",
    "checksums",
    "install",
    "vulns_policy",
    "to",
    "alerting",
)
TIME_WORDS = ("today", "at", "now", "target_time", "expires")
URL_WORDS = ("state_db", "db", "db_url", "server", "url", "prometheus")
NUMBER_WORDS = (
    "jobs",
    "port",
    "timeout",
    "retries",
    "backoff",
    "concurrency",
    "max_uncompressed_gib",
    "max_members",
    "cert_min_days",
    "policy_refresh",
)


@dataclass(frozen=True)
class Param:
    opt: str | None  # None: a positional argument
    name: str
    required: bool
    flag: bool
    choices: tuple[str, ...]
    multiple: bool


def _choices(param: object) -> tuple[str, ...]:
    found = getattr(getattr(param, "type", None), "choices", None)
    if found is None:
        found = getattr(getattr(param, "type_descriptor", None), "choices", None)
    return tuple(str(getattr(c, "value", c)) for c in found or ())


def _commands() -> list[tuple[tuple[str, ...], tuple[Param, ...]]]:
    root = typer.main.get_command(build_app())
    found: list[tuple[tuple[str, ...], tuple[Param, ...]]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is not None:
            for name, sub in sorted(subs.items()):
                walk(sub, (*path, name))
            return
        params = []
        for p in getattr(cmd, "params", []):
            if p.name == "help":
                continue
            opts = [o for o in p.opts if o.startswith("--")]
            params.append(
                Param(
                    opt=opts[0] if opts else None,
                    name=p.name or "",
                    required=bool(p.required),
                    flag=bool(getattr(p, "is_flag", False)),
                    choices=_choices(p),
                    multiple=bool(getattr(p, "multiple", False)) or getattr(p, "nargs", 1) == -1,
                )
            )
        found.append((path, tuple(params)))

    walk(root, ())
    return [c for c in found if c[0] not in LONG_RUNNING]


COMMANDS = _commands()


def _pool(p: Param) -> list[str]:
    if p.choices:
        return [*p.choices, "bogus", ""]
    name = p.name
    if name in TIME_WORDS:
        return TIMES
    if name in URL_WORDS:
        return URLS + (PATHS[:8] if name in ("db", "state_db") else [])
    if name in NUMBER_WORDS:
        return NUMBERS
    if name in PATH_WORDS or any(w in name for w in ("path", "file", "dir")):
        return PATHS
    return NAMES


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    path, params = draw(st.sampled_from(COMMANDS))
    argv = list(path)
    for p in params:
        if p.flag:
            if draw(st.booleans()):
                argv.append(p.opt or "")
            continue
        if not p.required and not draw(st.booleans()):
            continue
        count = draw(st.integers(1, 2)) if p.multiple else 1
        for _ in range(count):
            value = draw(st.sampled_from(_pool(p)))
            argv += [p.opt, value] if p.opt else [value]
    return [a for a in argv if a != ""] if draw(st.booleans()) else argv


def _layout(root: Path) -> Path:
    work = root / "work"
    work.mkdir()
    outside = root / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not plantops'\n")
    shutil.copytree(BASE, work / "fleet")
    (work / "file").write_text("a regular file\n")
    (work / "empty").mkdir()
    os.mkfifo(work / "fifo")
    (work / "loop").symlink_to(work / "loop")
    (work / "dangling").symlink_to(work / "nowhere")
    (work / "link-to-outside").symlink_to(outside)
    laughs = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        laughs.append(f"{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    (work / "bomb.yaml").write_text("\n".join(laughs) + "\n")
    (work / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (work / "deep.yaml").write_text("- " * 5_000 + "x\n")
    (work / "junk.bin").write_bytes(bytes(range(256)) * 64)
    for d in ("home", "cache", "state", "tmp"):
        (root / d).mkdir()
    return work


def _env(root: Path) -> dict[str, str]:
    return {
        "HOME": str(root / "home"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_STATE_HOME": str(root / "state"),
        "TMPDIR": str(root / "tmp"),
        "PGCONNECT_TIMEOUT": "2",
    }


def test_every_command_is_swept() -> None:
    """The sweep sees the whole app (less the servers), so no command escapes it."""
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {"plan", "backup run", "backup restore", "promote", "token create"} <= names
    assert len(COMMANDS) >= 40
    unpooled = [
        (" ".join(path), p.name)
        for path, params in COMMANDS
        for p in params
        if not p.flag and not p.choices and _pool(p) is NAMES and p.name not in NAME_OK
    ]
    assert not unpooled, f"give these options a pool: {unpooled}"


# Options that take a name or a free text (the NAMES pool is the right one for them).
NAME_OK = {
    "plant",
    "env",
    "tier",
    "stanza",
    "role",
    "as_",
    "as_actor",
    "actor",
    "stage",
    "wave",
    "to_db",
    "backup_id",
    "token_id",
    "series",
    "edition",
    "min_development_status",
    "what_if",
    "kubernetes_version",
    "exception_namespace",
    "run_as",
    "owner",
    "image",
    "default_branch",
    "break_glass",
    "approver",
    "reason",
    "expect_version",
    "probe_login",
    "probe_password_env",
    "model",
    "check",
    "window",
    "slo",
    "host",
    "type",
    "archive_format",
    "provider",
    "by",
    "format",
    "min_status",
    "user",
    "author",
}


_OUTSIDE_TARGETS = {
    "../outside/x": "x",
    "fleet/../../outside/y": "y",
    "sqlite:///../outside/x.db": "x.db",
    "link-to-outside": "",
}


def _named_outside(argv: list[str]) -> set[str]:
    """The names under ``outside/`` the command line points at itself."""
    return {_OUTSIDE_TARGETS[a] for a in argv if a in _OUTSIDE_TARGETS}


@settings(
    max_examples=int(os.environ.get("PLANTOPS_SWEEP_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(argv=command_lines())
def test_generated_command_line_fails_safe(argv: list[str]) -> None:
    root = Path(tempfile.mkdtemp(prefix="plantops-sweep-"))
    try:
        work = _layout(root)
        fleet_before = snapshot(work / "fleet")
        outside_before = snapshot(root / "outside")
        outcome = run_cli(argv, work, _env(root))
        check(outcome, allowed={0, 1, 2, 3})
        if outcome.exit_code == 3:
            assert outcome.output.strip(), f"exit 3 without a word: {argv}"
        assert "sqlalche.me" not in outcome.output, f"library wrapper text: {argv}"
        after_outside = snapshot(root / "outside")
        # A path the user names outright (``-o ../outside/x``) is theirs to choose, as for
        # cp; anything else outside, and any change to what was already there, is a leak.
        named = _named_outside(argv)
        leaked = sorted(
            k
            for k in after_outside
            if k not in outside_before and not any(k.startswith(n) for n in named)
        )
        assert not leaked, f"wrote outside {leaked}: {argv}"
        assert all(after_outside.get(k) == v for k, v in outside_before.items()), argv
        after = snapshot(work / "fleet")
        changed = sorted(
            k for k in fleet_before if after.get(k) != fleet_before[k] and ".plantops" not in k
        ) + sorted(  # a new file where the fleet reads its input is a change of the fleet
            k for k in after if k not in fleet_before and k.startswith(("plants/", "policies/"))
        )
        assert not changed, f"changed the fleet's own files {changed}: {argv}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in COMMANDS])
def test_help_of_every_command(path: str) -> None:
    """``--help`` of every command exits 0 with its usage: the sweep's options exist."""
    outcome = run_cli([*path.split(), "--help"], Path.cwd())
    check(outcome, allowed={0}, expect=["Usage"])

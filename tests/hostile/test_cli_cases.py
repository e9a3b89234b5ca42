"""Hostile command lines: paths that are files, folders, pipes, links or missing; bad
options. Each is a correct result or an exit 2 that names the path or option at fault,
and nothing is written outside the place the command was given."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.hostile.harness import changed_outside, check, run_cli, snapshot

BASE = Path(__file__).resolve().parent.parent / "spec" / "base"


def _layout(tmp: Path) -> None:
    shutil.copytree(BASE, tmp / "fleet")
    (tmp / "file").write_text("not a folder\n")
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "mine.txt").write_text("a user's file\n")
    os.mkfifo(tmp / "fifo")
    (tmp / "empty").mkdir()
    (tmp / "link-to-file").symlink_to(tmp / "file")
    (tmp / "loop").symlink_to(tmp / "loop")
    (tmp / "deep-flow.yaml").write_text("[" * 2_000 + "]" * 2_000 + "\n")


# (args, allowed exit codes, text the output must hold, places the command may change)
CASES: dict[str, tuple[list[str], set[int], str, list[str]]] = {
    "plan-out-file": (["plan", "fleet", "--out", "file"], {2}, "file", []),
    "plan-out-under-file": (["plan", "fleet", "--out", "file/sub"], {2}, "file", []),
    "plan-out-foreign": (["plan", "fleet", "--out", "foreign"], {2}, "not written by plantops", []),
    "plan-out-fifo": (["plan", "fleet", "--out", "fifo"], {2}, "fifo", []),
    "plan-out-link-to-file": (["plan", "fleet", "--out", "link-to-file"], {2}, "link-to-file", []),
    "plan-out-loop": (["plan", "fleet", "--out", "loop/x"], {2, 3}, "loop", []),
    "plan-out-dev-null": (["plan", "fleet", "--out", "/dev/null"], {2}, "/dev/null", []),
    "plan-out-proc": (["plan", "fleet", "--out", "/proc/self/x"], {2, 3}, "/proc/self", []),
    "plan-ok-empty-dir": (["plan", "fleet", "--out", "empty"], {0}, "written", ["empty"]),
    "plan-ok-new-dir": (["plan", "fleet", "--out", "new/out"], {0}, "written", ["new"]),
    "plan-dry-run": (["plan", "fleet", "--out", "new", "--dry-run"], {0}, "would be written", []),
    "plan-unknown-plant": (["plan", "fleet", "--out", "new", "--plant", "nope"], {2}, "nope", []),
    "plan-bad-format": (["plan", "fleet", "--out", "new", "--format", "xml"], {2}, "xml", []),
    "plan-bad-today": (
        ["plan", "fleet", "--out", "new", "--today", "2027-02-30"],
        {2},
        "--today",
        [],
    ),
    # every --today: a date that does not exist is a usage error, not a traceback
    "policy-check-bad-today": (
        ["policy", "check", "fleet", "--today", "2027-02-30"],
        {2},
        "--today",
        [],
    ),
    "policy-export-bad-today": (
        ["policy", "export", "fleet", "--out", "new", "--today", "2027-02-30"],
        {2},
        "--today",
        [],
    ),
    "vulns-bad-today": (["vulns", "check", "file", "--today", "2027-02-30"], {2}, "--today", []),
    # a name no file system takes is bad input (exit 2), not an infrastructure failure
    "ledger-export-name-too-long": (
        ["ledger", "export", "--db", "sqlite:///s.db", "-o", "x" * 300],
        {2},
        "too long",
        ["s.db", ".plantops"],
    ),
    "ledger-export-over-fleet-file": (
        ["ledger", "export", "--db", "sqlite:///s.db", "-o", "fleet/fleet.yaml"],
        {2},
        "source file of the fleet",
        ["s.db", ".plantops"],
    ),
    "policy-check-over-plant-file": (
        ["policy", "check", "fleet", "-o", "fleet/plants/alpha.yaml"],
        {2},
        "never writes over",
        [],
    ),
    # a state database that cannot be reached: the driver's words, exit 3, no wrapper text
    "backup-list-db-down": (
        ["backup", "list", "--state-db", "postgresql://nobody@127.0.0.1:1/x"],
        {3},
        "Connection refused",
        [],
    ),
    "ledger-db-url-unparsable": (["ledger", "verify", "--db", "http://[::1"], {2}, "not valid", []),
    # a loop of symbolic links where a file is expected, for every reader (Path.resolve
    # raises RuntimeError on Python 3.11)
    "release-diff-loop": (["release", "diff", "loop", "file"], {2}, "loop", []),
    "release-verify-loop": (["release", "verify", "loop"], {2}, "loop", []),
    "release-register-loop": (
        ["release", "register", "loop", "--db", "sqlite:///s.db", "--as", "ann"],
        {2},
        "loop",
        ["s.db", ".plantops"],
    ),
    "init-inside-a-fleet": (["init", "fleet/plants", "--force"], {2}, "inside the fleet", []),
    "init-name-too-long": (["init", "y" * 300], {2}, "too long", []),
    # outputs never go into a fleet's source folders, where they would be read back
    "plan-out-in-plants": (
        ["plan", "fleet", "--out", "fleet/plants/new"],
        {2},
        "source folders",
        [],
    ),
    "policy-export-in-plants": (
        ["policy", "export", "fleet", "--out", "fleet/plants"],
        {2},
        "source folders",
        [],
    ),
    "vulns-policy-too-deep": (
        ["vulns", "check", "file", "--policy", "deep-flow.yaml"],
        {2},
        "deep-flow.yaml:1:",
        [],
    ),
    "plan-fleet-missing": (["plan", "nope", "--out", "new"], {2}, "nope", []),
    "plan-fleet-file": (["plan", "file", "--out", "new"], {2}, "file", []),
    "plan-fleet-empty": (["plan", "empty", "--out", "new"], {2}, "fleet.yaml", []),
    "plan-fleet-fifo": (["plan", "fifo", "--out", "new"], {2}, "fifo", []),
    "plan-no-out": (["plan", "fleet"], {2}, "--out", []),
    "validate-missing": (["validate", "nope"], {2}, "nope", []),
    "validate-file": (["validate", "file"], {2}, "file", []),
    "validate-fifo": (["validate", "fifo"], {2}, "fifo", []),
    "validate-loop": (["validate", "loop"], {2}, "loop", []),
    "validate-expired-flag": (["validate", "fleet", "--allow-expired-overrides"], {0}, "valid", []),
    "classify-unknown-plant": (["classify", "fleet", "--plant", "nope"], {2}, "nope", []),
    "classify-json": (["classify", "fleet", "--format", "json"], {0}, "alpha", []),
    "cost-bad-what-if": (["cost", "fleet", "--what-if", "nonsense"], {2}, "what-if", []),
    "cost-what-if-no-plant": (["cost", "fleet", "--what-if", "tier=critical"], {2}, "--plant", []),
    "cost-bad-by": (["cost", "fleet", "--by", "moon"], {2}, "moon", []),
    "schema-into-missing": (["schema", "-o", "missing/s.json"], {2}, "missing", []),
    "schema-onto-dir": (["schema", "-o", "empty"], {2}, "empty", []),
    "schema-under-file": (["schema", "-o", "file/s.json"], {2}, "file", []),
    "schema-onto-fifo": (["schema", "-o", "fifo"], {2}, "fifo", []),
    "schema-ok": (["schema", "-o", "s.json"], {0}, "wrote", ["s.json"]),
    "init-onto-file": (["init", "file"], {2}, "file", []),
    "init-under-file": (["init", "file/x"], {2}, "file", []),
    "init-nonempty": (["init", "foreign"], {2}, "--force", []),
    "init-force-keeps": (["init", "foreign", "--force"], {0}, "initialised", ["foreign"]),
    "init-fifo": (["init", "fifo"], {2}, "fifo", []),
    "init-ok": (["init", "new"], {0}, "initialised", ["new"]),
    "vm-missing": (["validate-manifests", "nope.yaml"], {2}, "nope.yaml", []),
    "vm-bad-schemas": (["validate-manifests", "fleet", "--schemas", "nope"], {2}, "--schemas", []),
    "vm-bad-k8s": (
        ["validate-manifests", "fleet", "--kubernetes-version", "../../x"],
        {2},
        "x",
        [],
    ),
    "vm-fifo": (["validate-manifests", "fifo"], {2}, "fifo", []),
    "no-args": ([], {0, 2}, "Usage", []),
    "unknown-command": (["frobnicate"], {2}, "frobnicate", []),
    # every command that writes a directory or file: a file, a file's child, a pipe
    "observe-out-file": (["observe", "render", "fleet", "--out", "file"], {2}, "file", []),
    "observe-out-under-file": (
        ["observe", "render", "fleet", "--out", "file/sub"],
        {2},
        "file",
        [],
    ),
    "observe-out-fifo": (["observe", "render", "fleet", "--out", "fifo"], {2}, "fifo", []),
    "observe-out-dev-null": (
        ["observe", "render", "fleet", "--out", "/dev/null"],
        {2},
        "/dev/null",
        [],
    ),
    "observe-ok-new": (["observe", "render", "fleet", "--out", "new/obs"], {0}, "written", ["new"]),
    "policy-export-out-file": (["policy", "export", "fleet", "--out", "file"], {2}, "file", []),
    "policy-export-out-fifo": (["policy", "export", "fleet", "--out", "fifo"], {2}, "fifo", []),
    "check-output-under-file": (
        ["check", "fleet", "-o", "file/r.json", "-f", "json"],
        {2},
        "file",
        [],
    ),
    "check-output-onto-dir": (["check", "fleet", "-o", "empty", "-f", "json"], {2}, "empty", []),
    "ci-out-onto-dir": (
        ["ci", "generate", "--fleet", "fleet", "--provider", "github", "--out", "empty"],
        {2},
        "empty",
        [],
    ),
    "ci-out-under-file": (
        ["ci", "generate", "--fleet", "fleet", "--provider", "github", "--out", "file/ci.yml"],
        {2},
        "file",
        [],
    ),
    "ci-bad-provider": (
        ["ci", "generate", "--fleet", "fleet", "--provider", "jenkins", "--out", "ci.yml"],
        {2},
        "jenkins",
        [],
    ),
    "waves-fleet-fifo": (["release", "waves", "--fleet", "fifo"], {2}, "fifo", []),
    "ledger-export-under-file": (
        ["ledger", "export", "--db", "sqlite:///s.db", "-o", "file/x.jsonl"],
        {2},
        "file",
        ["s.db", ".plantops"],
    ),
}


@pytest.mark.parametrize("args,codes,expect,places", CASES.values(), ids=list(CASES))
def test_command_line(
    tmp_path: Path, args: list[str], codes: set[int], expect: str, places: list[str]
) -> None:
    _layout(tmp_path)
    # its own temporary directory, inside the watched tree: a scratch file left behind
    # there is a write outside the command's place (the shared /tmp has other writers)
    (tmp_path / "tmpdir").mkdir()
    before = snapshot(tmp_path)
    outcome = run_cli(
        args, cwd=tmp_path, env={"PLANTOPS_TREE_CACHE": "", "TMPDIR": str(tmp_path / "tmpdir")}
    )
    check(outcome, allowed=codes, expect=[expect])
    assert "Errno" not in outcome.output or outcome.exit_code != 2, outcome.output
    assert "sqlalche.me" not in outcome.output, outcome.output
    assert changed_outside(before, snapshot(tmp_path), places) == []
    if "foreign" in places:
        assert (tmp_path / "foreign" / "mine.txt").read_text() == "a user's file\n"

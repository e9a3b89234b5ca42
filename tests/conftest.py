"""Suite-wide options and helpers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme-manufacturing"
SHARED = ROOT.parent / "shared"
# A fixed "today" keeps expiry checks and golden output independent of the calendar.
TODAY = dt.date(2026, 11, 22)


@pytest.fixture(autouse=True, scope="session")
def _isolated_validator_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Generated validator code goes to a per-session directory, not the user's cache."""
    # a developer's own plan server (plantops daemon) never serves the suite's runs
    os.environ["PLANTOPS_DAEMON_DIR"] = str(tmp_path_factory.mktemp("daemon"))
    os.environ["PLANTOPS_VALIDATOR_CACHE"] = str(tmp_path_factory.mktemp("validators"))
    os.environ["PLANTOPS_SPEC_CACHE"] = str(tmp_path_factory.mktemp("specs"))
    os.environ["PLANTOPS_TREE_CACHE"] = str(tmp_path_factory.mktemp("trees"))
    os.environ["PLANTOPS_PLAN_CACHE"] = str(tmp_path_factory.mktemp("plans"))
    os.environ["PLANTOPS_RENDER_CACHE"] = str(tmp_path_factory.mktemp("render"))
    # The crash-leftover ledger of backup/verify/restore (backup.scratch), not the user's.
    os.environ["PLANTOPS_SCRATCH_LEDGER"] = str(tmp_path_factory.mktemp("scratch-ledger"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files from the current output instead of comparing.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def read_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by POSIX relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def build_file_tree(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``{relative path: content}`` under ``root``."""
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return root


# The renderer's code fingerprint (services.renderer_fingerprint) is in every hash that
# state.json records, so it changes with any edit to spec/, model/, plan/ or render/. The
# goldens hold this placeholder instead: they pin the tree's shape, not the source bytes
# (tests/plan checks that a new fingerprint does re-render).
FINGERPRINT_PLACEHOLDER = b"<renderer-fingerprint>"


def _golden_bytes(data: bytes) -> bytes:
    from plantops.services import renderer_fingerprint

    return data.replace(renderer_fingerprint().encode(), FINGERPRINT_PLACEHOLDER)


def compare_or_update_tree(actual: Path, expected: Path, update: bool) -> None:
    """Golden comparison of two trees: exact bytes (the renderer fingerprint aside), same
    file set."""
    got = {rel: _golden_bytes(data) for rel, data in read_tree(actual).items()}
    if update:
        shutil.rmtree(expected, ignore_errors=True)
        for rel, data in got.items():
            target = expected / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return
    assert expected.is_dir(), f"no golden tree at {expected}; run pytest --update-golden"
    want = read_tree(expected)
    assert sorted(got) == sorted(want), "file sets differ"
    for rel in sorted(want):
        assert got[rel].decode() == want[rel].decode(), f"{rel} differs from golden"

"""requirements.lock pins every dependency with hashes, and `make venv` installs from it.

The lock must never drift from pyproject.toml: every runtime and dev requirement (and the
build backend) is in it, pinned with ``==`` to a version the range allows, with at least
one sha256 hash, and the Makefile installs it with ``--require-hashes``. A fresh-machine
``make venv`` is what proves the hashes themselves (docs/security.md says how it was run).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _locked() -> dict[str, tuple[Version, list[str]]]:
    out: dict[str, tuple[Version, list[str]]] = {}
    text = (ROOT / "requirements.lock").read_text()
    # one entry: "name==version \" followed by "--hash=sha256:..." continuation lines
    for m in re.finditer(
        r"^([A-Za-z0-9._\[\],-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.M
    ):
        name = canonicalize_name(m.group(1).split("[")[0])
        out[name] = (Version(m.group(2)), re.findall(r"sha256:([0-9a-f]{64})", m.group(3)))
    return out


def _requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [*data["project"]["dependencies"], *data["project"]["optional-dependencies"]["dev"]]
    reqs += data["build-system"]["requires"]
    return [Requirement(r) for r in reqs]


def test_every_requirement_is_locked_with_hashes() -> None:
    locked = _locked()
    assert len(locked) > 50
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is not in requirements.lock: regenerate it (header)"
        version, hashes = locked[name]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} vs {req}"
        assert hashes, name
    for name, (version, hashes) in locked.items():
        assert hashes and all(len(h) == 64 for h in hashes), f"{name}=={version} has no hash"


def test_make_venv_installs_only_from_the_lock_with_hashes() -> None:
    rule = (ROOT / "Makefile").read_text().split("$(STAMP): ", 1)[1].split("\n\n", 1)[0]
    assert "requirements.lock" in rule.splitlines()[0]  # a changed lock rebuilds the venv
    pip_lines = [line.strip() for line in rule.splitlines() if "pip install" in line]
    assert pip_lines[0].endswith("--require-hashes --only-binary :all: -r requirements.lock")
    # the project itself: no resolution, no build isolation (which would fetch unhashed
    # build requirements)
    assert all("--no-deps --no-build-isolation" in line for line in pip_lines[1:])
    assert len(pip_lines) == 2

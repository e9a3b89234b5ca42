from __future__ import annotations

import shutil

import pytest

from tests.conftest import EXAMPLE
from tests.render.conftest import Rendered, render_fleet


@pytest.fixture(scope="session")
def example() -> Rendered:
    return render_fleet(EXAMPLE)


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make system-deps` installs the Debian package {package}")
    return path

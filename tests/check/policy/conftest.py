"""The example fleet rendered once per session, and its policy context."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import EXAMPLE, TODAY

from plantops import services
from plantops.check.policy import PolicyContext, load_policy_config, read_manifest_tree
from plantops.check.policy.model import Document


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Document], PolicyContext]:
    out: Path = tmp_path_factory.mktemp("policy") / "tree"
    services.plan_fleet(EXAMPLE, out, today=TODAY)
    docs, _, units, _, _ = read_manifest_tree(out)
    fleet = services.open_fleet(EXAMPLE, today=TODAY).fleet
    ctx = services.policy_context(fleet, load_policy_config(EXAMPLE).settings, units)
    return docs, ctx

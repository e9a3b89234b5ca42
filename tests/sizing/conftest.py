"""The rendered example fleet (tests/render) and the real PostgreSQL fixtures, for sizing."""

from __future__ import annotations

from tests.fixtures.postgres import PgCluster, running_cluster
from tests.render.conftest import Rendered, example

__all__ = ["PgCluster", "Rendered", "example", "running_cluster"]

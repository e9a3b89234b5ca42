"""`plantops cost`: every --by in every --format, the what-if, bad input is exit 2."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from plantops import services
from plantops.cli.main import app
from tests.conftest import EXAMPLE, TODAY

runner = CliRunner()
T = ["--today", TODAY.isoformat()]
# every plant of the example is costed, whatever its pattern
PLANTS = {p.code for p in services.open_fleet(EXAMPLE, today=TODAY).fleet.plants}
KEYS = {
    "plant": PLANTS,
    "env": {"dev", "test", "staging", "prod"},
    "service": {
        "odoo-web",
        "odoo-cron",
        "postgresql",
        "redis",
        "backup",
        "cluster",
        "ingress",
        "monitoring",
    },
}


@pytest.mark.parametrize("by", ["plant", "env", "service"])
def test_json_rows_sum_to_the_total(by: str) -> None:
    r = runner.invoke(app, ["cost", str(EXAMPLE), "--by", by, "--format", "json", *T])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {row[by] for row in doc["rows"]} == KEYS[by]
    total = sum(row["total_month"] for row in doc["rows"])
    assert abs(total - doc["total_month"]) <= 0.01 * len(doc["rows"])
    platform = sum(row["platform_month"] for row in doc["rows"])
    assert abs(platform - doc["platform_month"]) <= 0.01 * len(doc["rows"])
    assert any(p["plant"] == "lyon-meddev" and p["min_nodes"] == 6 for p in doc["node_pools"])


@pytest.mark.parametrize("by", ["plant", "env", "service"])
def test_csv_has_a_header_and_one_row_per_key(by: str) -> None:
    r = runner.invoke(app, ["cost", str(EXAMPLE), "--by", by, "--format", "csv", *T])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {row[by] for row in rows} == KEYS[by]
    assert all(row["currency"] == "EUR" and float(row["total_month"]) >= 0 for row in rows)


@pytest.mark.parametrize("by", ["plant", "env", "service"])
def test_text_table(by: str) -> None:
    r = runner.invoke(app, ["cost", str(EXAMPLE), "--by", by, *T])
    assert r.exit_code == 0, r.output
    assert f"Monthly cost by {by}" in r.stdout and "fleet total" in r.stdout
    assert all(key in r.stdout for key in KEYS[by])
    assert "eu-lyon-meddev/db+odoo (lyon-meddev): 6 nodes" in r.stdout


def test_what_if_moves_a_plant() -> None:
    # a plant in the EU tenant group, moved out of it
    (c,) = services.classify(EXAMPLE, today=TODAY, only=["gdansk-packaging"])
    assert c.pattern == "shared-multitenant"
    args = ["cost", str(EXAMPLE), "--what-if", "pattern=dedicated-namespace"]
    r = runner.invoke(app, [*args, "--plant", "gdansk-packaging", "--format", "json", *T])
    assert r.exit_code == 0, r.output
    w = json.loads(r.stdout)["what_if"]
    assert w["change"] == "pattern=dedicated-namespace"
    assert w["plant_after_month"] > w["plant_before_month"]
    r = runner.invoke(app, [*args, "--plant", "gdansk-packaging", *T])
    assert "what if gdansk-packaging pattern=dedicated-namespace" in r.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--what-if", "pattern=dedicated-namespace"],  # no --plant
        ["--what-if", "colour=blue", "--plant", "rotterdam-dc"],
        ["--what-if", "pattern=dedicated-namespace", "--plant", "nowhere"],
        ["--what-if", "pattern=dedicated-cluster", "--plant", "rotterdam-dc"],  # no cluster
    ],
)
def test_bad_what_if_is_exit_2(extra: list[str]) -> None:
    r = runner.invoke(app, ["cost", str(EXAMPLE), *extra, *T])
    assert r.exit_code == 2, r.output

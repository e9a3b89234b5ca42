"""The real OCA manifests (16.0, 17.0, 18.0 of manufacture, maintenance and
stock-logistics-warehouse), with cross-repository dependencies deliberately absent."""

from __future__ import annotations

import time

from plantops.addons import CheckOptions, check_addons_paths
from tests.realworld import realworld


def test_16_manufacture_alone_misses_stock_logistics_warehouse() -> None:
    manufacture = realworld("oca-manifests", "16.0", "manufacture")
    report = check_addons_paths([manufacture], CheckOptions(series="16.0"))
    missing = {(f.addon, f.chain[-1]) for f in report.findings if f.code == "missing-dependency"}
    # mrp_multi_level_estimate needs stock_demand_estimate, from stock-logistics-warehouse.
    assert ("mrp_multi_level_estimate", "stock_demand_estimate") in missing
    deep = next(f for f in report.findings if f.chain[-1] == "stock_warehouse_calendar")
    assert deep.chain[0] == "mrp_multi_level_estimate" and len(deep.chain) == 4
    assert deep.file.endswith("mrp_warehouse_calendar/__manifest__.py") and deep.line > 1
    # Adding the repository resolves exactly those.
    both = check_addons_paths(
        [manufacture, realworld("oca-manifests", "16.0", "stock-logistics-warehouse")],
        CheckOptions(series="16.0"),
    )
    ours = {a.name for a in report.addons}
    still = {
        (f.addon, f.chain[-1])
        for f in both.findings
        if f.code == "missing-dependency" and f.addon in ours
    }
    assert ("mrp_multi_level_estimate", "stock_demand_estimate") not in still
    assert still < missing


def test_every_series_parses_and_matches_its_series() -> None:
    for series in ("16.0", "17.0", "18.0"):
        start = time.monotonic()
        report = check_addons_paths(
            [realworld("oca-manifests", series)], CheckOptions(series=series), checksums=True
        )
        assert time.monotonic() - start < 10
        assert report.addons, series
        assert not [f for f in report.findings if f.code.startswith("version")], series
        assert {f.code for f in report.findings} <= {"missing-dependency"}
        # The wrong series: every addon's version is refused.
        wrong = check_addons_paths(
            [realworld("oca-manifests", series)], CheckOptions(series="15.0")
        )
        mismatched = {f.addon for f in wrong.findings if f.code == "version-series-mismatch"}
        assert mismatched == {a.name for a in report.addons if a.parsed.manifest.installable}

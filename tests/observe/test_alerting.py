"""Alertmanager configuration from the example fleet, checked with the real amtool:
`check-config` accepts it, `config routes test` sends each alert where the fleet says,
and the time intervals are the plants' shifts and shutdowns in their own timezones."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from plantops import services
from plantops.errors import UserError
from plantops.model import Fleet
from plantops.observe.alerting import (
    AlertingSettings,
    alertmanager_config,
    freeze_spans,
    load_alerting,
    shift_intervals,
)
from plantops.plan import build_plan
from plantops.spec.models import FreezeWindow, Shift
from tests.conftest import EXAMPLE, TODAY
from tests.observe.conftest import tool

ALERTING = {
    "default_receiver": "platform",
    "receivers": {
        "platform": {"webhook": ["http://127.0.0.1:9095/platform"]},
        "detroit-pager": {"webhook": ["http://127.0.0.1:9095/detroit"]},
        "detroit-tickets": {"email": ["erp-detroit@acme.example"]},
        "eu-chat": {"chat": [{"api_url": "http://127.0.0.1:9095/slack", "channel": "#erp-eu"}]},
    },
    "plants": {"detroit-stamping": {"page": "detroit-pager", "ticket": "detroit-tickets"}},
    "tiers": {"standard": {"page": "eu-chat"}},
}


@pytest.fixture(scope="module")
def fleet_plan() -> tuple[Fleet, Any]:
    res = services.open_fleet(EXAMPLE, today=TODAY)
    return res.fleet, build_plan(res.fleet)


@pytest.fixture
def config_file(tmp_path: Path, fleet_plan: tuple[Fleet, Any]) -> Path:
    fleet, plan = fleet_plan
    settings = AlertingSettings.model_validate(ALERTING)
    cfg = alertmanager_config(fleet, plan.deployments, settings, today=TODAY)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("amtool", "prometheus-alertmanager"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_amtool_check_config_accepts_it(config_file: Path) -> None:
    proc = _amtool("check-config", str(config_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # a page of Detroit's production goes to its pager, a ticket to its tickets
        (["namespace=detroit-stamping-prod", "severity=critical"], "detroit-pager"),
        (["namespace=detroit-stamping-prod", "severity=warning"], "detroit-tickets"),
        # a standard-tier plant with no own routing falls back to its tier's receiver
        (["namespace=porto-plastics-prod", "severity=critical"], "eu-chat"),
        # a shared deployment's alert reaches every plant it serves ...
        (
            ["namespace=shared-eu-subsidiaries-prod", "severity=critical"],
            "eu-chat,eu-chat",
        ),
        # ... but a probe naming one plant only that plant
        (
            [
                "namespace=shared-eu-subsidiaries-prod",
                "plantops_plant=brno-components",
                "severity=critical",
            ],
            "eu-chat",
        ),
        # nothing the fleet knows: the platform
        (["namespace=kube-system", "severity=critical"], "platform"),
    ],
)
def test_routes(config_file: Path, labels: list[str], receivers: str) -> None:
    proc = _amtool(
        "config", "routes", "test", f"--config.file={config_file}",
        f"--verify.receivers={receivers}", *labels,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _intervals(config: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {i["name"]: i["time_intervals"] for i in config["time_intervals"]}


def _route(config: dict[str, Any], plant: str) -> dict[str, Any]:
    return next(
        r for r in config["route"]["routes"] if f'plantops_plant=~"{plant}|"' in r["matchers"]
    )


def test_shutdown_mutes_pages_and_tickets_in_the_plant_timezone(
    fleet_plan: tuple[Fleet, Any],
) -> None:
    fleet, plan = fleet_plan
    cfg = alertmanager_config(fleet, plan.deployments, AlertingSettings(), today=TODAY)
    # detroit-stamping: summer-retooling shutdown 2027-07-01T00:00 .. 2027-07-12T00:00
    assert _intervals(cfg)["detroit-stamping-shutdown"] == [
        {
            "years": ["2027"],
            "months": ["7"],
            "days_of_month": ["1:11"],
            "location": "America/Detroit",
        }
    ]
    page, ticket = _route(cfg, "detroit-stamping")["routes"]
    assert page["mute_time_intervals"] == ["detroit-stamping-shutdown"]
    assert ticket["mute_time_intervals"] == ["detroit-stamping-shutdown"]
    assert ticket["active_time_intervals"] == ["detroit-stamping-shifts"]
    assert "active_time_intervals" not in page  # pages go out at any hour
    # brno's Christmas shutdown crosses the year: one range per month
    assert _intervals(cfg)["brno-components-shutdown"] == [
        {
            "years": ["2026"],
            "months": ["12"],
            "days_of_month": ["23:31"],
            "location": "Europe/Prague",
        },
        {"years": ["2027"], "months": ["1"], "days_of_month": ["1:1"], "location": "Europe/Prague"},
    ]
    # month-end close mutes nothing: lyon has no shutdown interval at all
    assert "lyon-meddev-shutdown" not in _intervals(cfg)


def test_a_past_shutdown_is_dropped() -> None:
    fw = FreezeWindow(
        name="old", kind="shutdown", start=dt.datetime(2025, 1, 1), end=dt.datetime(2025, 1, 3)
    )
    assert freeze_spans(fw, dt.date(2026, 1, 1)) == []


def test_recurring_shutdown_expands_with_partial_days() -> None:
    fw = FreezeWindow(
        name="weekend-stop", kind="shutdown", rrule="FREQ=WEEKLY;BYDAY=SA", at="18:00",
        duration_hours=36,
    )  # fmt: skip
    spans = freeze_spans(fw, dt.date(2026, 12, 3))
    assert spans[0] == (dt.datetime(2026, 12, 5, 18, 0), dt.datetime(2026, 12, 7, 6, 0))
    assert all(s.weekday() == 5 for s, _ in spans) and len(spans) > 50
    from plantops.observe.alerting import _span

    assert _span(*spans[0]) == [
        {
            "years": ["2026"], "months": ["12"], "days_of_month": ["5:5"],
            "times": [{"start_time": "18:00", "end_time": "24:00"}],
        },
        {"years": ["2026"], "months": ["12"], "days_of_month": ["6:6"]},
        {
            "years": ["2026"], "months": ["12"], "days_of_month": ["7:7"],
            "times": [{"start_time": "00:00", "end_time": "06:00"}],
        },
    ]  # fmt: skip


def test_night_shift_is_split_at_midnight() -> None:
    night = Shift(name="night", start="22:00", end="06:00", days=["mon", "fri"])
    assert shift_intervals([night]) == [
        {"times": [{"start_time": "22:00", "end_time": "24:00"}], "weekdays": ["monday", "friday"]},
        {
            "times": [{"start_time": "00:00", "end_time": "06:00"}],
            "weekdays": ["tuesday", "saturday"],
        },
    ]


def test_alerting_file_naming_an_undefined_receiver_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text(yaml.safe_dump({"plants": {"x": {"page": "nobody"}}}))
    with pytest.raises(UserError, match="nobody"):
        load_alerting(path)
    assert load_alerting(tmp_path / "missing.yaml") == AlertingSettings()


def test_hostile_alerting_files_are_refused_in_seconds(tmp_path: Path) -> None:
    """alerting.yaml is read with the fleet files' bounds: no FIFO read, no YAML bomb."""
    import os
    import time

    from plantops.errors import UserError

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    bomb = tmp_path / "bomb.yaml"
    lines = ['l0: &l0 "lol"'] + [
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)
    ]
    bomb.write_text("\n".join(lines) + "\n")
    for path, expected in ((fifo, "named pipe"), (bomb, "expands to over")):
        started = time.monotonic()
        with pytest.raises(UserError, match=expected):
            load_alerting(path)
        assert time.monotonic() - started < 5

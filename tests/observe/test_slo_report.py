"""``plantops slo report`` from both sources: a real Prometheus whose TSDB holds 30 days
of SLI recordings written as blocks by ``promtool tsdb create-blocks-from openmetrics``,
and probe result files from real ``probe run``s against the stand-in Odoo."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.observe.probe import ProbeCredentials, ProbeSettings, ProbeTarget, run_probes
from plantops.observe.slo import RANGES
from plantops.observe.sloreport import parse_window
from tests.conftest import EXAMPLE
from tests.fixtures.postgres import free_port
from tests.observe.conftest import tool
from tests.observe.odoo_standin import Behaviour, OdooStandIn

runner = CliRunner()
STEP = 300  # seconds between recorded samples
DAYS = 30


def _labels(ns: str, env: str, tier: str, slo: str, objective: str, plant: str = "") -> str:
    pairs = {"namespace": ns, "plantops_environment": env, "plantops_tier": tier,
             "plantops_unit": ns.rsplit("-", 1)[0], "slo": slo, "objective": objective}  # fmt: skip
    if plant:
        pairs["plantops_plant"] = plant
    return ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items()))


# (labels, per-5m error ratio as a function of seconds before the end)
PROFILES = {
    # critical (99.95 %): a trickle for 30 days, then 2 % errors for the last hour: page
    "detroit": (
        _labels("detroit-stamping-prod", "prod", "critical", "availability", "99.95"),
        lambda ago: 0.02 if ago < 3600 else 0.0001,
    ),
    # high (99.9 %): probes fail 0.2 % of the time, all month: the budget is spent twice
    "rotterdam": (
        _labels("rotterdam-dc-prod", "prod", "high", "probe", "99.9", "rotterdam-dc"),
        lambda ago: 0.002,
    ),
    # latency never slow
    "lyon": (_labels("lyon-meddev-prod", "prod", "critical", "latency", "95"), lambda ago: 0.0),
}


def _openmetrics(end: int) -> str:
    """The recordings Prometheus would have made: ratio_rate5m every 5 minutes for 30
    days, and each longer window's ratio (the mean of the 5m ones) over the last hour."""
    n = DAYS * 86400 // STEP
    lines: list[str] = []
    for w in RANGES:
        name = f"plantops:slo_errors:ratio_rate{w}"
        lines.append(f"# TYPE {name} gauge")
        span = int(parse_window(w).total_seconds())
        for labels, ratio in PROFILES.values():
            points = range(n, -1, -1) if w == "5m" else range(11, -1, -1)
            for i in points:
                t = end - i * STEP
                k = max(1, span // STEP)
                value = sum(ratio(i * STEP + j * STEP) for j in range(k)) / k
                lines.append(f"{name}{{{labels}}} {value:.10g} {t}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("prom")
    end = int(time.time()) // STEP * STEP - STEP
    src = tmp / "recorded.om"
    src.write_text(_openmetrics(end))
    data = tmp / "tsdb"
    subprocess.run(
        [tool("promtool", "prometheus"), "tsdb", "create-blocks-from", "openmetrics", "-q",
         str(src), str(data)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    port = free_port()
    cfg = tmp / "prometheus.yml"
    cfg.write_text("global: {scrape_interval: 1m}\nscrape_configs: []\n")
    proc = subprocess.Popen(
        [tool("prometheus", "prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={data}",
         "--storage.tsdb.retention.time=90d", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url, end
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _report(args: list[str]) -> tuple[int, dict[str, Any]]:
    res = runner.invoke(app, ["slo", "report", "--fleet", str(EXAMPLE), "--format", "json", *args])
    assert res.exit_code in (0, 1), res.output
    return res.exit_code, json.loads(res.stdout)


def _row(doc: dict[str, Any], ns: str, slo: str) -> dict[str, Any]:
    (row,) = [r for r in doc["slos"] if r["namespace"] == ns and r["slo"] == slo]
    return row


def _at(end: int) -> str:
    return dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_report_from_a_real_prometheus(prometheus: tuple[str, int]) -> None:
    url, end = prometheus
    code, doc = _report(["--prometheus", url, "--at", _at(end), "--env", "prod"])
    assert code == 1  # a page and an exhausted budget
    assert doc["schema"] == "plantops.io/slo-report/v1" and doc["window"] == "30d"
    det = _row(doc, "detroit-stamping-prod", "availability")
    assert det["objective"] == 99.95 and det["status"] == "page"
    assert det["burn_rates"]["5m"] == pytest.approx(40) and det["burn_rates"][
        "1h"
    ] == pytest.approx(40)
    # 12 of the 8,641 five-minute ratios at 2 %, the rest at 0.01 %
    mean = (12 * 0.02 + 8629 * 0.0001) / 8641
    assert det["sli"] == pytest.approx((1 - mean) * 100, abs=1e-5)
    assert det["budget_remaining"] == pytest.approx(1 - mean / 0.0005, abs=1e-3)
    rot = _row(doc, "rotterdam-dc-prod", "probe")
    assert rot["plant"] == "rotterdam-dc" and rot["status"] == "exhausted"
    assert rot["budget_remaining"] == pytest.approx(-1.0, abs=1e-6)
    assert all(v == pytest.approx(2.0) for v in rot["burn_rates"].values())
    lyon = _row(doc, "lyon-meddev-prod", "latency")
    assert (lyon["status"], lyon["sli"], lyon["budget_remaining"]) == ("ok", 100.0, 1.0)
    # what Prometheus has no recording for is no-data, never ok
    assert _row(doc, "porto-plastics-prod", "availability")["status"] == "no-data"
    assert doc["summary"]["page"] == 1 and doc["summary"]["exhausted"] == 1
    # a one-day window: the burst weighs more
    _code, day = _report(["--prometheus", url, "--at", _at(end), "--window", "1d",
                          "--plant", "detroit-stamping", "--env", "prod", "--slo", "availability"])  # fmt: skip
    (only,) = day["slos"]
    assert only["budget_remaining"] < det["budget_remaining"]
    text = runner.invoke(app, ["slo", "report", "--fleet", str(EXAMPLE), "--prometheus", url,
                               "--at", _at(end), "--plant", "lyon-meddev", "--env", "prod"])  # fmt: skip
    assert "latency" in text.stdout and "100.0 %" in text.stdout


def test_unreachable_prometheus_is_an_infrastructure_error() -> None:
    res = runner.invoke(app, ["slo", "report", "--fleet", str(EXAMPLE),
                              "--prometheus", f"http://127.0.0.1:{free_port()}"])  # fmt: skip
    assert res.exit_code == 3
    assert "--prometheus" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "30 days", "--prometheus", "http://x"], "--window"),
        (["--slo", "uptime", "--prometheus", "http://x"], "--slo uptime"),
        (["--plant", "atlantis", "--prometheus", "http://x"], "--plant atlantis"),
        ([], "--prometheus URL or --probe-results"),
        (["--prometheus", "ftp://x"], "http(s)://"),
    ],
)
def test_bad_input_exits_2(args: list[str], message: str) -> None:
    res = runner.invoke(app, ["slo", "report", "--fleet", str(EXAMPLE), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def _runs(tmp_path: Path, end: dt.datetime) -> list[Path]:
    """Real probe runs of one plant's stand-in: 10 hourly runs, the last 2 with /web/health
    failing, and one run slower than the tier's latency threshold."""
    target = ProbeTarget("detroit-stamping-prod", "", "acme", "17.0", "detroit-stamping", "prod",
                         "critical", ProbeCredentials("probe", "s3cret"))  # fmt: skip
    settings = ProbeSettings(timeout=2, retries=0, checks=("health", "login", "version"))
    paths = []
    for i, behaviour in enumerate(
        [Behaviour()] * 7
        + [Behaviour(delay={"/web/login": 0.9})]  # 900 ms > 800 ms (critical)
        + [Behaviour(status={"/web/health": 500})] * 2
    ):
        with OdooStandIn(behaviour) as odoo:
            run = run_probes([ProbeTarget(**{**target.__dict__, "url": odoo.url})], settings)
        doc = run.as_dict()
        doc["started_at"] = (end - dt.timedelta(hours=9 - i)).isoformat(timespec="seconds")
        path = tmp_path / f"run-{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def test_report_from_probe_result_files(tmp_path: Path) -> None:
    end = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    paths = _runs(tmp_path, end)
    args = [a for p in paths for a in ("--probe-results", str(p))]
    code, doc = _report([*args, "--at", _at(int(end.timestamp())), "--plant", "detroit-stamping",
                         "--env", "prod"])  # fmt: skip
    assert code == 1
    probe = _row(doc, "detroit-stamping-prod", "probe")
    assert probe["events"] == 10
    assert probe["sli"] == pytest.approx(80.0)  # 2 of 10 runs failed
    assert probe["status"] == "exhausted"
    # the last run is at `end`: the 5m window sees only it (failed), 6h the last 6 (2 failed)
    assert probe["burn_rates"]["5m"] == pytest.approx(1 / 0.0005)
    assert probe["burn_rates"]["6h"] == pytest.approx((2 / 6) / 0.0005)
    latency = _row(doc, "detroit-stamping-prod", "latency")
    # login passed in all 10 runs (only health failed), one of them slow
    assert latency["events"] == 10 and latency["sli"] == pytest.approx(90.0)
    assert {r["slo"] for r in doc["slos"]} == {"probe", "latency"}
    # a file that is not a probe run is refused with its name
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"schema": "something/else"}))
    res = runner.invoke(
        app, ["slo", "report", "--fleet", str(EXAMPLE), "--probe-results", str(bad)]
    )
    assert res.exit_code == 2 and "other.json" in res.output

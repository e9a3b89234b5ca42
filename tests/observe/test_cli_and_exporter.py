"""The observability commands end to end: `probe run` against the stand-in Odoo (exit
codes, the JSON the release gate reads), `observe render` on the example fleet checked by
promtool, amtool and blackbox_exporter, and `metrics serve`'s registry scraped by a real
Prometheus."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.observe.exporter import registry_for, release_rows, serve
from plantops.observe.probe import ProbeCredentials, ProbeSettings, ProbeTarget, run_probes
from tests.conftest import EXAMPLE
from tests.fixtures.postgres import free_port
from tests.observe.conftest import tool
from tests.observe.odoo_standin import Behaviour, OdooStandIn
from tests.render.conftest import Rendered

runner = CliRunner()


def test_probe_run_url_passes_and_writes_the_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_PW", "s3cret")
    with OdooStandIn() as odoo:
        res = runner.invoke(
            app,
            ["probe", "run", "--url", odoo.url, "--db", "acme", "--expect-version", "17.0",
             "--probe-login", "probe", "--probe-password-env", "PROBE_PW",
             "--format", "json", "--out", str(tmp_path / "probe.json")],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc == json.loads((tmp_path / "probe.json").read_text())
    assert doc["ok"] is True and doc["summary"]["failed"] == 0
    assert doc["summary"]["skipped"] == 1  # tls on plain http
    assert "s3cret" not in res.stdout


def test_probe_run_exits_1_on_a_failed_check() -> None:
    with OdooStandIn(Behaviour(dbmanager_exposed=True)) as odoo:
        res = runner.invoke(app, ["probe", "run", "--url", odoo.url, "--retries", "0"])
    assert res.exit_code == 1, res.output
    assert "dbmanager" in res.stdout and "fail" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "run"], "either --fleet"),
        (["probe", "run", "--url", "ftp://x"], "expected http"),
        (["probe", "run", "--fleet", str(EXAMPLE), "--plant", "detroit"], "unknown plant"),
        (["probe", "run", "--url", "http://127.0.0.1:1", "--check", "nope"], "known checks"),
        (["probe", "run", "--url", "http://127.0.0.1:1", "--probe-login", "p"], "--probe-password"),
        (
            ["probe", "run", "--url", "http://127.0.0.1:1", "--probe-login", "p",
             "--probe-password-env", "PLANTOPS_TEST_UNSET_VARIABLE"],
            "not set",
        ),
    ],
)  # fmt: skip
def test_probe_run_bad_input_exits_2(args: list[str], message: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_observe_render_output_passes_the_real_tools(tmp_path: Path) -> None:
    out = tmp_path / "observe"
    res = runner.invoke(app, ["observe", "render", str(EXAMPLE), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rules = sorted(str(p) for p in (out / "prometheus" / "rules").glob("*.yml"))
    assert rules
    check = subprocess.run(
        [tool("promtool", "prometheus"), "check", "rules", *rules],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    am = subprocess.run(
        [tool("amtool", "prometheus-alertmanager"), "check-config",
         str(out / "alertmanager" / "alertmanager.yml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert am.returncode == 0, am.stdout + am.stderr
    bb = subprocess.run(
        [tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter"),
         f"--config.file={out / 'blackbox' / 'blackbox.yml'}", "--config.check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bb.returncode == 0, bb.stderr
    again = runner.invoke(app, ["observe", "render", str(EXAMPLE), "--out", str(out)])
    assert "0 file(s) written" in again.stdout  # deterministic


def test_rendered_probes_and_slo_rules_are_valid_crd_objects(
    example: Rendered, tmp_path: Path
) -> None:
    from plantops.check.schema import SchemaValidator, validate_manifest_paths

    res = runner.invoke(app, ["observe", "render", str(EXAMPLE), "--out", str(tmp_path)])
    assert res.exit_code == 0
    paths = sorted((tmp_path / "kubernetes").rglob("observe.yaml"))
    assert paths
    result = validate_manifest_paths(paths, SchemaValidator("1.31"), base=tmp_path)
    assert result.ok, [f.__dict__ for f in result.findings][:3]
    assert result.objects > len(paths)


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=5) as resp:
        data = json.load(resp)
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def test_exporter_is_scraped_by_a_real_prometheus(example: Rendered, tmp_path: Path) -> None:
    with OdooStandIn(Behaviour(status={"/web/health": 500})) as odoo:
        run = run_probes(
            [ProbeTarget("acme-prod", odoo.url, "acme", "17.0", "acme", "prod", "critical",
                         ProbeCredentials("probe", "s3cret"))],
            ProbeSettings(timeout=1, retries=0),
        )  # fmt: skip
    results = tmp_path / "probe.json"
    results.write_text(json.dumps(run.as_dict()))
    registry = registry_for(release_rows(example.deployments), results)
    server, _thread = serve(registry, host="127.0.0.1", port=0)
    exporter_port = server.server_port
    prom_port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: plantops\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
    )
    proc = subprocess.Popen(
        [tool("prometheus", "prometheus"), f"--config.file={cfg}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{prom_port}"
    try:
        deadline = time.monotonic() + 30
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not found:
            time.sleep(0.5)
            try:
                found = _query(url, 'plantops_probe_success{job="plantops"}')
            except OSError:
                continue
        by_check = {r["metric"]["check"]: r["value"][1] for r in found}
        assert by_check["health"] == "0"  # the 500
        assert by_check["login"] == "1" and by_check["business"] == "1"
        assert "tls" not in by_check  # skipped on plain http: not exported
        releases = _query(url, 'plantops_release_info{plant="detroit-stamping",environment="prod"}')
        assert len(releases) == 1 and releases[0]["metric"]["series"] == "17.0"
        assert releases[0]["metric"]["tier"] == "critical"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.shutdown()
        server.server_close()

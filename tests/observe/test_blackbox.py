"""The generated blackbox_exporter modules, run by the real exporter against the
stand-in Odoo: each module passes on a healthy deployment and fails on the break it is
for (wrong release, exposed database manager, no database, a crashing worker)."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from plantops.observe.blackbox import blackbox_modules, render_blackbox_probes, version_module
from tests.fixtures.postgres import free_port
from tests.observe.conftest import tool
from tests.observe.odoo_standin import Behaviour, OdooStandIn
from tests.render.conftest import Rendered


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cfg = tmp_path_factory.mktemp("bb") / "blackbox.yml"
    cfg.write_text(yaml.safe_dump(blackbox_modules(["17.0", "18.0"], timeout="2s")))
    check = subprocess.run(
        [tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter"),
         f"--config.file={cfg}", "--config.check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    port = free_port()
    proc = subprocess.Popen(
        [tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter"),
         f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/-/healthy", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _probe(exporter: str, module: str, target: str) -> bool:
    query = urllib.parse.urlencode({"module": module, "target": target})
    with urllib.request.urlopen(f"{exporter}/probe?{query}", timeout=10) as resp:
        body = resp.read().decode()
    (line,) = [ln for ln in body.splitlines() if ln.startswith("probe_success ")]
    return line.split()[1] == "1"


MODULES = {
    "odoo_health": "/web/health",
    "odoo_login": "/web/login",
    version_module("17.0"): "/web/webclient/version_info",
    "odoo_dbmanager_blocked": "/web/database/manager",
}


def test_every_module_passes_on_a_healthy_odoo(exporter: str) -> None:
    with OdooStandIn() as odoo:
        for module, path in MODULES.items():
            assert _probe(exporter, module, odoo.url + path), module


@pytest.mark.parametrize(
    ("behaviour", "module"),
    [
        (Behaviour(status={"/web/health": 500}), "odoo_health"),
        (Behaviour(bound_db=False), "odoo_login"),
        (Behaviour(version={**Behaviour().version, "server_serie": "18.0"}), "odoo_version_17_0"),
        (Behaviour(dbmanager_exposed=True), "odoo_dbmanager_blocked"),
    ],
)
def test_each_module_fails_on_its_break(exporter: str, behaviour: Behaviour, module: str) -> None:
    with OdooStandIn(behaviour) as odoo:
        assert not _probe(exporter, module, odoo.url + MODULES[module])


def test_the_18_module_rejects_a_17_server(exporter: str) -> None:
    with OdooStandIn() as odoo:
        assert not _probe(
            exporter, version_module("18.0"), odoo.url + "/web/webclient/version_info"
        )


def test_probes_cover_every_plant_host_and_label_the_plant(example: Rendered) -> None:
    for dep in (d for d in example.deployments if d.cluster is not None):
        probes = render_blackbox_probes(dep, example.ctx)
        assert {p["spec"]["module"] for p in probes} == {
            "odoo_health", "odoo_login", "odoo_dbmanager_blocked", version_module(dep.series),
        }  # fmt: skip
        for p in probes:
            static = p["spec"]["targets"]["staticConfig"]
            assert len(static["static"]) == len(dep.tenants)
            (relabel,) = static["relabelingConfigs"]
            # Prometheus anchors relabel regexes at both ends
            plants = {re.fullmatch(relabel["regex"], url).group(1) for url in static["static"]}  # type: ignore[union-attr]
            assert plants == {t.plant for t in dep.tenants}

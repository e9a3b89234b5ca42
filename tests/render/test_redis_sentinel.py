"""Sentinels restarting together must keep monitoring the current master, not pod 0."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plantops.render.kubernetes.common import REDIS_PORT, SENTINEL_PORT
from plantops.render.kubernetes.redis import MASTER_NAME, SENTINEL_QUORUM
from tests.render.conftest import Rendered

PASSWORD = "s3cretPW"
HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")  # stand-ins for redis-0, -1, -2
SENTINEL_HOST = "127.0.0.9"  # the Sentinel Service


def _sentinel_sets(example: Rendered) -> list[tuple[str, dict[str, Any]]]:
    out = [
        (p, o)
        for _d, p, o in example.objects
        if o["kind"] == "StatefulSet"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "redis-sentinel"
    ]
    assert out, "the example has a dedicated-environment plant with Sentinel"
    return out


def test_sentinel_state_needs_no_volume_of_its_own(example: Rendered) -> None:
    """Rebuilt at start from the live pods: no PVC (the namespace quota counts PVCs)."""
    for path, sts in _sentinel_sets(example):
        spec = sts["spec"]
        assert "volumeClaimTemplates" not in spec, path
        volumes = spec["template"]["spec"]["volumes"]
        assert [v["name"] for v in volumes] == ["auth", "data"], path
        assert volumes[1] == {"emptyDir": {"sizeLimit": "16Mi"}, "name": "data"}, path
        # The password is a mounted file, not an environment variable.
        assert volumes[0]["secret"]["items"] == [{"key": "password", "path": "password"}], path
        assert "env" not in spec["template"]["spec"]["containers"][0], path
        script = spec["template"]["spec"]["containers"][0]["command"][2]
        assert "get-master-addr-by-name" in script, path
        assert "info replication" in script, path
        # The password reaches redis-cli through the environment, not argv.
        assert " -a " not in script, path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(host: str, port: int, *args: str) -> str:
    res = subprocess.run(
        ["redis-cli", "-h", host, "-p", str(port), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "REDISCLI_AUTH": PASSWORD},
        check=False,
    )
    return res.stdout.strip()


def _wait(pred: Any, what: str) -> None:
    for _ in range(100):
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def test_restarting_sentinel_monitors_the_failed_over_master(
    example: Rendered, tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    dep, path, sts = next(
        (d, p, o)
        for d, p, o in example.objects
        if o["kind"] == "StatefulSet"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "redis-sentinel"
    )
    assert dep.sizing.redis_replicas == len(HOSTS) - 1, path
    script: str = sts["spec"]["template"]["spec"]["containers"][0]["command"][2]
    port, sport = _free_port(), _free_port()
    # Cluster DNS names → loopback addresses; ports → free ones; /data → tmp.
    ns_sts = sts["metadata"]["name"].removesuffix("-sentinel")
    for i, host in enumerate(HOSTS):
        script = script.replace(f"{ns_sts}-{i}.{ns_sts}-headless", host)
    script = script.replace(f"-h {sts['metadata']['name']} ", f"-h {SENTINEL_HOST} ")
    script = script.replace(str(SENTINEL_PORT), str(sport)).replace(str(REDIS_PORT), str(port))
    script = script.replace("/data/", f"{tmp_path}/")
    pwfile = tmp_path / "password"
    pwfile.write_text(PASSWORD)
    script = script.replace("/etc/redis/auth/password", str(pwfile))
    printing = script.replace("exec redis-sentinel", "cat")

    def chosen() -> str:
        res = subprocess.run(
            ["sh", "-c", printing],
            capture_output=True,
            text=True,
            check=True,
        )
        monitor = next(ln for ln in res.stdout.splitlines() if ln.startswith("sentinel monitor"))
        name, host, p, quorum = monitor.split()[2:]
        assert (name, p, quorum) == (MASTER_NAME, str(port), str(SENTINEL_QUORUM))
        return host

    # First start: nothing runs yet, pod 0 is the master.
    assert chosen() == HOSTS[0]

    for host in HOSTS:
        servers.append(
            subprocess.Popen(
                ["redis-server", "--bind", host, "--port", str(port), "--save", "",
                 "--appendonly", "no", "--dir", str(tmp_path),
                 "--requirepass", PASSWORD, "--masterauth", PASSWORD],
                stdout=subprocess.DEVNULL,
            )
        )  # fmt: skip
    for host in HOSTS:
        _wait(lambda h=host: _cli(h, port, "ping") == "PONG", f"redis on {host}")
    # After a failover: pod 1 is the master, pods 0 and 2 replicate from it.
    for host in (HOSTS[0], HOSTS[2]):
        _cli(host, port, "replicaof", HOSTS[1], str(port))
    _wait(
        lambda: "connected_slaves:2" in _cli(HOSTS[1], port, "info", "replication"),
        "replicas to attach",
    )
    assert chosen() == HOSTS[1], "the master with replicas, not pod 0"

    # A real Sentinel accepts the rendered config and monitors that master.
    conf = tmp_path / "sentinel.conf"
    assert f"sentinel monitor {MASTER_NAME} {HOSTS[1]} " in conf.read_text()
    sentinel_conf = conf.read_text() + f"bind {SENTINEL_HOST}\n"
    (tmp_path / "running-sentinel.conf").write_text(sentinel_conf)
    servers.append(
        subprocess.Popen(
            ["redis-server", str(tmp_path / "running-sentinel.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL,
        )
    )
    _wait(
        lambda: _cli(
            SENTINEL_HOST, sport, "sentinel", "get-master-addr-by-name", MASTER_NAME
        ).splitlines()[:1]
        == [HOSTS[1]],
        "the sentinel to report the master",
    )

    # The master dies while every other Sentinel restarts: the running one still knows.
    _cli(HOSTS[1], port, "shutdown", "nosave")
    assert chosen() == HOSTS[1]
    # No Sentinel left either: the replicas still name the master they follow, so the
    # new Sentinels monitor it and fail over properly instead of promoting pod 0 blindly.
    servers[-1].kill()
    servers[-1].wait()
    assert chosen() == HOSTS[1]

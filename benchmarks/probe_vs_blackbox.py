"""plantops' prober against blackbox_exporter on loopback: the same stand-in Odoo
(tests/observe/odoo_standin.py, in its own process), the same 1,000 targets
(/web/health?t=<i>, so each is a distinct URL), the same concurrency.

Measures checks per second (wall) and CPU per check of the prober process only: for
plantops the probing process itself; for blackbox_exporter the exporter's CPU (from
/proc/<pid>/stat), not the client that asks it (in production that is Prometheus).

    PYTHONPATH=src .venv/bin/python benchmarks/probe_vs_blackbox.py --targets 1000 --concurrency 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.fixtures.postgres import free_port  # noqa: E402

from plantops.observe.blackbox import blackbox_modules  # noqa: E402
from plantops.observe.probe import Prober, ProbeSettings, ProbeTarget  # noqa: E402

SERVER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.observe.odoo_standin import OdooStandIn
with OdooStandIn() as s:
    print(s.port, flush=True)
    time.sleep(3600)
"""
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_plantops(url: str, n: int, concurrency: int) -> tuple[float, float, int]:
    targets = [ProbeTarget(f"t{i}", url) for i in range(n)]
    settings = ProbeSettings(timeout=10, retries=0, concurrency=concurrency, checks=("health",))
    prober = Prober(settings)
    # each target's health check asks /web/health; give each a distinct query string
    orig = prober._url

    def url_of(target: ProbeTarget, path: str) -> str:
        return orig(target, path) + f"?t={target.name}"

    prober._url = url_of  # type: ignore[method-assign]
    c0, t0 = self_cpu(), time.perf_counter()
    run = asyncio.run(prober.run(targets))
    wall, cpu = time.perf_counter() - t0, self_cpu() - c0
    passed = sum(c.status == "pass" for t in run.targets for c in t.checks)
    return wall, cpu, passed


async def _ask_blackbox(exporter: str, url: str, n: int, concurrency: int) -> int:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as c:

        async def one(i: int) -> bool:
            async with sem:
                r = await c.get(
                    f"{exporter}/probe",
                    params={"module": "odoo_health", "target": f"{url}/web/health?t=t{i}"},
                )
                return "\nprobe_success 1" in r.text

        return sum(await asyncio.gather(*(one(i) for i in range(n))))


def bench_blackbox(url: str, n: int, concurrency: int) -> tuple[float, float, int]:
    exe = shutil.which("prometheus-blackbox-exporter")
    assert exe, "apt-get install prometheus-blackbox-exporter"
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "blackbox.yml"
        cfg.write_text(yaml.safe_dump(blackbox_modules(["17.0"])))
        port = free_port()
        proc = subprocess.Popen(
            [exe, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        exporter = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{exporter}/-/healthy", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            asyncio.run(_ask_blackbox(exporter, url, 20, 5))  # warm up
            c0, t0 = cpu_of(proc.pid), time.perf_counter()
            passed = asyncio.run(_ask_blackbox(exporter, url, n, concurrency))
            wall, cpu = time.perf_counter() - t0, cpu_of(proc.pid) - c0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return wall, cpu, passed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = f"http://127.0.0.1:{int(server.stdout.readline())}"
    try:
        print("| prober | round | targets | passed | wall s | checks/s | CPU ms/check |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in range(1, args.rounds + 1):
            for name, fn in (("plantops", bench_plantops), ("blackbox_exporter", bench_blackbox)):
                wall, cpu, passed = fn(url, args.targets, args.concurrency)
                print(
                    f"| {name} | {r} | {args.targets} | {passed} | {wall:.2f} | "
                    f"{args.targets / wall:,.0f} | {cpu * 1000 / args.targets:.2f} |"
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()

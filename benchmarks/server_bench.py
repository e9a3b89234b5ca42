"""Requests per second and p95 latency of the server on a 1,000-plant fleet, loopback only.

    .venv/bin/python benchmarks/server_bench.py [--plants 1000] [--clients 20] [--seconds 10]

Starts one `plantops serve` (SQLite store) on a generated fleet, warms the snapshot,
then for each endpoint in turn runs ``--clients`` threads with keep-alive httpx
clients for ``--seconds``: the trivial ``/api/health``, the fleet overview API
(``/api/plants?limit=100``), ``/api/fleet`` and the fleet page (``/``, 50 rows).
Prints RPS, p50/p95 and errors side by side, and the overview's RPS as a share of
health's. The machine is shared: compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.plan_fleet import generate_fleet  # noqa: E402
from tests.server.conftest import make_tokens, start_serve, stop  # noqa: E402


def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        with httpx.Client(headers=headers, timeout=30) as c:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                try:
                    ok = c.get(url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                mine.append(time.perf_counter() - t)
                bad += not ok
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "errors": errors,
        "requests": len(latencies),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plants", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="plantops-server-bench-") as tmp:
        work = Path(tmp)
        fleet = generate_fleet(work / "fleet", args.plants)
        db = f"sqlite:///{work}/state.db"
        proc = start_serve(fleet, db, work)
        try:
            h = {"Authorization": f"Bearer {make_tokens(db)['viewer']}"}
            started = time.perf_counter()
            httpx.get(proc.url + "/api/fleet", headers=h, timeout=300).raise_for_status()
            print(
                f"snapshot of {args.plants} plants built in {time.perf_counter() - started:.1f} s"
            )
            # The fleet page's findings come from a background `plantops check` of the
            # whole fleet, started by the first page view: measured once while it runs
            # (it competes for the two cores and the GIL), then after it is done.
            started = time.perf_counter()
            results = {}
            rounds: list[tuple[str, str]] = [
                ("health", "/api/health"),
                ("plants API", "/api/plants?limit=100"),
                ("fleet API", "/api/fleet"),
                ("fleet page", "/"),
            ]
            for name, path in rounds[:4]:
                results[name] = r = load(proc.url + path, h, args.clients, args.seconds)
                print(
                    f"{name:<11} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                    f"p95 {r['p95_ms']:6.1f} ms  errors {r['errors']:.0f}/{r['requests']:.0f}"
                )
            started = time.perf_counter()
            httpx.get(proc.url + "/api/policy", headers=h, timeout=1800).raise_for_status()
            print(f"policy check of the fleet done {time.perf_counter() - started:.1f} s later")
            r = load(proc.url + "/", h, args.clients, args.seconds)
            print(
                f"{'page, check done':<11} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
                f"p95 {r['p95_ms']:6.1f} ms  errors {r['errors']:.0f}/{r['requests']:.0f}"
            )
            share = results["plants API"]["rps"] / results["health"]["rps"]
            print(f"plants API RPS = {share:.0%} of health RPS ({args.clients} clients)")
        finally:
            stop(proc)


if __name__ == "__main__":
    main()

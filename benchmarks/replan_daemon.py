"""One-plant re-plan of a large fleet: a fresh command line against the plan server.

    PYTHONPATH=src python benchmarks/replan_daemon.py [--plants 1000] [--rounds 7]

Generates a fleet (``plan_fleet.generate_fleet``), plans it once cold, starts a plan
server (``python -m plantops.cli.planserver``, its own private folder and caches) and
lets it serve one warm-up run. Then, for each round, plant 3's name is changed and
``plantops plan`` is run as a fresh process twice — once with ``PLANTOPS_DAEMON=0`` (in
this process, as before) and once through the server — alternating which goes first,
each on its own edit. Wall time is the fresh process's, start to exit; CPU is the
client's plus (for a served run) the server's, read from ``/proc``. A last pair of runs
changes nothing. Prints medians (min–max) side by side and the ratio.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.plan_fleet import generate_fleet  # noqa: E402

from plantops.cli import planclient  # noqa: E402


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(args: list[str], env: dict[str, str], server_pid: int | None) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = _cpu_of(server_pid) if server_pid else 0.0
    t = time.perf_counter()
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if server_pid:
        cpu += _cpu_of(server_pid) - server_before
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    a = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rpd", dir="/tmp"))
    fleet, out = generate_fleet(work / "fleet", a.plants), work / "out"
    folder = work / "d"
    folder.mkdir(mode=0o700)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "XDG_CACHE_HOME": str(work / "cache"),
        "PLANTOPS_DAEMON_DIR": str(folder),
    }
    for k in [k for k in env if k.startswith("PLANTOPS_") and k != "PLANTOPS_DAEMON_DIR"]:
        env.pop(k)
    plan = [sys.executable, "-m", "plantops.cli", "plan", str(fleet), "--out", str(out)]
    local_env = {**env, "PLANTOPS_DAEMON": "0"}
    t = time.perf_counter()
    _run(plan, local_env, None)
    print(f"cold plan of {a.plants} plants: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    sock = planclient.socket_path(env)
    server = subprocess.Popen(
        [sys.executable, "-m", "plantops.cli.planserver", "--socket", str(sock), "--idle", "0"],
        env=env,
        stdout=(work / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while planclient.request(sock, "ping", timeout=1) is None:
            time.sleep(0.05)
        plant = fleet / "plants" / "plant-00003.yaml"

        def edit(tag: str) -> None:
            text = plant.read_text()
            old = next(x for x in text.splitlines() if x.startswith("name: "))
            plant.write_text(text.replace(old, f"name: Plant 3 {tag}"))

        edit("warm-up")
        _run(plan, env, server.pid)  # the server's first run: it reads and watches once
        results: dict[str, list[tuple[float, float]]] = {"in-process": [], "plan server": []}
        for r in range(a.rounds):
            order = ["in-process", "plan server"] if r % 2 == 0 else ["plan server", "in-process"]
            for side in order:
                edit(f"{side} {r}")
                served = side == "plan server"
                results[side].append(
                    _run(plan, env if served else local_env, server.pid if served else None)
                )
        same = {
            "in-process": _run(plan, local_env, None),
            "plan server": _run(plan, env, server.pid),
        }
        served_count = (planclient.request(sock, "ping") or {}).get("served")
    finally:
        server.terminate()
        server.wait(30)
    print(
        f"| {a.plants} plants, {a.rounds} rounds | one plant changed: wall s, median (min–max)"
        " | CPU s, median | nothing changed: wall s |"
    )
    print("|---|---:|---:|---:|")
    medians = {}
    for side, runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        medians[side] = statistics.median(walls)
        print(
            f"| {side} | {medians[side]:.3f} ({min(walls):.3f}–{max(walls):.3f}) "
            f"| {statistics.median(cpus):.3f} | {same[side][0]:.3f} |"
        )
    ratio = medians["plan server"] / medians["in-process"]
    print(f"\nplan server / in-process, median wall: {ratio:.2f}× (served {served_count} runs)")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()

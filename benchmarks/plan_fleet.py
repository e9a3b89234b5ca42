"""Benchmark `plantops plan` on synthetic fleets (not part of the test suite).

    .venv/bin/python benchmarks/plan_fleet.py [--sizes 100 1000 5000] [--envs 4]

For each size: a cold plan into an empty directory (a new fleet directory, so nothing
of it is in the parse cache; schema validators come from the user's validator cache
unless --fresh-validator-cache), then --rounds incremental plans each after one plant
changed (median and range), then a plan with nothing changed. Each plan runs in a
fresh `plantops` process after `sync`, so wall time includes start-up and not the
previous run's write-back; peak RSS is measured in separate runs of the same kind
(--no-rss skips them). Side by side with the cold plan, a bare Python loop writes the
same bytes to the same paths (the floor for a cold plan); CPU seconds of each plan
process are printed beside wall seconds, as the shared machine makes wall time noisy.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme-manufacturing"
TIMEZONES = [
    "Europe/Berlin",
    "America/Detroit",
    "Asia/Kolkata",
    "Europe/Paris",
    "America/Monterrey",
]
# the example's classification.large_peak_users: from here a production-critical
# two-shift plant scores critical
LARGE_PEAK_USERS = 150


def own_cluster(code: str, region: str, clusters: list[str], *, pinned: bool = False) -> str:
    """Append a dedicated cluster for ``code`` to ``clusters``, return its name.

    ``pinned`` dedicates the node pool to the plant (dedicated-environment, as Lyon's);
    a dedicated-cluster plant owns the whole cluster (as Detroit's), so its pool is not.
    """
    name = f"ded-{code}"
    dedicated = f", dedicated_to: {code}" if pinned else ""
    clusters.append(
        f"  - name: {name}\n    region: {region}\n    kind: dedicated\n    provider: eks\n"
        f'    kubernetes_version: "1.30"\n    zones: [a, b, c]\n    node_pools:\n'
        f"      - {{name: general, vcpu: 16, memory_gib: 64, min_nodes: 3, max_nodes: 10"
        f"{dedicated}}}\n    storage_classes:\n"
        f"      - {{name: gp3, access_modes: [ReadWriteOnce], default: true}}\n"
        f"      - {{name: efs-rwx, access_modes: [ReadWriteMany]}}\n"
    )
    return name


def generate_fleet(root: Path, plants: int, *, seed: int = 7, envs: int = 4) -> Path:
    """A fleet like the example's, with ``plants`` plants of mixed profiles."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "plants").mkdir(exist_ok=True)
    fleet = (EXAMPLE / "fleet.yaml").read_text().replace(", dedicated_to: lyon-meddev", "")
    if envs == 2:
        fleet = fleet.replace(
            "  - name: test\n    promotes_from: dev\n    size_factor: 0.2\n"
            "  - name: staging\n    promotes_from: test\n    size_factor: 0.5\n",
            "",
        ).replace("promotes_from: staging", "promotes_from: dev")
    extra_clusters = []
    lines = []
    for i in range(plants):
        code = f"plant-{i:05d}"
        region = "eu-central" if i % 2 == 0 else "us-east"
        kind = rng.random()
        peak = rng.randint(5, 50)
        placement = f"  tenant_group: group-{i // 8:04d}-{region}\n"
        profile = "  customization: light\n"
        if kind < 0.02:  # critical and latency-sensitive: isolated on a cluster of its own
            placement = f"  cluster: {own_cluster(code, region, extra_clusters, pinned=True)}\n"
            profile = (
                "  production_critical: true\n  regulatory: [iso-13485]\n"
                "  latency_sensitivity: high\n  customization: heavy\n"
            )
            peak = rng.randint(100, 400)
        elif kind < 0.25:
            profile = "  production_critical: true\n  customization: moderate\n"
            peak = rng.randint(30, 250)
            if peak >= LARGE_PEAK_USERS:
                # Scored (docs/classification.md): production-critical 6 + two shifts 80 h/week
                # multi-shift 4 + a large user base 3 = 13 >= critical_score 12, and critical
                # without isolation needs is dedicated-cluster (P3): a cluster of its own.
                placement = f"  cluster: {own_cluster(code, region, extra_clusters)}\n"
        named = peak * rng.randint(2, 4)
        late = '  - {name: late, start: "14:00", end: "22:00", days: [mon, tue, wed, thu, fri]}\n'
        if 0.25 <= kind < 0.35:
            # a pilot: few users on the day shift only (40 h/week adds no points; two
            # shifts, 80 h, would score it standard)
            named, peak, late = rng.randint(5, 20), rng.randint(1, 5), ""
        lines.append(code)
        (root / "plants" / f"{code}.yaml").write_text(
            "apiVersion: plantops.io/v1\nkind: Plant\n"
            f"code: {code}\nname: Plant {i}\nregion: {region}\n"
            f"timezone: {TIMEZONES[i % len(TIMEZONES)]}\n"
            f"placement:\n{placement}"
            f"users: {{named: {max(named, peak)}, peak_concurrent: {peak}}}\n"
            f"profile:\n{profile}"
            f"  volume: {{orders_per_day: {rng.randint(10, 1500)}, "
            f"stock_moves_per_day: {rng.randint(100, 15000)}}}\n"
            'shifts:\n  - {name: day, start: "06:00", end: "14:00", days: [mon, tue, wed, thu, fri]}\n'
            f"{late}"
            "freeze_windows:\n  - {name: close, kind: month-end-close, "
            'rrule: "FREQ=MONTHLY;BYMONTHDAY=-1", at: "18:00", duration_hours: 24}\n'
        )
    fleet = fleet.replace("tiers:\n", "".join(extra_clusters) + "tiers:\n", 1)
    (root / "fleet.yaml").write_text(fleet)
    return root


def plantops_cmd() -> list[str]:
    """This checkout's plantops, run by the interpreter running the benchmark."""
    return [sys.executable, "-m", "plantops.cli"]


def plantops_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: list[float] = []
"""CPU seconds (user + system) of each ``run_plan``, in order: the machine is shared, and
CPU time is steadier than wall time when neighbours take the cores."""


def run_plan(fleet: Path, out: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds and the summary line of one plan in a fresh process.

    ``sync`` first, so the previous run's dirty pages are not flushed on this run's clock.
    """
    os.sync()
    cmd = [*plantops_cmd(), "plan", str(fleet), "--out", str(out)]
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=env or plantops_env()
    )
    wall = time.perf_counter() - start
    CPU.append(children_cpu() - cpu)
    if proc.returncode != 0:
        sys.exit(f"plan failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    last = [line for line in proc.stdout.splitlines() if "deployments rendered" in line]
    return wall, last[-1] if last else ""


def rendered_of(line: str) -> str:
    return line.split("—")[1].split("deployments rendered")[0].strip() if line else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--envs", type=int, default=4, choices=[2, 4])
    parser.add_argument(
        "--rounds", type=int, default=3, help="incremental runs to take the median of"
    )
    parser.add_argument(
        "--fresh-validator-cache",
        action="store_true",
        help="compile schema validators from scratch (the first run after installing plantops)",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS runs")
    args = parser.parse_args()
    # Byte code as an installed plantops has it (this also holds with
    # PYTHONDONTWRITEBYTECODE set, which would otherwise recompile every run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    if args.fresh_validator_cache:
        os.environ["PLANTOPS_VALIDATOR_CACHE"] = tempfile.mkdtemp(prefix="plantops-validators-")
    print(
        "| plants | deployments | files | cold s (CPU s) | bare loop s | cold / bare "
        "| cold RSS MiB | one plant changed s (median, min–max; CPU median) | RSS MiB "
        "| rendered | nothing changed s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="plantops-bench-") as tmp:
            fleet = generate_fleet(Path(tmp) / "fleet", n, envs=args.envs)
            out = Path(tmp) / "out"
            cold, line = run_plan(fleet, out)
            cold_cpu = CPU[-1]
            bare = bare_loop(out)
            cold_rss = 0
            if not args.no_rss:
                # RUSAGE_CHILDREN's max is over all children so far: measure each in a child
                cold_rss = measure_rss(fleet, Path(tmp) / "out-rss")
                shutil.rmtree(Path(tmp) / "out-rss")
            # "56 files written to OUT (28920 in the tree) — …": the tree's count
            in_tree = re.search(r"\((\d+) in the tree\)", line)
            files = int(in_tree.group(1)) if in_tree else 0
            deployments = sum(1 for _ in out.glob("clusters/*/*")) + sum(
                1 for _ in out.glob("vms/*")
            )
            p = fleet / "plants" / "plant-00003.yaml"
            text = p.read_text()
            incs, rendered = [], "?"
            inc_cpu = []
            for r in range(args.rounds):
                p.write_text(text.replace("name: Plant 3\n", f"name: Plant 3 rev {r}\n"))
                inc, inc_line = run_plan(fleet, out)
                incs.append(inc)
                inc_cpu.append(CPU[-1])
                rendered = rendered_of(inc_line)
            inc_rss = 0
            if not args.no_rss:
                p.write_text(text.replace("name: Plant 3\n", "name: Plant 3 rss\n"))
                inc_rss = measure_rss(fleet, out)
            same, same_line = run_plan(fleet, out)
            assert rendered_of(same_line) == "0", same_line
            med = statistics.median(incs)
            print(
                f"| {n} | {deployments} | {files} | {cold:.2f} ({cold_cpu:.2f}) | {bare:.2f} | "
                f"{cold / bare:.1f}× | {cold_rss / 1024:.0f} | {med:.2f} "
                f"({min(incs):.2f}–{max(incs):.2f}; {statistics.median(inc_cpu):.2f}) | "
                f"{inc_rss / 1024:.0f} | {rendered} | {same:.2f} |",
                flush=True,
            )
            shutil.rmtree(tmp, ignore_errors=True)


def bare_loop(out: Path) -> float:
    """Wall seconds for a bare Python loop writing the tree ``out`` holds — the same bytes
    to the same paths, from memory, after ``sync`` — the floor for a cold plan."""
    files = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    shutil.rmtree(out)
    os.sync()
    start = time.perf_counter()
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return time.perf_counter() - start


def measure_rss(fleet: Path, out: Path) -> int:
    """Peak RSS of one plan, measured in a throwaway child that reports its own rusage."""
    code = (
        "import resource,subprocess,sys;"
        "subprocess.run(sys.argv[1:],capture_output=True,check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    cmd = [*plantops_cmd(), "plan", str(fleet), "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", code, *cmd],
        capture_output=True,
        text=True,
        check=True,
        env=plantops_env(),
    )
    return int(proc.stdout.strip())


if __name__ == "__main__":
    main()

"""One-plant re-plan of a synthetic fleet, two source trees side by side in one run.

    python benchmarks/replan_side_by_side.py --before OLD/src [--after NEW/src]
        [--plants 1000] [--rounds 7]

Both trees plan copies of the same fleet (``plan_fleet.generate_fleet``, 4 environments)
into their own output directory, each in a fresh ``python -m plantops.cli`` process with
``PYTHONPATH`` set to the tree (byte code compiled first, as an installed plantops has it)
and their own cache directories. After a cold plan each, every round changes plant 3's
name in both fleets and re-plans them, alternating which tree goes first, so the shared
machine's load falls on both alike; then one plan with nothing changed. Wall seconds
(median, min–max) and CPU seconds (user + system of the process and its children) per
tree, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_fleet import children_cpu, generate_fleet

ROOT = Path(__file__).resolve().parent.parent


def run(src: Path, fleet: Path, out: Path, caches: Path) -> tuple[float, float, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "XDG_CACHE_HOME": str(caches),
    }
    os.sync()
    cmd = [sys.executable, "-m", "plantops.cli", "plan", str(fleet), "--out", str(out)]
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall, used = time.perf_counter() - start, children_cpu() - cpu
    if proc.returncode != 0:
        sys.exit(f"{src}: plan failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = next((x for x in proc.stdout.splitlines() if "deployments rendered" in x), "")
    return wall, used, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="src/ of the other tree")
    parser.add_argument(
        "--after", type=Path, default=ROOT / "src", help="src/ of this tree (default: here)"
    )
    parser.add_argument("--plants", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "this tree": args.after.resolve()}
    for src in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
    with tempfile.TemporaryDirectory(prefix="plantops-replan-") as tmp:
        base = generate_fleet(Path(tmp) / "fleet", args.plants)
        dirs = {}
        for name in trees:
            slug = name.replace(" ", "-")
            fleet = Path(shutil.copytree(base, Path(tmp) / f"fleet-{slug}"))
            dirs[name] = (fleet, Path(tmp) / f"out-{slug}", Path(tmp) / f"cache-{slug}")
        walls: dict[str, list[float]] = {n: [] for n in trees}
        cpus: dict[str, list[float]] = {n: [] for n in trees}
        for name, src in trees.items():
            wall, cpu, line = run(src, *dirs[name])
            print(f"{name}: cold plan {wall:.2f} s ({cpu:.2f} s CPU): {line}", flush=True)
        order = list(trees)
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else reversed(order):
                fleet = dirs[name][0]
                plant = fleet / "plants" / "plant-00003.yaml"
                text = plant.read_text()
                old = next(x for x in text.splitlines() if x.startswith("name: "))
                plant.write_text(text.replace(old, f"name: Plant 3 rev {r}"))
                wall, cpu, line = run(trees[name], *dirs[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
        same = {name: run(src, *dirs[name])[0] for name, src in trees.items()}
    print()
    print("| tree | one plant changed s, median (min–max) | CPU s, median | nothing changed s |")
    print("|---|---:|---:|---:|")
    for name in trees:
        w, c = walls[name], cpus[name]
        print(
            f"| {name} | {statistics.median(w):.2f} ({min(w):.2f}–{max(w):.2f}) "
            f"| {statistics.median(c):.2f} | {same[name]:.2f} |"
        )
    ratio = statistics.median(walls["this tree"]) / statistics.median(walls["before"])
    cpu_ratio = statistics.median(cpus["this tree"]) / statistics.median(cpus["before"])
    print(f"\nthis tree / before: {ratio:.2f}× wall, {cpu_ratio:.2f}× CPU (medians)")


if __name__ == "__main__":
    main()

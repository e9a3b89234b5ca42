"""Where a one-plant re-plan's CPU goes, phase by phase, in one process.

    python benchmarks/replan_phases.py FLEET OUT [--rounds 5]

FLEET must already be planned into OUT once (a cold plan, e.g. by ``plantops plan``).
Each round changes plant 3's name, then runs the console script's ``plan`` in a fresh
interpreter (``-X importtime`` off) whose use-case functions are wrapped to record
``time.process_time()`` (CPU of this process: user + system) and wall time per phase.
Forked render workers are not used for a one-plant change (fewer than
``services.PARALLEL_MIN_RENDERS`` deployments), so process time is the whole CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
t0, w0 = time.process_time(), time.perf_counter()
phases = {}
def mark(name, t, w):
    p = phases.setdefault(name, [0.0, 0.0])
    p[0] += time.process_time() - t
    p[1] += time.perf_counter() - w
import gc
_gc = {}
def _gc_cb(phase, info):
    if phase == "start":
        _gc["t"], _gc["w"] = time.process_time(), time.perf_counter()
    else:
        mark(f"garbage collection (gen {info['generation']})", _gc["t"], _gc["w"])
gc.callbacks.append(_gc_cb)
import plantops.cli.main as climain
gc.freeze()  # as the console script's main() does, before it imports the commands
gc.set_threshold(*climain.GC_THRESHOLD)
import plantops.cli.fleet
import plantops.services as s
import plantops.gitops.tree as tree
mark("imports", t0, w0)

def wrap(mod, attr, name):
    fn = getattr(mod, attr)
    def inner(*a, **k):
        t, w = time.process_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            mark(name, t, w)
    setattr(mod, attr, inner)

wrap(s, "open_fleet", "loading the fleet")
wrap(s, "open_plan_memo", "opening the plan memo")
wrap(s, "build_plan", "build_plan (memo)")
wrap(s, "store_plan_memo", "storing the plan memo")
wrap(s, "render_fleet_objects", "fleet-wide objects rendered")
wrap(s.RenderChecker, "fleet_files", "fleet-wide files validated + emitted")
wrap(s.RenderChecker, "render", "changed deployments rendered + validated")
wrap(tree, "_edited", "hand-edit stat check")
wrap(tree, "_read_state", "tree: state read")
wrap(tree._FileStats, "__init__", "tree: file records read")
wrap(tree._FileStats, "record", "tree: file records stored")
wrap(tree._State, "dump", "tree: state serialised")
wrap(tree, "_plan_swaps", "tree: swaps planned")
wrap(tree, "_commit_update", "tree: swapped in (journal fsync, renames)")
wrap(s, "write_tree", "write_tree (all of it)")
wrap(s, "cost_plan", "cost model")
wrap(s, "plan_policy_gate", "policy gate set-up")
wrap(s, "fleet_pins", "release pins") if hasattr(s, "fleet_pins") else None
import plantops.services.formats as formats
import plantops.cli.console as console
wrap(formats, "plan_summary", "summary rows built")
wrap(plantops.cli.fleet, "_print_warnings", "warnings printed")
wrap(type(console.out), "print", "Rich prints (table, notes, warnings)")
sys.argv = ["plantops", "plan", sys.argv[1], "--out", sys.argv[2]]
t, w = time.process_time(), time.perf_counter()
try:
    climain.main()
except SystemExit:
    pass
mark("plan command (all after imports)", t, w)
mark("total", t0, w0)
import resource
phases["peak RSS MiB"] = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0.0]
sys.stderr.write("PHASES " + json.dumps(phases) + "\n")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("fleet", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    plant = args.fleet / "plants" / "plant-00003.yaml"
    runs: list[dict[str, list[float]]] = []
    for r in range(args.rounds):
        text = plant.read_text()
        old = next(x for x in text.splitlines() if x.startswith("name: "))
        plant.write_text(text.replace(old, f"name: Plant 3 phase {os.getpid()} {r}"))
        os.sync()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.fleet), str(args.out)],
            capture_output=True,
            text=True,
            check=False,
        )
        line = next((x for x in proc.stderr.splitlines() if x.startswith("PHASES ")), None)
        if line is None:
            sys.exit(proc.stderr[-3000:])
        runs.append(json.loads(line[len("PHASES ") :]))
    print(f"| phase | CPU s, median of {args.rounds} (min–max) | wall s, median |")
    print("|---|---:|---:|")
    for name in runs[0]:
        cpu = [r[name][0] for r in runs if name in r]
        wall = [r[name][1] for r in runs if name in r]
        print(
            f"| {name} | {statistics.median(cpu):.3f} ({min(cpu):.3f}–{max(cpu):.3f}) "
            f"| {statistics.median(wall):.3f} |"
        )


if __name__ == "__main__":
    main()

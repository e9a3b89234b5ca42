"""A one-plant re-plan in a resident process, with the process memo off and on.

    python benchmarks/replan_warm.py FLEET OUT CACHE --work DIR [--rounds 7] [--before SRC]

FLEET must already be planned into OUT with ``XDG_CACHE_HOME=CACHE`` (a cold plan, e.g.
by ``plantops plan``); none of the three is modified: each side works on its own copies
under DIR. Each side is one interpreter that imports the CLI (the console script's GC
tuning applied), turns the memo on or not (``plantops.services.warm.enable()``), plans
once (the first run of the process, not counted), then, for each round, changes plant 3's
name and runs ``plantops plan FLEET --out OUT`` through ``cli.main.main()``, recording
``time.process_time()`` (this process's CPU: a one-plant change renders in-process) and
wall time. stdout and stderr go to /dev/null. ``--before SRC`` adds a first side with
another plantops source tree on ``PYTHONPATH`` (e.g. ``git archive main src``: the code
before the memo), memo off. The sides run one after the other, each on its own copies;
the load average (``os.getloadavg``) is printed before and after each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import gc, json, os, sys, time
import plantops.cli.main as climain
gc.freeze(); gc.set_threshold(*climain.GC_THRESHOLD)
import plantops.cli.fleet  # noqa: F401 (the command modules, as a resident server has them)
if sys.argv[1] == "on":
    from plantops.services import warm
    warm.enable()
fleet, out, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4])
plant = os.path.join(fleet, "plants", sorted(os.listdir(os.path.join(fleet, "plants")))[3])
devnull = open(os.devnull, "w")
def run():
    sys.argv = ["plantops", "plan", fleet, "--out", out]
    so, se = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = devnull
    try:
        climain.main()
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    finally:
        sys.stdout, sys.stderr = so, se
def edit(r):
    text = open(plant).read()
    old = next(x for x in text.splitlines() if x.startswith("name: "))
    with open(plant, "w") as fh:
        fh.write(text.replace(old, f"name: Plant warm bench {os.getpid()} {r}"))
edit(-1); run()  # the process's first run: not counted
cpu, wall = [], []
for r in range(rounds):
    edit(r)
    t, c = time.perf_counter(), time.process_time()
    run()
    cpu.append(time.process_time() - c); wall.append(time.perf_counter() - t)
print(json.dumps({"cpu": cpu, "wall": wall}))
"""


def _side(
    mode: str, src: Path | None, fleet: Path, out: Path, cache: Path, work: Path, rounds: int
) -> dict:
    here = work / mode
    if here.exists():
        shutil.rmtree(here)
    here.mkdir(parents=True)
    for origin, name in ((fleet, "fleet"), (out, "out"), (cache, "cache")):
        subprocess.run(["cp", "-a", str(origin), str(here / name)], check=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(here / "cache")}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    load_before = os.getloadavg()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            "on" if mode == "on" else "off",
            str(here / "fleet"),
            str(here / "out"),
            str(rounds),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["load"] = (load_before, os.getloadavg())
    shutil.rmtree(here)
    return data


def _fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}–{max(xs):.3f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fleet", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--before", type=Path, help="another plantops src tree, memo off")
    args = ap.parse_args()
    sides: list[tuple[str, Path | None]] = [("off", None), ("on", None)]
    if args.before is not None:
        sides.insert(0, ("before", args.before))
    print(
        "| side | CPU s, median (min–max) | wall s, median (min–max) | load average before → after |"
    )
    print("|---|---:|---:|---|")
    for mode, src in sides:
        d = _side(mode, src, args.fleet, args.out, args.cache, args.work, args.rounds)
        (b1, _, _), (a1, _, _) = d["load"]
        print(f"| {mode} | {_fmt(d['cpu'])} | {_fmt(d['wall'])} | {b1:.2f} → {a1:.2f} |")


if __name__ == "__main__":
    main()

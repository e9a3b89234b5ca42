"""The hand-edit check of a one-plant re-plan, with and without the tree watch, in one
resident process (as the plan server runs it).

    PYTHONPATH=src python benchmarks/fsmonitor_check.py FLEET OUT [--rounds 5]

FLEET must already be planned into OUT (e.g. by ``benchmarks/plan_fleet.py``); both are
copied to a temporary directory first, never modified. Each round changes one plant's
name and plans in this process (``services.plan_fleet``). Measured per round: the
hand-edit check (``gitops.tree._edited``, every deployment's files plus the fleet
files), the watch's event drain (``TreeMonitor.refresh``, both of a run's calls), the
``stat`` calls of the check, and ``write_tree`` as a whole — first ``--rounds`` rounds
without the watch, then the same with ``fsmonitor.enable()`` (after one plan that
proves every file under the watch, and the set-up cost of watching the tree).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plantops import services
from plantops.gitops import fsmonitor
from plantops.gitops import tree as tree_module

Timer = dict[str, list[float]]


def _timed(timer: Timer, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def inner(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            timer.setdefault(name, []).append(time.perf_counter() - t)

    return inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("fleet", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--today", default="2026-11-22")
    args = parser.parse_args()
    today = dt.date.fromisoformat(args.today)
    work = Path(tempfile.mkdtemp(prefix="fsmon-bench-"))
    fleet, out = work / "fleet", work / "out"
    shutil.copytree(args.fleet, fleet, symlinks=True)
    shutil.copytree(args.out, out, symlinks=True)
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    os.environ.pop("PLANTOPS_TREE_CACHE", None)

    timer: Timer = {}
    stats = [0]  # in the check (not those of the records stored after the commit)
    in_check = [False]
    real_stat = tree_module._stat_of

    def counting(path: str) -> os.stat_result | None:
        stats[0] += in_check[0]
        return real_stat(path)

    real_edited = tree_module._edited

    def edited(*a: Any) -> Any:
        in_check[0] = True
        try:
            return real_edited(*a)
        finally:
            in_check[0] = False

    tree_module._stat_of = counting  # type: ignore[assignment]
    tree_module._edited = _timed(timer, "check", edited)  # type: ignore[assignment]
    tree_module.write_tree = _timed(timer, "write_tree", tree_module.write_tree)  # type: ignore[assignment]
    services.write_tree = tree_module.write_tree  # type: ignore[attr-defined]
    fsmonitor.TreeMonitor.refresh = _timed(  # type: ignore[method-assign]
        timer, "refresh", fsmonitor.TreeMonitor.refresh
    )
    plant = fleet / "plants" / "plant-00003.yaml"

    def replan(tag: str) -> None:
        text = plant.read_text()
        old = next(x for x in text.splitlines() if x.startswith("name: "))
        plant.write_text(text.replace(old, f"name: Plant 3 {tag}"))
        services.plan_fleet(fleet, out, today=today)

    # records every file's stat in the (new) cache: hashed once, then older than the
    # racy window, so the rounds below prove them by stat
    replan("warm-1")
    time.sleep(tree_module._RACY_SECONDS + 0.5)
    replan("warm-2")
    rows: dict[str, dict[str, list[float]]] = {}
    for mode in ["stat (no watch)", "watch"]:
        if mode == "watch":
            fsmonitor.enable()
            t = time.perf_counter()
            monitor = fsmonitor.monitor_for(out.absolute())
            setup = time.perf_counter() - t
            assert monitor is not None, fsmonitor.refused()
            print(f"watch set-up: {monitor.watched} directories in {setup:.3f} s")
            replan("watch-warm")  # proves every file by stat under the watch
        row: dict[str, list[float]] = {}
        for r in range(args.rounds):
            timer.clear()
            stats[0] = 0
            replan(f"{mode} {r}")
            row.setdefault("hand-edit check s", []).append(sum(timer["check"]))
            row.setdefault("event drain s", []).append(sum(timer.get("refresh", [0.0])))
            row.setdefault("stats", []).append(float(stats[0]))
            row.setdefault("write_tree s", []).append(sum(timer["write_tree"]))
        rows[mode] = row
    fsmonitor.disable()
    files = len(list(out.rglob("*.yaml")))
    print(f"\n{files} rendered .yaml files; median of {args.rounds} one-plant re-plans each\n")
    names = list(next(iter(rows.values())))
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for mode, row in rows.items():
        cells = []
        for n in names:
            v = row[n]
            fmt = "{:.0f}" if n == "stats" else "{:.4f}"
            cells.append(
                f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"
            )
        print(f"| {mode} | " + " | ".join(cells) + " |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

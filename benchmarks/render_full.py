"""Benchmark full rendering + schema validation of a synthetic fleet (not a test).

    .venv/bin/python benchmarks/render_full.py [--plants 1000] [--envs 4]

Renders every deployment of the fleet (Kubernetes objects, Argo CD Applications and
projects, Compose for VM plants) and validates every object against the target
cluster's Kubernetes schemas and the bundled CRD schemas, in one process, exactly as
``plantops plan`` does before writing. Then runs ``plan`` end to end (render +
validate + atomic write) in the same process. Targets: <= 60 s, <= 2 GiB RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_fleet import generate_fleet
from plantops import services
from plantops.plan import build_plan
from plantops.render import RenderContext

TODAY = dt.date(2026, 11, 22)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plants", type=int, default=1000)
    parser.add_argument("--envs", type=int, default=4, choices=[2, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plantops-render-") as tmp:
        fleet_dir = generate_fleet(Path(tmp) / "fleet", args.plants, envs=args.envs)
        t0 = time.perf_counter()
        res = services.open_fleet(fleet_dir, today=TODAY)
        plan = build_plan(res.fleet)
        t1 = time.perf_counter()
        checker = services.RenderChecker(RenderContext.from_fleet(res.fleet.spec))
        files = 0
        for dep in plan.deployments:
            files += len(checker.render(dep))
        files += len(checker.fleet_files(plan.deployments))
        t2 = time.perf_counter()
        rss_render = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t3 = time.perf_counter()
        result = services.plan_fleet(fleet_dir, Path(tmp) / "out", today=TODAY)
        t4 = time.perf_counter()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        n = len(plan.deployments)
        print(f"plants: {args.plants} x {args.envs} envs -> {n} deployments")
        print(f"load + plan: {t1 - t0:.2f} s")
        print(
            f"render + validate: {t2 - t1:.2f} s, {checker.objects} objects, {files} files, "
            f"{len(checker.findings)} findings, {(t2 - t1) / max(1, checker.objects) * 1e6:.0f} µs/object"
        )
        print(f"peak RSS after render + validate: {rss_render / 1024:.0f} MiB")
        print(
            f"plan end to end (load, plan, render, validate, write {result.tree.files} files): "
            f"{t4 - t3:.2f} s"
        )
        print(f"peak RSS (whole run): {rss / 1024:.0f} MiB")
        if checker.findings:
            sys.exit(1)


if __name__ == "__main__":
    main()

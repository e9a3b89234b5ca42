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
import copy
import datetime as dt
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plan_fleet import generate_fleet
from plantops import services
from plantops.plan import Deployment, build_plan
from plantops.render import RenderContext
from plantops.render.assemble import render_deployment_full

TODAY = dt.date(2026, 11, 22)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plants", type=int, default=1000)
    parser.add_argument("--envs", type=int, default=4, choices=[2, 4])
    parser.add_argument(
        "--reference-sample",
        type=int,
        default=1000,
        help="rendered core objects to validate side by side with kubernetes-validate",
    )
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
        compare_with_kubernetes_validate(plan.deployments, checker, args.reference_sample)
        if checker.findings:
            sys.exit(1)


def compare_with_kubernetes_validate(
    deployments: Sequence[Deployment], checker: services.RenderChecker, sample: int
) -> None:
    """Side by side on the same rendered core objects: time per object and verdicts."""
    ctx = checker.ctx
    objects: list[tuple[str, dict[str, Any]]] = []
    for dep in deployments:
        if dep.cluster is None:
            continue
        version = dep.cluster.kubernetes_version
        objects += [(version, o) for _, o in render_deployment_full(dep, ctx).objects if is_core(o)]
        if len(objects) >= sample:
            break
    objects = objects[:sample]
    t0 = time.perf_counter()
    ours = [checker.validator(v).is_valid(o) for v, o in objects]
    t1 = time.perf_counter()
    theirs = [reference_verdict(o, v) for v, o in objects]
    t2 = time.perf_counter()
    agree = sum(a == b for a, b in zip(ours, theirs, strict=True))
    per_ours = (t1 - t0) / len(objects) * 1e6
    per_theirs = (t2 - t1) / len(objects) * 1e6
    print(
        f"side by side on {len(objects)} rendered core objects: plantops {per_ours:.1f} µs/object, "
        f"kubernetes-validate {per_theirs:.0f} µs/object, ratio {per_theirs / per_ours:.0f}x, "
        f"verdicts agree on {agree}/{len(objects)} ({sum(theirs)} valid per kubernetes-validate)"
    )


def is_core(obj: dict[str, Any]) -> bool:
    group = str(obj["apiVersion"]).rpartition("/")[0]
    return not group or "." not in group or group.endswith(".k8s.io")


def reference_verdict(obj: dict[str, Any], version: str) -> bool:
    try:
        kubernetes_validate.validate(copy.deepcopy(obj), f"{version}.0", strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


if __name__ == "__main__":
    main()

"""Benchmark the block-YAML emitter on the objects of a sample fleet (not a test).

    .venv/bin/python benchmarks/yaml_emit.py [--copies 4] [--rounds 15] [--plants N]
    .venv/bin/python benchmarks/yaml_emit.py --compare-with /tmp/yamlout_old.py

Renders every object of ``examples/acme-manufacturing`` (Kubernetes objects, Argo CD
Applications, Compose files), or of a synthetic fleet of ``--plants`` plants, repeats
them to a few thousand objects and times ``emit_yaml`` over all of them (best of several
rounds, so with the emitter's memos warm). With ``--compare-with`` it also imports
another version of ``yamlout.py`` from that path, checks that both give byte-identical
output for every object, and times both in the same run: first one pass over the
distinct objects with fresh copies of both modules (memos cold, as in a one-off
``plantops plan``), then the repeated rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from plantops import services
from plantops.plan import build_plan
from plantops.render import RenderContext, yamlout
from plantops.render.assemble import render_deployment_full
from plantops.render.yamlout import emit_yaml

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "acme-manufacturing"
TODAY = dt.date(2026, 11, 22)

Emit = Callable[[Any], str]


def fleet_objects(fleet: Path = FLEET) -> list[Any]:
    """Every object the fleet renders to YAML, once."""
    res = services.open_fleet(fleet, today=TODAY)
    plan = build_plan(res.fleet)
    ctx = RenderContext.from_fleet(res.fleet.spec)
    objects: list[Any] = []
    for dep in plan.deployments:
        rendered = render_deployment_full(dep, ctx)
        # The last element is the object, whatever else the pair carries.
        objects += [pair[-1] for pair in rendered.objects]
        compose = getattr(rendered, "compose", None)
        if compose is not None:
            objects.append(compose[-1])
    return objects


def load_emitter(path: Path) -> Emit:
    spec = importlib.util.spec_from_file_location("_yamlout_compare", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    emit: Emit = module.emit_yaml
    return emit


def time_once(emit: Emit, objects: Sequence[Any]) -> float:
    t0 = time.perf_counter()
    for obj in objects:
        emit(obj)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=4, help="times the fleet is repeated")
    parser.add_argument("--rounds", type=int, default=15, help="best of this many rounds")
    parser.add_argument("--compare-with", type=Path, help="another yamlout.py to compare with")
    parser.add_argument("--plants", type=int, help="render a synthetic fleet of this many plants")
    args = parser.parse_args()

    if args.plants is None:
        unique = fleet_objects()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from plan_fleet import generate_fleet

        with tempfile.TemporaryDirectory(prefix="plantops-yaml-") as tmp:
            unique = fleet_objects(generate_fleet(Path(tmp) / "fleet", args.plants))
    objects = unique * args.copies
    emitters: dict[str, Emit] = {"new": emit_yaml}
    if args.compare_with is not None:
        cold = {
            "old": time_once(load_emitter(args.compare_with), unique),
            "new": time_once(load_emitter(Path(yamlout.__file__)), unique),
        }
        for name, seconds in cold.items():
            print(
                f"{name}, first pass with cold memos: {seconds * 1e3:.1f} ms, "
                f"{seconds / len(unique) * 1e6:.1f} µs/object"
            )
        print(f"speed-up, first pass: {cold['old'] / cold['new']:.2f}x")
        emitters = {"old": load_emitter(args.compare_with), "new": emit_yaml}
        old, new = emitters["old"], emitters["new"]
        differ = [i for i, obj in enumerate(unique) if old(obj) != new(obj)]
        if differ:
            first = unique[differ[0]]
            print(f"OUTPUT DIFFERS on {len(differ)}/{len(unique)} objects; first:")
            print("--- old\n" + old(first) + "--- new\n" + new(first))
            sys.exit(1)
        print(f"identical output on all {len(unique)} distinct objects")

    total = sum(len(emit_yaml(obj)) for obj in unique) * args.copies
    print(
        f"{len(unique)} distinct objects x {args.copies} = {len(objects)} objects, "
        f"{total / 1e6:.1f} MB of YAML"
    )
    best = dict.fromkeys(emitters, float("inf"))
    for _ in range(args.rounds):
        for name, emit in emitters.items():  # interleaved, so drift hits both alike
            best[name] = min(best[name], time_once(emit, objects))
    for name, seconds in best.items():
        print(
            f"{name}: {seconds * 1e3:.1f} ms, {seconds / len(objects) * 1e6:.1f} µs/object "
            f"(best of {args.rounds})"
        )
    if "old" in best:
        print(f"speed-up: {best['old'] / best['new']:.2f}x")


if __name__ == "__main__":
    main()

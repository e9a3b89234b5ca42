"""Benchmark: plantops schema validation vs bare jsonschema-rs and kubernetes-validate.

    .venv/bin/python benchmarks/schema_validate.py [--objects N] [--reference-sample M]

Generates N realistic objects (Deployments, Services, ConfigMaps, NetworkPolicies,
PodDisruptionBudgets, CloudNativePG Clusters, Traefik IngressRoutes and
Middlewares; a few percent carry a deliberate error) and, side by side in one run:
plantops (``is_valid`` and ``validate_many``, i.e. the identity and name checks, the
kind lookup and the findings), a bare ``jsonschema_rs`` validator per kind compiled
from the very same prepared schema documents (``is_valid`` in a loop over
pre-resolved (validator, object) pairs: the floor), and
``kubernetes_validate.validate(obj, version, strict=True)`` on the first M core
objects (milliseconds each). Checks every engine gives the same verdict on every
object and prints per-object times, the ratios and peak RSS. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import copy
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "check"))

import jsonschema_rs
import kubernetes_validate
from schema_samples import CORE_FACTORIES, CR_FACTORIES, mutated

from plantops.check.schema import SchemaValidator

VERSION = "1.30"

# (factory name, path, bad value): realistic mistakes.
CORE_BREAKAGE = [
    ("deployment", "spec.replicass", 2),
    ("deployment", "spec.replicas", "2"),
    ("service", "spec.ports[0].port", "http"),
    ("config_map", "data", {"workers": 4}),
    ("network_policy", "spec.policyTypes", "Egress"),
    ("pdb", "spec.minAvailabe", 1),
]


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    factories = {f.__name__: f for f in CORE_FACTORIES + CR_FACTORIES}
    names = list(factories)
    objects = []
    for i in range(n):
        plant = f"plant{i // len(names):04d}"
        name = names[i % len(names)]
        obj = factories[name](plant)
        if rng.random() < 0.05:
            broken = [b for b in CORE_BREAKAGE if b[0] == name]
            if broken:
                _, path, value = rng.choice(broken)
                obj = mutated(obj, path, value)
        objects.append(obj)
    return objects


def is_core(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return not group or "." not in group or group.endswith(".k8s.io")


def reference_verdict(obj: dict[str, Any]) -> bool:
    try:
        kubernetes_validate.validate(copy.deepcopy(obj), VERSION, strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--reference-sample", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes (best is kept)")
    args = parser.parse_args()

    objects = generate(args.objects)
    core = [o for o in objects if is_core(o)]
    print(f"objects: {len(objects)} ({len(core)} core, {len(objects) - len(core)} custom)")
    print(f"peak RSS after generating: {peak_rss_mib():.0f} MiB")

    start = time.perf_counter()
    validator = SchemaValidator(VERSION)
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    for api_version, kind in sorted(kinds):
        validator.has_schema(api_version, kind)  # load + compile every schema once
    compile_s = time.perf_counter() - start
    print(f"plantops: load + compile {len(kinds)} schemas: {compile_s:.2f} s")

    # The floor: jsonschema-rs alone on the same prepared documents, no lookup at all.
    bare: dict[tuple[str, str], jsonschema_rs.Validator] = {}
    for api_version, kind in kinds:
        compiled = validator._get(api_version, kind)
        assert compiled is not None
        bare[api_version, kind] = jsonschema_rs.Draft202012Validator(
            compiled.document, validate_formats=False
        )
    pairs = [(bare[o["apiVersion"], o["kind"]], o) for o in objects]

    # Interleaved rounds, best of each: neighbours on the shared machine hit all alike.
    runs = {
        "floor": lambda: [v.is_valid(o) for v, o in pairs],
        # ... and with every error of every invalid object, as plantops' findings need
        "errors": lambda: [v.is_valid(o) or list(v.iter_errors(o)) for v, o in pairs],
        "verdicts": lambda: [validator.is_valid(o) for o in objects],
        "findings": lambda: validator.validate_many(objects),
    }
    best = dict.fromkeys(runs, float("inf"))
    results: dict[str, Any] = {}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    floor_us, errors_us, verdict_us, findings_us = (
        best[k] * 1e6 / len(objects) for k in ("floor", "errors", "verdicts", "findings")
    )
    floor, ours, findings = results["floor"], results["verdicts"], results["findings"]
    invalid = sum(not v for v in ours)
    print(
        f"plantops: {len(objects)} objects, {invalid} invalid, {len(findings)} findings; "
        f"verdicts {verdict_us:.2f} us/object, with findings {findings_us:.2f} us/object"
    )
    print(
        f"bare jsonschema-rs, same documents: {floor_us:.2f} us/object (is_valid), "
        f"{errors_us:.2f} us/object (is_valid, then iter_errors when invalid)"
    )
    print(
        f"ratio plantops/bare: verdicts {verdict_us / floor_us:.2f}x, "
        f"with findings {findings_us / errors_us:.2f}x"
    )
    assert ours == floor, "plantops and bare jsonschema-rs disagree"
    assert invalid == len({f.document_index for f in findings}), "fast and explaining passes differ"

    sample = core[: args.reference_sample]
    start = time.perf_counter()
    ours_core = [validator.is_valid(o) for o in sample]
    ours_core_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [reference_verdict(o) for o in sample]
    theirs_s = time.perf_counter() - start
    disagreements = [i for i, (a, b) in enumerate(zip(ours_core, theirs, strict=True)) if a != b]
    ours_us = ours_core_s * 1e6 / len(sample)
    theirs_us = theirs_s * 1e6 / len(sample)
    print(
        f"same {len(sample)} core objects ({sum(not t for t in theirs)} invalid): "
        f"plantops {ours_us:.1f} us/object, kubernetes-validate {theirs_us:.0f} us/object, "
        f"ratio {theirs_us / ours_us:.0f}x"
    )
    print(f"verdicts agree: {not disagreements} ({len(disagreements)} disagreements)")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    return 1 if disagreements else 0


if __name__ == "__main__":
    raise SystemExit(main())

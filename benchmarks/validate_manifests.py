"""Benchmark `validate-manifests` against a bare libyaml parse of the same files.

    python benchmarks/validate_manifests.py TREE [--repeat 5]

TREE is a rendered tree (``plantops plan … --out TREE``; the committed example tree
``tests/golden/acme-manufacturing/clusters`` by default: its Kubernetes objects). Side by side, in one process,
best of --repeat passes each: a bare parse of every ``*.yaml`` (``yaml.load_all`` with
PyYAML's C loader) and ``*.json`` file; and ``validate_manifest_paths`` — discovery,
bounded reads, the same libyaml parse with document lines, duplicate-key checks, and
strict schema validation of every object (schemas compiled before timing, as a long
run amortizes them). Then the command as a user runs it, a fresh process, wall time.
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from plantops.check.schema import SchemaValidator, validate_manifest_paths

ROOT = Path(__file__).resolve().parent.parent


def bare_parse(files: list[Path]) -> int:
    documents = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            json.loads(text)
            documents += 1
        else:
            documents += sum(1 for _ in yaml.load_all(text, Loader=yaml.CSafeLoader))
    return documents


def best(fn: Any, repeat: int) -> tuple[Any, float]:
    result, seconds = None, float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        seconds = min(seconds, time.perf_counter() - start)
    return result, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "tree", type=Path, nargs="?", default=ROOT / "tests/golden/acme-manufacturing/clusters"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kubernetes-version", default="1.30")
    args = parser.parse_args()
    files = sorted(
        p
        for p in args.tree.rglob("*")
        if p.suffix in (".yaml", ".json")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(args.tree).parts)
    )
    validator = SchemaValidator(args.kubernetes_version)
    validate_manifest_paths([args.tree], validator)  # compile the schemas it needs
    documents, bare_s = best(lambda: bare_parse(files), args.repeat)
    result, ours_s = best(lambda: validate_manifest_paths([args.tree], validator), args.repeat)
    print(f"tree: {args.tree} — {len(files)} files, {documents} documents")
    print(f"bare libyaml parse: {bare_s:.3f} s")
    print(
        f"validate_manifest_paths: {ours_s:.3f} s ({result.objects} objects, "
        f"{len(result.findings)} findings) — {ours_s / bare_s:.2f}× the bare parse"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "plantops.cli", "validate-manifests", str(args.tree)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    print(
        f"plantops validate-manifests (fresh process, exit {proc.returncode}): "
        f"{time.perf_counter() - start:.2f} s wall"
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

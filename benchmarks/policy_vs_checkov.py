"""plantops check vs checkov on the same rendered manifests (BENCHMARKS.md).

    python benchmarks/policy_vs_checkov.py TREE N [--checkov /tmp/checkov-venv/bin/checkov]

Copies the Kubernetes objects of TREE (a rendered tree) into a scratch directory until
it holds N objects (each copy in its own folder, so deployment directories stay apart), then times each tool in a child
process and reports wall time and peak RSS (ru_maxrss of the child).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def build(tree: Path, n: int, out: Path) -> int:
    docs = []
    for path in sorted(tree.rglob("*.yaml")):
        if "vms" in path.parts or path.name == "kustomization.yaml":
            continue
        docs += [
            (path.relative_to(tree), d)
            for d in yaml.safe_load_all(path.read_text())
            if d and "kind" in d
        ]
    count = copy = 0
    while count < n:
        for rel, d in docs:
            if count >= n:
                break
            target = out / f"copy{copy}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a") as f:
                f.write("---\n" + yaml.safe_dump(d, sort_keys=False))
            count += 1
        copy += 1
    return count


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("tree", type=Path)
    p.add_argument("n", type=int)
    p.add_argument("--checkov", default="")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        objects = build(a.tree, a.n, Path(tmp))
        wall, rss = timed(
            [sys.executable, "-m", "plantops.cli", "check", tmp, "-f", "json", "-o", f"{tmp}.json"]
        )
        print(f"plantops check: {objects} objects {wall:.2f} s, peak RSS {rss} MiB")
        if a.checkov:
            cwall, crss = timed(
                [
                    a.checkov,
                    "-d",
                    tmp,
                    "--framework",
                    "kubernetes",
                    "--quiet",
                    "--compact",
                    "-o",
                    "json",
                ]
            )
            print(
                f"checkov: {objects} objects {cwall:.2f} s, peak RSS >= {crss} MiB; ratio {cwall / wall:.1f}x"
            )
        shutil.rmtree(f"{tmp}.json", ignore_errors=True)


if __name__ == "__main__":
    main()

"""Addon scan: `addons check` over N generated addons (plus the real OCA 17.0 corpus when
../shared/realworld, or $PLANTOPS_SHARED/realworld, is present), with and without checksums.

    .venv/bin/python benchmarks/addons_scan.py --sizes 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from plantops.addons import CheckOptions, check_addons_paths

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PLANTOPS_SHARED") or ROOT.parent / "shared")
OCA = SHARED / "realworld" / "oca-manifests" / "17.0"


def generate(root: Path, n: int, seed: int = 1) -> None:
    """n addons in repositories of 200, each depending on up to 3 earlier ones and a core
    addon; one in 50 proprietary (license findings), one in 500 with a missing dependency."""
    rnd = random.Random(seed)
    for i in range(n):
        d = root / f"repo{i // 200}" / f"gen_{i}"
        d.mkdir(parents=True)
        deps = ["mrp", *(f"gen_{rnd.randrange(i)}" for _ in range(3) if i)]
        if i % 500 == 7:
            deps.append("missing_x")
        manifest = {
            "name": f"G{i}",
            "version": "17.0.1.0.0",
            "license": "OPL-1" if i % 50 == 0 else "AGPL-3",
            "depends": deps,
        }
        (d / "__manifest__.py").write_text(repr(manifest))
        (d / "models.py").write_text("x = 1\n" * 50)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| addons | findings | check s (median) | with checksums s (median) |")
    print("|---:|---:|---:|---:|")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp), n)
            paths = [Path(tmp), *([OCA] if OCA.is_dir() else [])]
            options = CheckOptions(series="17.0")
            times, with_sums = [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                report = check_addons_paths(paths, options)
                times.append(time.perf_counter() - start)
                start = time.perf_counter()
                check_addons_paths(paths, options, checksums=True)
                with_sums.append(time.perf_counter() - start)
            print(
                f"| {len(report.addons)} | {len(report.findings)} | "
                f"{statistics.median(times):.2f} | {statistics.median(with_sums):.2f} |"
            )


if __name__ == "__main__":
    main()

"""What the policy gate adds to `plantops plan` (not part of the test suite).

    PYTHONPATH=src python benchmarks/plan_policy_gate.py [--sizes 0 1000] [--rounds 3]

Size 0 is the example fleet; other sizes are synthetic fleets from plan_fleet.py with the
example's policies/ (its exceptions and user rule). Each plan runs in a fresh process,
with the gate and, side by side in alternating order, without it (``policy_gate=False``:
the plan as it was before the gate). Per size: cold plans into
an empty directory, then re-plans after one plant changed. Wall and CPU seconds (user +
system, render workers included); the machine is shared, so compare the pairs.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_fleet import EXAMPLE, generate_fleet, plantops_env

ONE = """
import datetime as dt, sys
from pathlib import Path
from plantops import services
services.plan_fleet(
    Path(sys.argv[2]), Path(sys.argv[3]), today=dt.date(2026, 12, 3),
    policy_gate=sys.argv[1] == "on",
)
"""


def cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def plan(mode: str, fleet: Path, out: Path) -> tuple[float, float]:
    start, before = time.perf_counter(), cpu()
    proc = subprocess.run(
        [sys.executable, "-c", ONE, mode, str(fleet), str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=plantops_env(),
    )
    if proc.returncode != 0:
        sys.exit(f"plan ({mode}) failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, cpu() - before


def touch_plant(fleet: Path, n: int) -> None:
    """Change one plant's volume (a re-plan renders its deployments again)."""
    path = sorted((fleet / "plants").glob("*.yaml"))[0]
    text = path.read_text()
    marker = "orders_per_day: "
    i = text.index(marker) + len(marker)
    j = i
    while text[j].isdigit():
        j += 1
    path.write_text(text[:i] + str(100 + n) + text[j:])


def show(label: str, runs: dict[str, list[tuple[float, float]]]) -> None:
    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    on, off = runs["on"], runs["off"]
    w_on, w_off = med([w for w, _ in on]), med([w for w, _ in off])
    c_on, c_off = med([c for _, c in on]), med([c for _, c in off])
    print(
        f"{label}: gate on {w_on:.2f} s (CPU {c_on:.2f}) · off {w_off:.2f} s (CPU {c_off:.2f})"
        f" · added {w_on - w_off:+.2f} s wall, {c_on - c_off:+.2f} s CPU"
        f" ({(c_on / c_off - 1) * 100:+.0f} % CPU), n={len(on)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cold-rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plantops-gate-bench-") as tmp:
        for size in args.sizes:
            fleet = Path(tmp) / f"fleet-{size}"
            if size == 0:
                shutil.copytree(EXAMPLE, fleet)
            else:
                generate_fleet(fleet, size)
                shutil.copytree(EXAMPLE / "policies", fleet / "policies")
            name = "example" if size == 0 else f"{size} plants"
            cold: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            for r in range(args.cold_rounds):
                for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                    out = Path(tmp) / f"out-{size}-{mode}-{r}"
                    cold[mode].append(plan(mode, fleet, out))
                    if r < args.cold_rounds - 1:
                        shutil.rmtree(out)
            show(f"{name}, cold", cold)
            warm: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            last = args.cold_rounds - 1
            for r in range(args.rounds):
                for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
                    touch_plant(fleet, r * 2 + (mode == "on"))
                    warm[mode].append(plan(mode, fleet, Path(tmp) / f"out-{size}-{mode}-{last}"))
            show(f"{name}, one plant changed", warm)


if __name__ == "__main__":
    main()

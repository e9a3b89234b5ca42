"""Release pins at fleet scale: write N plants × 4 environments of pins, then time
``read_pins`` (what every ``plantops plan`` run does when the fleet has pins).

    python benchmarks/pins.py --plants 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from plantops.release.pins import PinRecord, next_pin, read_pins, write_pin

ENVS = ("dev", "test", "staging", "prod")


def record(n: int, stage: str) -> PinRecord:
    return PinRecord(
        release="sha256:" + f"{n % 256:02x}" * 32,
        image="registry.example/odoo@sha256:" + f"{(n + 1) % 256:02x}" * 32,
        addons="sha256:" + "c" * 64,
        update_modules=("mrp", "stock") if n % 2 else (),
        config="sha256:" + "d" * 64,
        stage=stage,
        promoted_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, default=1000)
    parser.add_argument("--history", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Path(tmp)
        start = time.perf_counter()
        for p in range(args.plants):
            for env in ENVS:
                pin = None
                for h in range(args.history):
                    new = next_pin(pin, record(h, env), plant=f"plant-{p:05d}", environment=env)
                    write_pin(fleet, new, replaces=pin)
                    pin = new
        writes = args.plants * len(ENVS) * args.history
        write_s = time.perf_counter() - start
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            pins = read_pins(fleet)
            times.append(time.perf_counter() - start)
        assert len(pins) == args.plants * len(ENVS)
        print(
            f"{len(pins)} pins ({args.history} records each): read_pins median "
            f"{statistics.median(times):.3f} s (min {min(times):.3f}, {args.rounds} rounds); "
            f"{writes} compare-and-swap writes in {write_s:.1f} s "
            f"({write_s / writes * 1000:.2f} ms each)"
        )


if __name__ == "__main__":
    main()

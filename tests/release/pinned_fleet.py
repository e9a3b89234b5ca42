"""The pins of the ``release-pinned`` golden case, written through the product's own API
(``python -m tests.release.pinned_fleet`` rewrites them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from plantops.release.pins import PinRecord, next_pin, read_pin, write_pin

FLEET = Path(__file__).resolve().parent.parent / "golden" / "release-pinned" / "fleet"
REPO = "registry.acme.example/odoo/odoo"
FLEET_DIGEST = "sha256:4b6c1f0e2a9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa99"


def _record(n: int, modules: tuple[str, ...], stage: str) -> PinRecord:
    return PinRecord(
        release="sha256:" + f"{n:02x}" * 32,
        image=f"{REPO}@sha256:" + f"{n + 0x10:02x}" * 32,
        addons="sha256:" + f"{n + 0x20:02x}" * 32,
        update_modules=modules,
        config="sha256:" + f"{n + 0x30:02x}" * 32,
        stage=stage,
        promoted_at=dt.datetime(2026, 11, 20 + n, 6, 0, tzinfo=dt.UTC),
    )


# dev: a first pin, a new image and no module to update (backup only, rolling update).
DEV = [_record(2, (), "dev")]
# prod: release 1, then release 2 which updates two modules (backup + upgrade Jobs).
PROD = [_record(1, (), "prod"), _record(2, ("acme_mrp", "mrp"), "prod")]


def write(fleet: Path = FLEET) -> None:
    for env, records in (("dev", DEV), ("prod", PROD)):
        current = read_pin(fleet, "monterrey-assembly", env)
        if current is not None:
            (fleet / "releases" / "monterrey-assembly" / f"{env}.yaml").unlink()
        pin = None
        for record in records:
            new = next_pin(pin, record, plant="monterrey-assembly", environment=env)
            write_pin(fleet, new, replaces=pin)
            pin = new


if __name__ == "__main__":
    write()

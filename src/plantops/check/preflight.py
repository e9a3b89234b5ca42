"""What the fleet asks for that the reference architecture cannot give, as located problems.

Checked before anything is rendered, so ``plan`` fails with the spec location instead
of writing a silently weaker deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plantops.errors import Problem
from plantops.sizing.cost import rwx_class

if TYPE_CHECKING:
    from plantops.plan import Plan
    from plantops.spec.loader import Location


def _problem(loc: Location, message: str, hint: str = "") -> Problem:
    return Problem(loc.file, loc.line, loc.column, loc.path, message, hint)


def check_renderable(plan: Plan) -> list[Problem]:
    fleet = plan.fleet
    source = fleet.source
    storage = fleet.spec.platform.storage
    index = {c.name: i for i, c in enumerate(fleet.spec.clusters)}
    problems: set[Problem] = set()
    for dep in plan.deployments:
        cl = dep.cluster
        if cl is None:
            continue
        classes = {s.name: s for s in cl.storage_classes}
        known = ", ".join(sorted(classes))
        pg = storage.postgres_storage_class
        if pg and pg not in classes:
            problems.add(
                _problem(
                    source.locate_fleet("platform", "storage", "postgres_storage_class"),
                    f"storage class {pg!r} does not exist on cluster {cl.name!r} "
                    f"(used by {dep.id})",
                    f"one of: {known}",
                )
            )
        if storage.filestore != "pvc":
            continue
        fs = storage.filestore_storage_class
        rwx = dep.filestore_needs_rwx
        if fs and fs not in classes:
            problems.add(
                _problem(
                    source.locate_fleet("platform", "storage", "filestore_storage_class"),
                    f"storage class {fs!r} does not exist on cluster {cl.name!r} "
                    f"(used by {dep.id})",
                    f"one of: {known}",
                )
            )
        elif fs and rwx and "ReadWriteMany" not in classes[fs].access_modes:
            problems.add(
                _problem(
                    source.locate_fleet("platform", "storage", "filestore_storage_class"),
                    f"{dep.id} runs up to {dep.sizing.max_web_replicas} web replicas sharing the "
                    f"filestore, but storage class {fs!r} on cluster {cl.name!r} is not "
                    "ReadWriteMany",
                    "name a ReadWriteMany class, or set platform.storage.filestore: s3",
                )
            )
        elif not fs and rwx and rwx_class(cl) is None:
            problems.add(
                _problem(
                    source.locate_fleet("clusters", index[cl.name], "storage_classes"),
                    f"{dep.id} runs up to {dep.sizing.max_web_replicas} web replicas sharing the "
                    f"filestore, but cluster {cl.name!r} has no ReadWriteMany storage class",
                    "add a class with access_modes: [ReadWriteMany], or set "
                    "platform.storage.filestore: s3",
                )
            )
    return sorted(problems)

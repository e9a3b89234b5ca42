"""Build the resolved :class:`Fleet` from a validated spec."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from plantops.errors import Problem, SpecError
from plantops.spec.loader import LoadedFleet, Location
from plantops.spec.models import (
    ClusterSpec,
    FleetSpec,
    Override,
    PlantSpec,
    ResourceProfile,
    TierSpec,
)

PATTERNS = (
    "shared-multitenant",
    "dedicated-namespace",
    "dedicated-cluster",
    "dedicated-environment",
)
TIER_LEVELS = ("critical", "high", "standard", "pilot")


@dataclass(frozen=True)
class Environment:
    name: str
    order: int
    production: bool
    size_factor: float
    list_db: bool
    target_revision: str | None = None


@dataclass(frozen=True)
class ActiveOverride:
    """A controlled exception in force today, with where it is written."""

    target: str
    value: str | int | bool
    owner: str
    reason: str
    expires: dt.date
    ticket: str | None
    location: Location

    def justification(self) -> str:
        ticket = f", {self.ticket}" if self.ticket else ""
        return (
            f"override {self.target}={self.value} by {self.owner} until "
            f"{self.expires.isoformat()}{ticket}: {self.reason}"
        )


@dataclass(frozen=True)
class Plant:
    spec: PlantSpec
    environments: tuple[Environment, ...]
    overrides: Mapping[str, ActiveOverride]

    @property
    def code(self) -> str:
        return self.spec.code

    def override(self, target: str) -> ActiveOverride | None:
        return self.overrides.get(target)


@dataclass(frozen=True)
class Fleet:
    spec: FleetSpec
    environments: tuple[Environment, ...]
    plants: tuple[Plant, ...]
    source: LoadedFleet

    @property
    def clusters(self) -> Mapping[str, ClusterSpec]:
        return {c.name: c for c in self.spec.clusters}

    def tier(self, name: str) -> TierSpec:
        return self.spec.tiers[name]

    def profile(self, name: str) -> ResourceProfile:
        return self.spec.resource_profiles[name]

    def check_selection(self, codes: Sequence[str]) -> None:
        """Refuse ``--plant`` codes this fleet does not have (never an empty answer)."""
        known = sorted(p.code for p in self.plants)
        unknown = [c for c in dict.fromkeys(codes) if c not in known]
        if unknown:
            raise SpecError(
                [
                    Problem(
                        "(command line)",
                        1,
                        1,
                        "--plant",
                        f"unknown plant {code!r}",
                        (
                            f"did you mean {close[0]!r}?"
                            if (close := difflib.get_close_matches(code, known, n=1))
                            else f"plants: {', '.join(known[:10])}{', ...' if len(known) > 10 else ''}"
                        ),
                    )
                    for code in unknown
                ]
            )

    def plant(self, code: str) -> Plant:
        for plant in self.plants:
            if plant.code == code:
                return plant
        raise KeyError(code)

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise KeyError(name)


def promotion_order(spec: FleetSpec) -> tuple[str, ...]:
    """Stage names first to last (the loader has checked they form one chain)."""
    nxt = {e.promotes_from: e.name for e in spec.environments if e.promotes_from}
    first = next(e.name for e in spec.environments if e.promotes_from is None)
    order = [first]
    while order[-1] in nxt:
        order.append(nxt[order[-1]])
    return tuple(order)


def _active(
    overrides: tuple[Override, ...] | list[Override], loaded: LoadedFleet, code: str, today: dt.date
) -> Mapping[str, ActiveOverride]:
    active: dict[str, ActiveOverride] = {}
    for i, ov in enumerate(overrides):
        if ov.expires < today:
            continue  # an expired exception no longer applies (the loader warned or failed)
        active[ov.target] = ActiveOverride(
            target=ov.target,
            value=ov.value,
            owner=ov.owner,
            reason=ov.reason,
            expires=ov.expires,
            ticket=ov.ticket,
            location=loaded.locate_plant(code, "overrides", i),
        )
    return MappingProxyType(active)


def build_fleet(loaded: LoadedFleet, *, today: dt.date) -> Fleet:
    spec = loaded.fleet
    order = promotion_order(spec)
    by_name = {e.name: e for e in spec.environments}
    envs = tuple(
        Environment(
            n,
            i,
            by_name[n].production,
            by_name[n].size_factor,
            by_name[n].list_db,
            by_name[n].target_revision,
        )
        for i, n in enumerate(order)
    )
    plants = []
    for ps in loaded.plants:
        wanted = set(ps.environments) if ps.environments is not None else set(order)
        plants.append(
            Plant(
                spec=ps,
                environments=tuple(e for e in envs if e.name in wanted),
                overrides=_active(ps.overrides, loaded, ps.code, today),
            )
        )
    return Fleet(spec=spec, environments=envs, plants=tuple(plants), source=loaded)

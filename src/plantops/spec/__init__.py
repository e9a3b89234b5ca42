"""Fleet spec: versioned YAML models, line-accurate loading, JSON Schema export."""

from plantops.spec.cache import ParseCache
from plantops.spec.loader import LoadedFleet, Location, SourceMap, load_fleet
from plantops.spec.models import FleetSpec, PlantSpec, spec_json_schema

__all__ = [
    "FleetSpec",
    "LoadedFleet",
    "Location",
    "ParseCache",
    "PlantSpec",
    "SourceMap",
    "load_fleet",
    "spec_json_schema",
]

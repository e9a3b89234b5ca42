"""Load a fleet repository: YAML with positions (libyaml marks) → validated spec models.

Every problem in every file is collected and raised at once as a
:class:`~plantops.errors.SpecError`; nothing else escapes this module for bad input.
The only I/O is reading the files given; the clock comes in as ``today``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import itertools
import os
import stat
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import SafeConstructor

from plantops.caches import Signature, now_ns, settled, signature_of, warm_table
from plantops.errors import Problem, SpecError
from plantops.inputs import (
    SPEC_LIMITS,
    BadInput,
    DuplicateKey,
    UniqueKeyLoader,
    file_kind,
    read_text,
    resolved_folder,
    yaml_documents,
)
from plantops.spec.cache import ParseCache
from plantops.spec.models import FleetSpec, PlantSpec

FLEET_FILE = "fleet.yaml"
PLANTS_DIR = "plants"

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class Location:
    """Where a value came from: file (as shown to the user), 1-based line and column, YAML path.

    Line and column are looked up when first read, so recording a location (every
    classification reason does) costs nothing until someone shows it.
    """

    __slots__ = ("_pos", "_source", "_value", "file", "key", "path")

    def __init__(self, source: SourceMap, key: Loc, *, value: bool = False) -> None:
        self._source, self.key, self._value = source, key, value
        self.file = source.file
        self.path = format_path(key)
        self._pos: tuple[int, int] | None = None

    def _position(self) -> tuple[int, int]:
        if self._pos is None:
            self._pos = self._source.position(self.key, value=self._value)
        return self._pos

    @property
    def line(self) -> int:
        return self._position()[0]

    @property
    def column(self) -> int:
        return self._position()[1]

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def __repr__(self) -> str:
        return f"Location({self}, {self.path!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return (self.file, self.path, self.line, self.column) == (
            other.file,
            other.path,
            other.line,
            other.column,
        )

    def __hash__(self) -> int:
        return hash((self.file, self.path))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its position resolved and without the source map it came from
        (the plan memo stores classifications; a file's whole map is not theirs to keep)."""
        return (_resolved_location, (self.file, self.key, self.path, self._position(), self._value))


def _resolved_location(
    file: str, key: Loc, path: str, pos: tuple[int, int], value: bool
) -> Location:
    loc = Location.__new__(Location)
    loc.file, loc.key, loc.path, loc._pos, loc._value = file, key, path, pos, value
    loc._source = None  # type: ignore[assignment]  # never read: the position is known
    return loc


@dataclass
class SourceMap:
    """Positions of every key and item of one YAML document.

    Positions are indexed on first use: most files of a large fleet are never asked
    where a value came from in a run, and indexing costs as much as parsing.
    """

    file: str
    positions: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    digest: str = ""
    """sha256 of the file's text: what incremental planning hashes instead of the model."""
    text: str = field(default="", repr=False)
    cache: ParseCache | None = field(default=None, repr=False, compare=False)
    """Where the index of this text may be kept between runs (``ParseCache.positions``)."""

    def _ensure_indexed(self) -> None:
        if not self.text or self.positions:
            return
        if self.cache is not None:
            found = self.cache.positions(self.digest)
            if found is not None:
                self.positions, self.values = found
                return
        self._build_index()
        if self.cache is not None and self.positions:
            self.cache.put_positions(self.digest, (self.positions, self.values))

    def _build_index(self) -> None:
        loader = yaml.CSafeLoader(self.text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _index(node, (), self, loader)
        except (yaml.YAMLError, _DuplicateKey, ValueError, TypeError, RecursionError):
            pass  # the file parsed when it was loaded; positions are best effort
        finally:
            loader.dispose()

    def locate(self, loc: Sequence[str | int], *, value: bool = False) -> Location:
        """Where ``loc`` is written: its key, or its value when ``value`` (resolved lazily)."""
        return Location(self, tuple(loc), value=value)

    def position(self, loc: Loc, *, value: bool = False) -> tuple[int, int]:
        """Best 1-based (line, column) for ``loc``, else of the nearest ancestor that exists."""
        self._ensure_indexed()
        if value and loc in self.values:
            return self.values[loc]
        key = loc
        while key and key not in self.positions:
            key = key[:-1]
        return self.positions.get(key, (1, 1))


@dataclass(frozen=True)
class LoadedFleet:
    """A fleet as written, validated, with where every value came from."""

    root: Path
    fleet: FleetSpec
    plants: tuple[PlantSpec, ...]
    fleet_source: SourceMap
    plant_sources: Mapping[str, SourceMap]
    warnings: tuple[Problem, ...] = ()

    def locate_plant(self, code: str, *loc: str | int) -> Location:
        return self.plant_sources[code].locate(loc)

    def locate_fleet(self, *loc: str | int) -> Location:
        return self.fleet_source.locate(loc)


def format_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_DuplicateKey = DuplicateKey


def _index(node: yaml.Node, prefix: Loc, source: SourceMap, loader: Any) -> Any:
    """Record positions (1-based) and return the plain-Python value of a composed YAML node.

    libyaml composes the document (fast, with marks); scalars are then constructed by the
    safe constructor so types follow YAML 1.1 exactly as PyYAML's safe_load would.
    """
    if isinstance(node, yaml.MappingNode):
        plain: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, dict | list):
                key = str(key)
            name = key if isinstance(key, int | float | bool) else str(key)
            loc = (*prefix, str(name))
            pos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if loc in source.positions:
                raise _DuplicateKey(str(name), *pos, source.positions[loc][0])
            source.positions[loc] = pos
            source.values[loc] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            plain[name] = _index(value_node, loc, source, loader)
        return plain
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            source.positions[(*prefix, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_index(item, (*prefix, i), source, loader))
        return items
    value = loader.construct_object(node, deep=True)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class _BadScalar(Exception):
    """A scalar YAML resolves to a type whose constructor refuses its value."""

    def __init__(self, line: int, column: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.hint = line, column, message, hint


class _DataLoader(UniqueKeyLoader):
    """The bounded loader, with scalars whose construction fails located at the scalar."""


def _timestamp(loader: _DataLoader, node: yaml.Node) -> Any:
    # yaml/constructor.py SafeConstructor.construct_yaml_timestamp matches the YAML 1.1
    # pattern and then calls datetime.date(...), whose ValueError carries no mark: it
    # surfaced as "invalid YAML" at line 1. Locate it at the scalar instead.
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)  # type: ignore[arg-type]
    except (ValueError, OverflowError) as exc:
        raise _BadScalar(
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            f"{node.value!r} is not a valid date: {exc}",
            "a real calendar date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM:SS)",
        ) from exc


_DataLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _plain(obj: Any) -> Any:
    """Keys as the validation expects them (text unless a number or bool); bytes as text."""
    if isinstance(obj, dict):
        return {
            (k if isinstance(k, int | float | bool) else str(k)): _plain(v) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj


def _text_key(path: Path, resolved: dict[Path, Path]) -> tuple[Path, Signature] | None:
    """Where a plain file's folder resolves to, and the file's own (lstat) signature;
    None for a link or anything not a regular file (read as always)."""
    try:
        info = path.lstat()
        folder = resolved_folder(path.parent, resolved)
    except (OSError, RuntimeError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return folder, signature_of(info)


def read_yaml(
    path: Path,
    shown: str,
    cache: ParseCache | None = None,
    *,
    root: Path | None = None,
    resolved: dict[Path, Path] | None = None,
) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse one YAML file; syntax errors become located problems. With ``cache``, a
    text parsed before is taken from it (only successful parses are kept).

    The file is read and parsed within :data:`plantops.inputs.SPEC_LIMITS` (regular files
    only, links confined to ``root``, size, depth and alias expansion bounded)."""
    source = SourceMap(shown)
    table = warm_table("spec-texts") if root is not None and resolved is not None else None
    key = _text_key(path, resolved) if table is not None and resolved is not None else None
    read_at = now_ns() if key is not None else 0  # before the signature is compared
    found = table.get(str(path)) if table is not None and key is not None else None
    if found is not None and found[0] == key and settled(found[0][1], found[1]):
        # the process memo (plantops.services.warm): the same file as read before — the
        # same inode, size, mtime and ctime, in the same resolved folder (inside the
        # fleet, as checked then), and modified more than RACY_SECONDS before that read
        # (Git's racily-clean rule: a write within the mtime's granularity may not show)
        text, source.digest = found[2], found[3]
    else:
        try:
            text = read_text(path, shown, limits=SPEC_LIMITS, root=root, resolved=resolved)
        except BadInput as exc:
            return None, source, [exc.problem()]
        source.digest = hashlib.sha256(text.encode()).hexdigest()
        if table is not None and key is not None:
            # the signature was taken before the read: a write during or after it shows
            # as another signature next time
            table.put(str(path), (key, read_at, text, source.digest))
    source.text = text
    source.cache = cache
    if cache is not None:
        cached = cache.get(source.digest)
        if cached is not None:
            return cached, source, []
    try:
        docs = yaml_documents(text, shown, limits=SPEC_LIMITS, loader_class=_DataLoader)
        if len(docs) != 1:
            what = "is empty" if not docs else f"holds {len(docs)} documents"
            return None, source, [Problem(shown, 1, 1, "", f"file {what}", "one YAML mapping")]
        data = _plain(docs[0][2])
    except BadInput as exc:
        return None, source, [exc.problem()]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return None, source, [Problem(shown, line, col, "", f"invalid YAML: {msg}")]
    except _BadScalar as bad:
        return None, source, [Problem(shown, bad.line, bad.column, "", bad.message, bad.hint)]
    except _DuplicateKey as dup:
        return (
            None,
            source,
            [
                Problem(
                    shown,
                    dup.line,
                    dup.column,
                    dup.key,
                    f"duplicate key {dup.key!r} (first at line {dup.first})",
                    "each key may appear once in a mapping",
                )
            ],
        )
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, source, [Problem(shown, 1, 1, "", f"invalid YAML: {first}")]
    if not isinstance(data, dict):
        return (
            None,
            source,
            [Problem(shown, 1, 1, "", f"expected a mapping, got {type(data).__name__}")],
        )
    if cache is not None:
        cache.put(source.digest, data)
    return data, source, []


# --- pydantic errors → problems ----------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Annotated/list/dict annotations."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _unwrap(a)]
    return [annotation]


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that owns the last element of ``loc`` (for 'did you mean')."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
        for candidate in _unwrap(current):
            origin = typing.get_origin(candidate)
            if origin in (list, tuple) and isinstance(part, int):
                current = typing.get_args(candidate)[0]
                break
            if origin is dict and isinstance(part, str):
                current = typing.get_args(candidate)[1]
                break
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
        current = next(
            (c for c in _unwrap(current) if isinstance(c, type) and issubclass(c, BaseModel)),
            current,
        )
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


HINTS = {
    "string_pattern_mismatch": {
        "code": "a DNS-1123 label: lowercase letters, digits and '-', 1-63 characters",
        "name": "a DNS-1123 label: lowercase letters, digits and '-', 1-63 characters",
        "slug": "a DNS-1123 label: lowercase letters, digits and '-', 1-63 characters",
        "start": "HH:MM, 24-hour clock",
        "end": "HH:MM, 24-hour clock",
        "at": "HH:MM, 24-hour clock",
        "digest": "sha256: followed by 64 lowercase hex digits",
        "endpoint": "host:port, e.g. mes.plant.example:4840",
        "kubernetes_version": "a minor version such as 1.30",
        "domain": "a DNS domain such as erp.example.com",
        "region": "a region name: lowercase letters, digits and '-', 1-63 characters,"
        " such as eu-central or us-east-1",
    },
}


def _problem(
    model: type[BaseModel], source: SourceMap, err: ErrorDetails, data: Mapping[str, Any]
) -> Problem:
    loc = tuple(p for p in err["loc"] if p != "[key]")
    kind = err["type"]
    where = source.locate(loc, value=kind not in ("extra_forbidden", "missing"))
    message = err["msg"]
    hint = ""
    last = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        owner = _model_at(model, loc)
        allowed = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(last), allowed, n=1)
        message = f"unknown key {last!r}"
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    elif kind == "missing":
        message = f"missing required key {last!r}"
        hint = f"add {last}: under {format_path(loc[:-1]) or 'the top level'}"
    elif kind == "string_pattern_mismatch":
        hint = HINTS[kind].get(str(last), "")
        message = f"{_shown(err['input'])} is not valid here"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind in ("literal_error", "enum"):
        message = f"{_shown(err['input'])} is not allowed: {message[0].lower()}{message[1:]}"
    elif not isinstance(err["input"], dict | list):
        message = f"{_shown(err['input'])}: {message[0].lower()}{message[1:]}"
    _ = data
    return Problem(where.file, where.line, where.column, where.path, message, hint)


def _shown(value: object, limit: int = 80) -> str:
    """A value as the message quotes it: a 10,000-character string is not echoed whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[: limit - 1]}…{size}"


def validate_model(
    model: type[M], data: Mapping[str, Any], source: SourceMap
) -> tuple[M | None, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [_problem(model, source, e, data) for e in exc.errors()]


def _validated(
    model: type[M], data: Mapping[str, Any], source: SourceMap
) -> tuple[M | None, list[Problem]]:
    """``validate_model``; with the process memo on (``plantops.services.warm``), a model
    validated before from a text of the same SHA-256 is taken (the parse of a text, and
    the model of a parse, are pure functions of it; models are frozen)."""
    table = warm_table("spec-models")
    if table is None or not source.digest:
        return validate_model(model, data, source)
    key = (model.__name__, source.digest)
    found = table.get(key)
    if isinstance(found, model):
        return found, []
    validated, problems = validate_model(model, data, source)
    if validated is not None and not problems:
        table.put(key, validated)
    return validated, problems


# --- cross-file checks ----------------------------------------------------------


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


DAY_INDEX = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
WEEK = 7 * 24 * 60


def shift_intervals(start: str, end: str, days: Sequence[str]) -> Iterator[tuple[int, int]]:
    """Minutes of the week a shift covers; a shift ending before it starts runs past midnight."""
    s, e = _minutes(start), _minutes(end)
    length = e - s if e > s else e + 24 * 60 - s
    for day in days:
        begin = DAY_INDEX[day] * 24 * 60 + s
        finish = begin + length
        if finish <= WEEK:
            yield begin, finish
        else:
            yield begin, WEEK
            yield 0, finish - WEEK


class _Report:
    """The problems of the cross-file checks, each at its source location."""

    def __init__(self) -> None:
        self.out: list[Problem] = []

    @staticmethod
    def at(src: SourceMap, *loc: str | int) -> Location:
        return src.locate(loc, value=True)

    def add(self, where: Location, message: str, hint: str = "", severity: str = "error") -> None:
        self.out.append(
            Problem(where.file, where.line, where.column, where.path, message, hint, severity)
        )


def _check_environments(r: _Report, fleet: FleetSpec, fleet_src: SourceMap) -> dict[str, int]:
    """Unique names, one promotion chain, exactly one production stage; returns the
    index of each environment by name."""
    at, add = r.at, r.add
    env_names = [e.name for e in fleet.environments]
    # environments: unique names and one promotion chain
    seen: dict[str, int] = {}
    for i, env in enumerate(fleet.environments):
        if env.name in seen:
            add(at(fleet_src, "environments", i, "name"), f"duplicate environment {env.name!r}")
        seen[env.name] = i
    roots = [e for e in fleet.environments if e.promotes_from is None]
    for i, env in enumerate(fleet.environments):
        if env.promotes_from is not None and env.promotes_from not in seen:
            add(
                at(fleet_src, "environments", i, "promotes_from"),
                f"promotes_from names unknown environment {env.promotes_from!r}",
                f"one of: {', '.join(env_names)}",
            )
    successors: dict[str, list[str]] = {}
    for env in fleet.environments:
        if env.promotes_from is not None:
            successors.setdefault(env.promotes_from, []).append(env.name)
    if len(roots) != 1:
        add(
            at(fleet_src, "environments"),
            f"stage order is not a chain: {len(roots)} environments have no promotes_from",
            "exactly one first stage (e.g. dev) has no promotes_from; each other names its predecessor",
        )
    for name, nexts in sorted(successors.items()):
        if len(nexts) > 1:
            add(
                at(fleet_src, "environments", seen[nexts[1]], "promotes_from"),
                f"stage order is not a chain: {name!r} promotes to {', '.join(nexts)}",
                "each stage promotes to at most one next stage",
            )
    if len(roots) == 1:
        chain: list[str] = []
        node: str | None = roots[0].name
        while node is not None and node not in chain:
            chain.append(node)
            node = successors[node][0] if node in successors else None
        missing = [n for n in env_names if n not in chain]
        if missing:
            add(
                at(fleet_src, "environments", seen[missing[0]], "promotes_from"),
                f"stage order is not a chain: {', '.join(missing)} not reachable from "
                f"{roots[0].name!r} (cycle or branch)",
            )
        prod = [e for e in fleet.environments if e.production]
        if not prod:
            add(at(fleet_src, "environments"), "no environment is marked production: true")
        for env in prod[1:]:
            add(
                at(fleet_src, "environments", seen[env.name], "production"),
                f"more than one production stage: {prod[0].name!r} and {env.name!r}",
                "mark exactly one stage (the last one promoted to) production: true",
            )
    for i, env in enumerate(fleet.environments):
        if env.production and env.list_db:
            add(
                at(fleet_src, "environments", i, "list_db"),
                "list_db must be false in a production environment",
                "Odoo's deployment guide: never expose the database manager in production",
            )

    return seen


def _check_clusters(r: _Report, fleet: FleetSpec, fleet_src: SourceMap) -> dict[str, int]:
    """Unique cluster and node pool names, one default storage class; returns the index
    of each cluster by name."""
    at, add = r.at, r.add
    cluster_names: dict[str, int] = {}
    for i, cl in enumerate(fleet.clusters):
        if cl.name in cluster_names:
            add(at(fleet_src, "clusters", i, "name"), f"duplicate cluster {cl.name!r}")
        cluster_names[cl.name] = i
        pools = [p.name for p in cl.node_pools]
        for j, pool in enumerate(cl.node_pools):
            if pools.index(pool.name) != j:
                add(
                    at(fleet_src, "clusters", i, "node_pools", j, "name"),
                    f"duplicate node pool {pool.name!r}",
                )
        defaults = [s.name for s in cl.storage_classes if s.default]
        if len(defaults) != 1:
            add(
                at(fleet_src, "clusters", i, "storage_classes"),
                f"cluster {cl.name!r} must mark exactly one storage class default: true "
                f"(found {len(defaults)})",
            )

    return cluster_names


def _check_tiers(r: _Report, fleet: FleetSpec, fleet_src: SourceMap) -> None:
    """The four tiers, distinct ranks, known profiles, priced node pools that exist."""
    at, add = r.at, r.add
    for name in ("critical", "high", "standard", "pilot"):
        if name not in fleet.tiers:
            add(
                at(fleet_src, "tiers"),
                f"tier {name!r} is not defined",
                "classification assigns critical, high, standard and pilot: define all four",
            )
    ranks: dict[int, str] = {}
    for name, tier in fleet.tiers.items():
        if tier.rank in ranks:
            add(
                at(fleet_src, "tiers", name, "rank"),
                f"tier {name!r} has the same rank {tier.rank} as {ranks[tier.rank]!r}",
                "ranks order the tiers: give each tier its own (1 is the most demanding)",
            )
        ranks.setdefault(tier.rank, name)
    for name, tier in fleet.tiers.items():
        if tier.resource_profile not in fleet.resource_profiles:
            add(
                at(fleet_src, "tiers", name, "resource_profile"),
                f"unknown resource profile {tier.resource_profile!r}",
                f"one of: {', '.join(sorted(fleet.resource_profiles))}",
            )
    priced_pools = {f"{c.name}/{p.name}" for c in fleet.clusters for p in c.node_pools}
    for key in sorted(set(fleet.pricing.node_month) - priced_pools):
        add(
            at(fleet_src, "pricing", "node_month", key),
            f"pricing.node_month names unknown node pool {key!r}",
            f"'<cluster>/<node pool>', one of: {', '.join(sorted(priced_pools))}",
        )


def _check_plant_identity(
    r: _Report, plant: PlantSpec, src: SourceMap, path: Path, codes: dict[str, Location]
) -> None:
    """File name matches the code; codes are unique across files."""
    at, add = r.at, r.add
    if path.stem != plant.code:
        add(
            at(src, "code"),
            f"file name {path.name!r} does not match code {plant.code!r}",
            f"rename the file to {plant.code}.yaml or change code: to {path.stem}",
        )
    if plant.code in codes:
        first = codes[plant.code]
        add(at(src, "code"), f"duplicate plant code {plant.code!r} (first defined at {first})")
    else:
        codes[plant.code] = at(src, "code")


def _check_plant_environments(
    r: _Report, fleet: FleetSpec, plant: PlantSpec, src: SourceMap, seen: dict[str, int]
) -> None:
    """Known environments, the production one among them."""
    at, add = r.at, r.add
    env_names = [e.name for e in fleet.environments]
    if plant.environments is not None:
        for i, env_name in enumerate(plant.environments):
            if env_name not in seen:
                add(
                    at(src, "environments", i),
                    f"unknown environment {env_name!r}",
                    f"one of: {', '.join(env_names)}",
                )
        if not any(fleet.environments[seen[e]].production for e in plant.environments if e in seen):
            add(at(src, "environments"), "a plant must run in the production environment")


def _check_plant_region(
    r: _Report, plant: PlantSpec, src: SourceMap, fleet_regions: set[str]
) -> None:
    """A region some cluster is in (a VM plant may stand alone: a warning)."""
    at, add = r.at, r.add
    if fleet_regions and plant.region not in fleet_regions:
        # A Kubernetes plant runs on a cluster of its region: a region no cluster is
        # in is a typo or a missing cluster. A VM plant may stand alone in its region,
        # but an unknown one is named all the same (it groups plants and tenants).
        close = difflib.get_close_matches(plant.region, sorted(fleet_regions), n=1)
        add(
            at(src, "region"),
            f"unknown region {plant.region!r}: no cluster of fleet.yaml is in it",
            (f"did you mean {close[0]!r}? " if close else "")
            + f"one of: {', '.join(sorted(fleet_regions))} (the clusters' regions)"
            + (
                "; a VM plant may be alone in its region: keep it if that is so"
                if plant.runtime == "vm"
                else ""
            ),
            "warning" if plant.runtime == "vm" else "error",
        )


def _check_plant_placement(
    r: _Report, fleet: FleetSpec, plant: PlantSpec, src: SourceMap, cluster_names: dict[str, int]
) -> None:
    """A known cluster in the plant's region, and none for a VM plant."""
    at, add = r.at, r.add
    cl_name = plant.placement.cluster
    if plant.runtime == "vm":
        if cl_name is not None:
            add(
                at(src, "placement", "cluster"),
                "a plant with runtime: vm does not run on a Kubernetes cluster",
                "remove placement.cluster or set runtime: kubernetes",
            )
    elif cl_name is not None and cl_name not in cluster_names:
        add(
            at(src, "placement", "cluster"),
            f"unknown cluster {cl_name!r}",
            f"one of: {', '.join(sorted(cluster_names)) or '(no clusters defined)'}",
        )
    elif cl_name is not None:
        region = fleet.clusters[cluster_names[cl_name]].region
        if region != plant.region:
            add(
                at(src, "placement", "cluster"),
                f"cluster {cl_name!r} is in region {region!r}, the plant in {plant.region!r}",
                "pick a cluster in the plant's region (data residency)",
            )


def _check_integrations(r: _Report, plant: PlantSpec, src: SourceMap) -> None:
    """Outbound integrations have an endpoint; names are unique."""
    at, add = r.at, r.add
    for i, integ in enumerate(plant.profile.integrations):
        if integ.direction != "inbound" and integ.endpoint is None:
            add(
                at(src, "profile", "integrations", i),
                f"{integ.direction} integration {integ.name!r} has no endpoint",
                "add endpoint: host:port so the network policy can allow exactly that",
            )
    names = [i.name for i in plant.profile.integrations]
    for i, n in enumerate(names):
        if names.index(n) != i:
            add(at(src, "profile", "integrations", i, "name"), f"duplicate integration {n!r}")


def _check_shifts(r: _Report, plant: PlantSpec, src: SourceMap) -> None:
    """Shifts of one plant do not overlap (a shift may end on the next day)."""
    at, add = r.at, r.add
    # shifts must not overlap
    intervals = [
        (iv, i)
        for i, sh in enumerate(plant.shifts)
        for iv in shift_intervals(sh.start, sh.end, sh.days)
    ]
    intervals.sort()
    reported: set[tuple[int, int]] = set()
    for (a, i), (b, j) in itertools.pairwise(intervals):
        if b[0] < a[1] and i != j and (i, j) not in reported:
            reported.add((i, j))
            si, sj = plant.shifts[i], plant.shifts[j]
            add(
                at(src, "shifts", max(i, j)),
                f"shift {plant.shifts[max(i, j)].name!r} overlaps shift "
                f"{plant.shifts[min(i, j)].name!r} ({si.start}-{si.end} vs {sj.start}-{sj.end})",
                "shifts of one plant must not overlap; a shift may end on the next day",
            )


def _check_overrides(
    r: _Report,
    fleet: FleetSpec,
    plant: PlantSpec,
    src: SourceMap,
    today: dt.date,
    allow_expired: bool,
) -> None:
    """Overrides unexpired and valid for their target; freeze-window rules well formed."""
    at, add = r.at, r.add
    for i, ov in enumerate(plant.overrides):
        where = at(src, "overrides", i)
        if ov.expires < today:
            add(
                at(src, "overrides", i, "expires"),
                f"override of {ov.target} expired on {ov.expires.isoformat()} (owner {ov.owner})",
                "renew it with a new expiry and reason, or remove it",
                "warning" if allow_expired else "error",
            )
        _check_override_value(ov.target, ov.value, fleet, where, add)
    for i, fw in enumerate(plant.freeze_windows):
        if fw.rrule is not None and "UNTIL" in fw.rrule and "COUNT" in fw.rrule:
            add(at(src, "freeze_windows", i, "rrule"), "rrule may not hold both UNTIL and COUNT")


def _cross_checks(
    fleet: FleetSpec,
    fleet_src: SourceMap,
    plants: list[tuple[PlantSpec, SourceMap, Path]],
    today: dt.date,
    allow_expired: bool,
) -> list[Problem]:
    """What one file cannot say: references between fleet.yaml and the plant files,
    orders and uniqueness, each problem at its line."""
    r = _Report()
    at, add = r.at, r.add
    seen = _check_environments(r, fleet, fleet_src)
    cluster_names = _check_clusters(r, fleet, fleet_src)
    _check_tiers(r, fleet, fleet_src)
    codes: dict[str, Location] = {}
    plant_codes = {p.code for p, _, _ in plants}
    fleet_regions = {c.region for c in fleet.clusters}
    for plant, src, path in plants:
        _check_plant_identity(r, plant, src, path, codes)
        _check_plant_environments(r, fleet, plant, src, seen)
        _check_plant_region(r, plant, src, fleet_regions)
        _check_plant_placement(r, fleet, plant, src, cluster_names)
        _check_integrations(r, plant, src)
        _check_shifts(r, plant, src)
        _check_overrides(r, fleet, plant, src, today, allow_expired)
    for i, cl in enumerate(fleet.clusters):
        for j, pool in enumerate(cl.node_pools):
            if pool.dedicated_to is not None and pool.dedicated_to not in plant_codes:
                add(
                    at(fleet_src, "clusters", i, "node_pools", j, "dedicated_to"),
                    f"node pool is dedicated to unknown plant {pool.dedicated_to!r}",
                )
    return r.out


PATTERNS = (
    "shared-multitenant",
    "dedicated-namespace",
    "dedicated-cluster",
    "dedicated-environment",
)


def _check_override_value(
    target: str, value: object, fleet: FleetSpec, where: Location, add: Any
) -> None:
    if target == "pattern" and value not in PATTERNS:
        add(
            where,
            f"override value {value!r} is not a deployment pattern",
            f"one of: {', '.join(PATTERNS)}",
        )
    elif target == "tier" and value not in fleet.tiers:
        add(
            where,
            f"override value {value!r} is not a tier",
            f"one of: {', '.join(sorted(fleet.tiers))}",
        )
    elif target == "resource_profile" and value not in fleet.resource_profiles:
        add(
            where,
            f"override value {value!r} is not a resource profile",
            f"one of: {', '.join(sorted(fleet.resource_profiles))}",
        )
    elif target in ("web_replicas", "postgres_instances", "users_per_worker") and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        add(where, f"override of {target} needs a positive integer, got {value!r}")
    elif target == "pgbouncer" and not isinstance(value, bool):
        add(where, f"override of pgbouncer needs true or false, got {value!r}")


PLANT_SUFFIXES = (".yaml", ".yml")


def _plant_files(
    plants_dir: Path, shown: typing.Callable[[Path], str]
) -> tuple[list[Path], list[Problem]]:
    """The plant files directly in ``plants/``, and a warning for every entry ignored.

    Hidden entries (``.gitkeep``) are skipped silently; anything else that is not read
    (a sub-folder with YAML files in it, a file of another type) is named, so a plant
    put in the wrong place is never silently missing from the fleet.
    """
    if not plants_dir.is_dir():
        return [], []
    files: list[Path] = []
    ignored: list[Problem] = []
    for entry in sorted(plants_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.suffix.lower() in PLANT_SUFFIXES and not entry.is_dir():
            files.append(entry)  # read_yaml refuses what is not a regular file
        elif entry.is_dir() and not entry.is_symlink():
            nested = sorted(
                p.relative_to(plants_dir).as_posix()
                for p in entry.rglob("*")
                if p.suffix.lower() in PLANT_SUFFIXES
            )
            if nested:
                ignored.append(
                    Problem(
                        shown(entry),
                        1,
                        1,
                        "",
                        f"ignored: plant files are read only from plants/ itself, not from "
                        f"sub-folders ({', '.join(nested[:3])}{', ...' if len(nested) > 3 else ''})",
                        "move them up into plants/, or out of the fleet repository",
                        "warning",
                    )
                )
        else:
            ignored.append(
                Problem(
                    shown(entry),
                    1,
                    1,
                    "",
                    "ignored: not a plant file (plants/ holds <code>.yaml files)",
                    "rename it to .yaml if it is a plant, or move it out of plants/",
                    "warning",
                )
            )
    return files, ignored


def load_fleet(
    root: Path,
    *,
    today: dt.date,
    allow_expired_overrides: bool = False,
    cache: ParseCache | None = None,
) -> LoadedFleet:
    """Load and validate the fleet repository at ``root`` (a directory or its fleet.yaml).

    ``cache`` (see ``plantops.spec.cache``) skips parsing files whose text was parsed
    before."""
    if root.name == FLEET_FILE and not root.is_dir():
        root = root.parent
    fleet_path = root / FLEET_FILE
    if not root.is_dir() or not os.path.lexists(fleet_path):
        what = "no such directory" if not os.path.lexists(root) else f"no {FLEET_FILE} here"
        if os.path.lexists(root) and not root.is_dir():
            try:
                what = f"not a fleet directory (it is {file_kind(root.stat().st_mode)})"
            except OSError:  # ELOOP, ENOENT through a link: nothing to stat
                what = "a broken symbolic link or link loop, not a fleet directory"
        raise SpecError(
            [Problem(root.as_posix(), 1, 1, "", what, "run `plantops init DIR` to start one")]
        )

    def shown(p: Path) -> str:
        try:
            return p.relative_to(root).as_posix()
        except ValueError:
            return p.as_posix()

    problems: list[Problem] = []
    resolved: dict[Path, Path] = {}  # folders resolved once for this load (links confined)
    data, fleet_src, errs = read_yaml(
        fleet_path, shown(fleet_path), cache, root=root, resolved=resolved
    )
    problems += errs
    fleet: FleetSpec | None = None
    if data is not None:
        fleet, errs = _validated(FleetSpec, data, fleet_src)
        problems += errs

    plant_files, ignored = _plant_files(root / PLANTS_DIR, shown)
    problems += ignored
    if not plant_files:
        problems.append(
            Problem(
                shown(root / PLANTS_DIR), 1, 1, "", "no plant files found", "add plants/<code>.yaml"
            )
        )
    plants: list[tuple[PlantSpec, SourceMap, Path]] = []
    for path in plant_files:
        pdata, psrc, errs = read_yaml(path, shown(path), cache, root=root, resolved=resolved)
        problems += errs
        if pdata is not None:
            plant, errs = _validated(PlantSpec, pdata, psrc)
            problems += errs
            if plant is not None:
                plants.append((plant, psrc, path))

    if fleet is not None:
        problems += _cross_checks(fleet, fleet_src, plants, today, allow_expired_overrides)
    if cache is not None:
        cache.save()  # parses are kept even when validation failed: they were sound
    errors = [p for p in problems if p.severity == "error"]
    if errors or fleet is None:
        raise SpecError(sorted(problems))
    plants.sort(key=lambda t: t[0].code)
    return LoadedFleet(
        root=root,
        fleet=fleet,
        plants=tuple(p for p, _, _ in plants),
        fleet_source=fleet_src,
        plant_sources={p.code: s for p, s, _ in plants},
        warnings=tuple(sorted(problems)),
    )


__all__ = ["LoadedFleet", "Location", "SourceMap", "load_fleet", "read_yaml", "shift_intervals"]

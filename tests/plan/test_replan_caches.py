"""A re-plan through every cache gives the tree a cold plan gives; a cache that is
damaged, truncated, half-written or from another version is ignored, never trusted.

The caches (``docs/performance.md``): parses and positions (``spec.cache``), the plan
memo (``services.plancache``), kept schema verdicts and fleet-wide texts
(``services.rendermemo``) and the tree's file records (``gitops.tree``).
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from plantops import services
from plantops.caches import SEAL, load_sealed, seal, store_sealed, unseal
from plantops.check.schema import SchemaFinding, SchemaValidator
from plantops.services.rendermemo import ObjectMemo
from plantops.spec import ParseCache
from tests.conftest import EXAMPLE, TODAY, read_tree

CACHES = {
    "PLANTOPS_SPEC_CACHE": "specs",
    "PLANTOPS_PLAN_CACHE": "plan",
    "PLANTOPS_RENDER_CACHE": "render",
    "PLANTOPS_TREE_CACHE": "trees",
}


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every plan cache in a folder of this test's own (private, as the real ones)."""
    base = tmp_path / "caches"
    for env, name in CACHES.items():
        (base / name).mkdir(parents=True, mode=0o700)
        monkeypatch.setenv(env, str(base / name))
    return base


def _fleet(tmp_path: Path) -> Path:
    root = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, root)
    return root


def _edit_one_plant(root: Path, name: str) -> None:
    f = root / "plants" / "brno-components.yaml"
    text = f.read_text()
    old = next(line for line in text.splitlines() if line.startswith("name: "))
    f.write_text(text.replace(old, f"name: {name}"))


def _cold(root: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The tree of a plan with every cache disabled, into an empty folder."""
    with monkeypatch.context() as m:
        for env in CACHES:
            m.setenv(env, "")
        services.plan_fleet(root, out, today=TODAY)
    return read_tree(out)


def _plan_counting_validations(root: Path, out: Path) -> tuple[services.PlanResult, int]:
    """A plan, and how many objects the schema gate validated in it."""
    seen: list[str] = []
    original = SchemaValidator.validate

    def counting(
        self: SchemaValidator, obj: dict[str, object], *, file: str = "", document_index: int = 0
    ) -> list[SchemaFinding]:
        seen.append(str(obj.get("kind")))
        return original(self, obj, file=file, document_index=document_index)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(SchemaValidator, "validate", counting)
        res = services.plan_fleet(root, out, today=TODAY)
    return res, len(seen)


def test_warm_replan_after_a_one_plant_edit_equals_a_cold_plan(
    tmp_path: Path, caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fleet(tmp_path)
    out = tmp_path / "warm"
    first = services.plan_fleet(root, out, today=TODAY)
    assert read_tree(out) == _cold(root, tmp_path / "cold-0", monkeypatch)
    for name in ("Brno One", "Brno Two"):
        _edit_one_plant(root, name)
        res, validated = _plan_counting_validations(root, out)
        # only the changed plant's deployments were rendered ...
        assert 0 < res.tree.rendered < len(first.plan.deployments)
        # ... and objects kept from earlier runs were not validated again
        assert validated < res.tree.written
        assert read_tree(out) == _cold(root, tmp_path / f"cold-{name}", monkeypatch)
    # every cache was written, and a run with nothing changed renders nothing
    for sub in CACHES.values():
        assert any((caches / sub).iterdir()), sub
    assert services.plan_fleet(root, out, today=TODAY).tree.rendered == 0


def _truncate(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]


def _flip(blob: bytes) -> bytes:
    middle = len(SEAL) + 32 + (len(blob) - len(SEAL) - 32) // 2
    return blob[:middle] + bytes([blob[middle] ^ 0x01]) + blob[middle + 1 :]


def _payload(blob: bytes) -> bytes:
    payload = unseal(blob)
    assert payload is not None, "the cache file is sealed"
    return payload


def _foreign(blob: bytes) -> bytes:
    """Sealed and intact, but written by another version (its tag differs), or for
    another tree."""
    payload = _payload(blob)
    try:
        data = pickle.loads(payload)
    except pickle.UnpicklingError:  # the tree's records are JSON
        return seal(payload.replace(b'"out":"', b'"out":"/elsewhere', 1))
    if isinstance(data, dict):  # parse cache
        data["tag"] = "0|" + str(data["tag"])
    elif isinstance(data, tuple):  # plan memo, render memo: the scope or tag first
        data = ("another plantops", *data[1:])
    return seal(pickle.dumps(data))


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncate,
    "empty": lambda _blob: b"",
    "garbage": lambda blob: b"\x80\x05garbage" * (len(blob) // 9 + 1),
    "byte-flipped": _flip,
    "unsealed": _payload,  # a plain pickle (or JSON), as an older plantops wrote them
    "other-version": _foreign,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_caches_are_ignored_and_the_tree_stays_a_cold_plans(
    tmp_path: Path, caches: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    root = _fleet(tmp_path)
    out = tmp_path / "warm"
    services.plan_fleet(root, out, today=TODAY)
    _edit_one_plant(root, "Brno Damaged")
    services.plan_fleet(root, out, today=TODAY)  # base files and deltas both exist now
    files = sorted(p for p in caches.rglob("*") if p.is_file())
    assert {p.parent.name for p in files} == set(CACHES.values())
    assert any(p.suffix == ".delta" for p in files)
    for p in files:
        p.write_bytes(DAMAGE[damage](p.read_bytes()))
    _edit_one_plant(root, "Brno After Damage")
    services.plan_fleet(root, out, today=TODAY)
    assert read_tree(out) == _cold(root, tmp_path / "cold", monkeypatch)
    # and the caches were rebuilt: the next edit is served by them again
    _edit_one_plant(root, "Brno Healed")
    res, validated = _plan_counting_validations(root, out)
    assert validated < res.tree.written
    assert read_tree(out) == _cold(root, tmp_path / "cold-healed", monkeypatch)


def test_a_writer_killed_before_its_rename_leaves_the_old_cache_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``store_sealed`` writes a temporary file and renames it over the cache: killed
    before the rename (kill -9), the cache file is the previous one, whole, and the
    half-written temporary file is never read; a cache file cut short is refused."""
    path = tmp_path / "c" / "x.pickle"
    store_sealed(path, b"old")

    def killed(self: Path, target: object) -> Path:
        raise SystemExit("killed before the rename")

    data = pickle.dumps({"big": "x" * 100_000})
    with monkeypatch.context() as m:
        m.setattr(Path, "replace", killed)
        with pytest.raises(SystemExit):
            store_sealed(path, data)
    leftovers = [p for p in path.parent.iterdir() if p != path]
    assert leftovers, "the temporary file of the killed writer is still there"
    leftovers[0].write_bytes(leftovers[0].read_bytes()[:1000])  # half-written
    assert load_sealed(path) == b"old"
    store_sealed(path, data)
    assert load_sealed(path) == data
    path.write_bytes(path.read_bytes()[:-1])  # a write cut short under the final name
    assert load_sealed(path) is None


def test_parse_cache_keeps_a_one_file_change_in_its_delta(tmp_path: Path) -> None:
    from plantops.spec import load_fleet

    root = _fleet(tmp_path)
    path = tmp_path / "specs" / "fleet.pickle"
    load_fleet(root, today=TODAY, cache=ParseCache(path))
    base = path.read_bytes()
    _edit_one_plant(root, "Brno Delta")
    cache = ParseCache(path)
    edited = load_fleet(root, today=TODAY, cache=cache)
    assert path.read_bytes() == base, "the base was not rewritten for one file"
    assert path.with_suffix(".delta").is_file()
    digest = edited.plant_sources["brno-components"].digest
    assert ParseCache(path).get(digest) is not None, "the edited file's parse is kept"
    # a delta of another base (the base rewritten since) is ignored
    store_sealed(path.with_suffix(".delta"), path.with_suffix(".delta").read_bytes())
    assert ParseCache(path).get(digest) is None


def test_render_memo_keys_are_exact(tmp_path: Path) -> None:
    """Equal objects share a key; a different type or key order (which the emitter
    follows) does not, nor does another scope."""
    key = ObjectMemo.key
    assert key("s", {"a": 1, "b": "x"}) == key("s", {"a": 1, "b": "x"})
    assert key("s", {"a": 1, "b": "x"}) != key("s", {"b": "x", "a": 1})
    assert key("s", {"a": 1}) != key("s", {"a": 1.0})
    assert key("s", {"a": 1}) != key("s", {"a": True})
    assert key("s", {"1": "a"}) != key("s", {1: "a"})
    assert key("s", {"a": 1}) != key("t", {"a": 1})
    assert key(None, {"a": 1}) is None
    memo = ObjectMemo(tmp_path / "m.pickle", "code")
    k = key("s", {"a": 1})
    memo.put(k, "a: 1\n")
    memo.save()
    assert ObjectMemo(tmp_path / "m.pickle", "code").get(k) == "a: 1\n"
    assert ObjectMemo(tmp_path / "m.pickle", "other code").get(k) is None
    (tmp_path / "m.pickle").chmod(0o666)
    assert ObjectMemo(tmp_path / "m.pickle", "code").get(k) is None, "writable by others"


def test_the_releases_folder_plan_looks_for_is_the_pins_folder() -> None:
    from plantops.release.pins import RELEASES_DIR

    assert services.RELEASES_FOLDER == RELEASES_DIR

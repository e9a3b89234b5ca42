"""Release status, approvals and the ledger through the server, over the release use
cases the CLI calls: the approval carries the signed-in identity into the ledger, the
release's author is refused (403), the ledger pages and ``verify`` runs live, and a
ledger tampered in the database shows as broken on the API and the page."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest

from plantops.server.svg import dependency_graph
from plantops.services import release as release_services
from plantops.store.ledger import open_ledger
from tests.addons.test_addons import addon
from tests.release.fleet import IMAGE, release_fleet
from tests.server.conftest import SCOPED, Server
from tests.server.test_api import assert_problem


@pytest.fixture
def server_fleet(tmp_path: Path) -> Path:
    fleet = release_fleet(tmp_path)
    addon(fleet / "addons", "acme_mrp", depends=["mrp"])
    return fleet


def create(server: Server, role: str) -> dict[str, Any]:
    r = server.client.post(
        "/api/releases",
        headers=server.as_role(role),
        json={"image": IMAGE, "addons_paths": ["addons"]},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def subject(server: Server, role: str) -> str:
    token_id = server.tokens[role].split("_")[1]
    return f"token:{token_id}"


def approve(server: Server, release: str, role: str, stage: str, **extra: str) -> Any:
    return server.client.post(
        f"/api/releases/{release}/approvals",
        headers=server.as_role(role),
        json={"stage": stage, **extra},
    )


def ledger_kinds(server: Server) -> list[str]:
    led = open_ledger(server.settings.db_url)
    try:
        return [e.kind for e in led.iter_entries()]
    finally:
        led.close()


def test_create_records_the_author_and_keeps_the_lock(server: Server) -> None:
    made = create(server, "platform-engineer")
    assert made["author"] == subject(server, "platform-engineer") and made["ledger_seq"] == 1
    index = release_services.release_locks(server.settings.locks_dir)
    assert index.find(made["id"]).read_text(encoding="utf-8") == made["lock"]
    # the same release again by its author: recorded once
    assert create(server, "platform-engineer")["ledger_seq"] is None
    assert ledger_kinds(server) == ["release"]


def test_status_matches_the_use_case(server: Server) -> None:
    made = create(server, "platform-engineer")
    r = server.client.get(f"/api/releases/{made['id']}", headers=server.as_role("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    s = server.settings
    lock = release_services.release_locks(s.locks_dir).find(made["id"])
    now = dt.datetime.now(dt.UTC)
    direct = release_services.release_status(s.fleet, lock, db=s.db_url, now=now).as_dict()
    assert body["release"] == made["id"] and body["author"] == subject(server, "platform-engineer")
    assert [st["stage"] for st in body["stages"]] == ["dev", "test", "staging", "prod"]
    assert [st["gates"] for st in body["stages"]] == [st["gates"] for st in direct["stages"]]
    assert [[w["plants"] for w in st["waves"]] for st in body["stages"]] == [
        [w["plants"] for w in st["waves"]] for st in direct["stages"]
    ]
    # the bare hex works too; an unknown release is a 404 problem
    hexid = made["id"].removeprefix("sha256:")
    assert (
        server.client.get(f"/api/releases/{hexid}", headers=server.as_role("viewer")).json()[
            "release"
        ]
        == made["id"]
    )
    missing = server.client.get(
        "/api/releases/sha256:" + "0" * 64, headers=server.as_role("viewer")
    )
    assert "no lock" in assert_problem(missing, 404)["detail"]


def test_approval_carries_the_signed_in_identity(server: Server) -> None:
    made = create(server, "platform-engineer")
    r = approve(server, made["id"], "release-manager", "staging", comment="QA signed off")
    assert r.status_code == 201, r.text
    entry = r.json()
    rm = subject(server, "release-manager")
    assert entry["kind"] == "approval" and entry["actor"] == rm and entry["stage"] == "staging"
    assert entry["payload"] == {"user": rm, "role": "release-manager", "comment": "QA signed off"}
    status = server.client.get(f"/api/releases/{made['id']}", headers=server.as_role("auditor"))
    assert status.json()["approvals"]["staging"] == [
        {"user": rm, "role": "release-manager", "seq": entry["seq"], "comment": "QA signed off"}
    ]
    events = server.client.get("/api/events", headers=server.as_role("auditor")).json()["items"]
    assert [e["type"] for e in events][-1] == "release.approved"
    # twice by the same person: a clear 400, nothing recorded
    again = approve(server, made["id"], "release-manager", "staging")
    assert "already" in assert_problem(again, 400)["detail"]
    assert ledger_kinds(server) == ["release", "approval"]


def test_the_author_cannot_approve(server: Server) -> None:
    made = create(server, "release-manager")
    r = approve(server, made["id"], "release-manager", "prod")
    body = assert_problem(r, 403)
    assert "author of a release cannot approve it" in body["detail"]
    assert ledger_kinds(server) == ["release"]
    events = server.client.get("/api/events", headers=server.as_role("auditor")).json()["items"]
    assert "release.approved" not in [e["type"] for e in events]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"stage": "moon"}, 400, "not a stage"),
        ({"stage": ""}, 422, "stage"),
        ({"stage": "prod", "extra": 1}, 422, "extra"),
        ({"comment": "no stage"}, 422, "stage"),
    ],
)
def test_bad_approvals_record_nothing(
    server: Server, body: dict[str, Any], status: int, words: str
) -> None:
    made = create(server, "platform-engineer")
    r = server.client.post(
        f"/api/releases/{made['id']}/approvals",
        headers=server.as_role("release-manager"),
        json=body,
    )
    assert words in assert_problem(r, status)["detail"]
    unknown = approve(server, "sha256:" + "1" * 64, "release-manager", "prod")
    assert_problem(unknown, 404)
    assert ledger_kinds(server) == ["release"]


def test_ledger_pages_and_verifies(server: Server) -> None:
    made = create(server, "platform-engineer")
    assert approve(server, made["id"], "release-manager", "staging").status_code == 201
    assert approve(server, made["id"], "release-manager", "prod").status_code == 201
    h = server.as_role("viewer")
    first = server.client.get("/api/ledger?limit=2", headers=h).json()
    assert first["total"] == 3 and [e["seq"] for e in first["items"]] == [1, 2]
    rest = server.client.get(f"/api/ledger?after={first['next_after']}", headers=h).json()
    assert [e["kind"] for e in rest["items"]] == ["approval"] and rest["next_after"] == 3
    assert rest["items"][0]["stage"] == "prod"
    verify = server.client.get("/api/ledger/verify", headers=h).json()
    assert verify["ok"] is True and verify["entries"] == 3 and verify["head_seq"] == 3
    assert verify == release_services.ledger_verify(server.settings.db_url).as_dict()
    assert_problem(server.client.get("/api/ledger?limit=0", headers=h), 422)
    assert_problem(server.client.get("/api/ledger"), 401)


def test_a_tampered_ledger_shows_broken(server: Server) -> None:
    made = create(server, "platform-engineer")
    assert approve(server, made["id"], "release-manager", "prod").status_code == 201
    db_file = server.settings.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(db_file) as conn:  # someone edits the approval in the database
        conn.execute("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 2")
    h = server.as_role("auditor")
    verify = server.client.get("/api/ledger/verify", headers=h).json()
    assert verify["ok"] is False and verify["first_bad_seq"] == 2
    assert "edited" in verify["reason"]
    page = server.client.get("/ledger", headers=h)
    assert page.status_code == 200
    assert 'data-ok="false"' in page.text and "BROKEN at entry 2" in page.text
    assert '<tr data-seq="2" class="bad">' in page.text


def test_matrix_page_shows_cells_and_approves_by_form(server: Server) -> None:
    made = create(server, "platform-engineer")
    s = server.settings
    lock = release_services.release_locks(s.locks_dir).find(made["id"])
    now = dt.datetime.now(dt.UTC)
    for _ in range(6):  # every wave of dev (no soak between dev's waves)
        result = release_services.promote_release(
            s.fleet, lock, to="dev", actor="bob", now=now, db=s.db_url
        )
        if result.message:
            break
        assert result.promoted, result.as_dict()
    h = server.as_role("release-manager")
    page = server.client.get("/promotions", headers=h)
    assert page.status_code == 200, page.text
    assert f'data-release="{made["id"]}"' in page.text
    assert 'data-stage="dev" data-state="promoted"' in page.text
    # prod's first wave is evaluated: no approval yet, staging never had the release
    prod = page.text.split('data-stage="prod"', 1)[1].split("</td>", 1)[0]
    assert prod.startswith(' data-state="blocked"'), prod
    assert "approvals ✗" in prod and "soak ✗" in prod and "no approval yet" in prod
    assert page.text.count('class="approve"') == 2  # staging and prod ask for approvals
    r = server.client.post(
        f"/promotions/{made['id']}/approvals",
        headers=h,
        data={"stage": "prod", "comment": "go"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "approved prod" in unquote(r.headers["location"])
    after = server.client.get("/promotions", headers=h).text
    assert subject(server, "release-manager") in after and "— go" in after
    assert after.count('class="approve"') == 1  # approved prod already
    # the author and the read-only roles see no Approve button
    for role in ("platform-engineer", "auditor", "viewer", "plant-it"):
        assert (
            'class="approve"'
            not in server.client.get("/promotions", headers=server.as_role(role)).text
        )
    nav = server.client.get("/ledger", headers=h).text
    assert 'href="/promotions"' in nav and 'href="/ledger"' in nav and 'data-ok="true"' in nav


def wave(state: str, verdicts: list[bool]) -> dict[str, Any]:
    return {
        "wave": 1,
        "state": state,
        "plants": ["a", "b"],
        "promoted": {"a": "2026-12-01T00:00:00+00:00"} if state != "pending" else {},
        "gates": [
            {
                "plant": "b",
                "ok": ok,
                "next_allowed": None,
                "gates": [{"gate": "soak", "ok": ok, "reasons": [] if ok else ["2 h left"]}],
            }
            for ok in verdicts
        ],
    }


@pytest.mark.parametrize(
    ("state", "verdicts", "cell"),
    [
        ("done", [], "promoted"),
        ("partial", [True], "partial"),
        ("pending", [False], "blocked"),
        ("pending", [True], "ready"),
        ("pending", [], "pending"),
    ],
)
def test_wave_cells(state: str, verdicts: list[bool], cell: str) -> None:
    from plantops.server.matrix import stage_state, wave_cell

    got = wave_cell(wave(state, verdicts))
    assert got["state"] == cell and stage_state([got]) == cell
    if cell == "blocked":
        assert got["verdicts"][0]["failed"] == [{"gate": "soak", "reasons": ["2 h left"]}]


def test_the_author_gets_no_approve_form() -> None:
    from plantops.server.matrix import release_row

    status = {
        "release": "sha256:" + "a" * 64,
        "author": "alice",
        "approvals": {"prod": [{"user": "bob", "role": "release-manager", "seq": 2}]},
        "stages": [{"stage": "prod", "gates": ["approvals"], "waves": [wave("pending", [])]}],
    }
    assert not release_row(status, approver="alice")["stages"][0]["may_approve"]
    assert not release_row(status, approver="bob")["stages"][0]["may_approve"]  # approved
    assert release_row(status, approver="carol")["stages"][0]["may_approve"]
    assert not release_row(status, approver=None)["stages"][0]["may_approve"]


def test_a_plant_it_sees_only_ledger_entries_of_its_plants(server: Server) -> None:
    made = create(server, "platform-engineer")
    s = server.settings
    lock = release_services.release_locks(s.locks_dir).find(made["id"])
    now = dt.datetime.now(dt.UTC)
    for _ in range(6):  # every wave of dev: promotions naming their plants
        result = release_services.promote_release(
            s.fleet, lock, to="dev", actor="bob", now=now, db=s.db_url
        )
        if result.message:
            break
    everything = server.client.get("/api/ledger?limit=1000", headers=server.as_role("auditor"))
    entries = everything.json()["items"]
    promotions = [e for e in entries if e["kind"] == "promotion"]
    mine = [e for e in promotions if SCOPED in e["payload"]["plants"]]
    assert mine and len(mine) < len(promotions), [e["payload"]["plants"] for e in promotions]
    it = server.as_role("plant-it")
    body = server.client.get("/api/ledger?limit=1000", headers=it).json()
    assert [e["seq"] for e in body["items"]] == [e["seq"] for e in mine]
    assert body["total"] == len(mine)  # not the release record, not other plants' waves
    # cursor paging over the plant's entries only
    first = server.client.get("/api/ledger?limit=1", headers=it).json()
    assert [e["seq"] for e in first["items"]] == [mine[0]["seq"]]
    rest = server.client.get(f"/api/ledger?after={first['next_after']}", headers=it).json()
    assert [e["seq"] for e in rest["items"]] == [e["seq"] for e in mine[1:]]
    # the page likewise
    page = server.client.get("/ledger", headers=it).text
    shown = {int(seq) for seq in re.findall(r'<tr data-seq="(\d+)"', page)}
    assert shown == {e["seq"] for e in mine}
    assert len(
        re.findall(
            r'<tr data-seq="', server.client.get("/ledger", headers=server.as_role("auditor")).text
        )
    ) == len(entries)


def test_addon_graph_of_a_release_is_svg(server: Server) -> None:
    # acme_mrp (fixture) depends on mrp (Odoo's); add a layered chain inside the release
    addons = server.settings.fleet / "addons"
    addon(addons, "acme_base", depends=["base"])
    addon(addons, "acme_quality", depends=["acme_base", "acme_mrp", "stock"])
    addon(addons, "acme_report", depends=["acme_quality", "acme_base"])
    addon(addons, "acme_x_y", depends=["acme_base"])
    made = create(server, "release-manager")
    r = server.client.get(f"/api/releases/{made['id']}/graph.svg", headers=server.as_role("viewer"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ElementTree.fromstring(r.content)  # well-formed XML
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes = {
        g.get("data-addon"): int(g.get("data-depth", "-1")) for g in root.iterfind(".//s:g", ns)
    }
    assert nodes == {
        "acme_base": 0, "acme_mrp": 0, "acme_quality": 1, "acme_report": 2, "acme_x_y": 1,
    }  # fmt: skip
    edges = {(e.get("data-from"), e.get("data-to")) for e in root.iterfind(".//s:line", ns)}
    assert edges == {
        ("acme_quality", "acme_base"), ("acme_quality", "acme_mrp"),
        ("acme_report", "acme_quality"), ("acme_report", "acme_base"),
        ("acme_x_y", "acme_base"),
    }  # fmt: skip
    # rows by depth: deeper addons drawn higher up; the same release, the same picture
    y = {
        g.get("data-addon"): float(g.find("s:rect", ns).get("y"))
        for g in root.iterfind(".//s:g", ns)
    }  # type: ignore[union-attr]
    assert y["acme_report"] < y["acme_quality"] < y["acme_base"] == y["acme_mrp"]
    again = server.client.get(
        f"/api/releases/{made['id']}/graph.svg", headers=server.as_role("auditor")
    )
    assert again.content == r.content
    titles = [t.text or "" for t in root.iterfind(".//s:g/s:title", ns)]
    assert any("also depends on stock" in t for t in titles)
    # the matrix links it; an unknown release is a problem document
    assert f"/api/releases/{made['id']}/graph.svg" in server.client.get(
        "/promotions", headers=server.as_role("viewer")
    ).text.replace("%3A", ":")
    assert_problem(
        server.client.get(
            f"/api/releases/sha256:{'0' * 64}/graph.svg", headers=server.as_role("viewer")
        ),
        404,
    )
    assert_problem(server.client.get(f"/api/releases/{made['id']}/graph.svg"), 401)
    # acme_report changes after the release: its locked depends are no longer known
    (addons / "acme_report" / "__init__.py").write_text("# edited\n", encoding="utf-8")
    changed = ElementTree.fromstring(
        server.client.get(
            f"/api/releases/{made['id']}/graph.svg", headers=server.as_role("viewer")
        ).content
    )
    edges = {(e.get("data-from"), e.get("data-to")) for e in changed.iterfind(".//s:line", ns)}
    assert not any(src == "acme_report" for src, _ in edges) and len(edges) == 3
    report = next(g for g in changed.iterfind(".//s:g", ns) if g.get("data-addon") == "acme_report")
    assert "source not found with the locked checksum" in (
        report.findtext("s:title", namespaces=ns) or ""
    )


def test_graph_svg_escapes_every_text() -> None:
    hostile = "<script>alert('x')</script>&\""
    text = dependency_graph(
        [(hostile, hostile, 1, hostile), ("b", "b 1.0", 0, "b")],
        [(hostile, "b"), ("b", "missing")],
        title=hostile,
    )
    root = ElementTree.fromstring(text)
    ns = {"s": "http://www.w3.org/2000/svg"}
    assert "<script" not in text and root.find(".//s:script", ns) is None
    assert root.findtext("s:title", namespaces=ns) == hostile
    assert [g.get("data-addon") for g in root.iterfind(".//s:g", ns)] == [hostile, "b"]
    assert [e.get("data-from") for e in root.iterfind(".//s:line", ns)] == [
        hostile
    ]  # not to "missing"


def promote(server: Server, release: str, role: str, **body: Any) -> Any:
    return server.client.post(
        f"/api/releases/{release}/promotions", headers=server.as_role(role), json=body
    )


def test_promotion_from_the_server_is_the_cli_s_promotion_as_the_signed_in_identity(
    server: Server,
) -> None:
    made = create(server, "platform-engineer")
    # dry run first: verdicts, nothing recorded
    dry = promote(server, made["id"], "release-manager", stage="dev", dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and dry.json()["ledger"] == []
    assert ledger_kinds(server) == ["release"]
    r = promote(server, made["id"], "release-manager", stage="dev")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["stage"] == "dev" and doc["promoted"], doc
    assert all(v["ok"] for v in doc["plants"] if v["plant"] in doc["promoted"])
    rm = subject(server, "release-manager")
    led = open_ledger(server.settings.db_url)
    try:
        promotions = [e for e in led.iter_entries() if e.kind == "promotion"]
    finally:
        led.close()
    assert [e.seq for e in promotions] == doc["ledger"]
    assert {e.actor for e in promotions} == {rm}
    events = server.client.get("/api/events", headers=server.as_role("auditor")).json()["items"]
    promoted_events = [e for e in events if e["type"] == "release.promoted"]
    assert {e["plant"] for e in promoted_events} == set(doc["promoted"])
    # the same wave again: nothing left to promote in it, nothing new in the ledger
    before = ledger_kinds(server)
    again = promote(server, made["id"], "release-manager", stage="dev", wave=doc["wave"])
    assert again.status_code == 200, again.text
    assert not again.json()["promoted"] and ledger_kinds(server) == before


def test_a_blocked_promotion_is_a_verdict_and_records_nothing(server: Server) -> None:
    made = create(server, "platform-engineer")
    before = ledger_kinds(server)
    r = promote(server, made["id"], "platform-engineer", stage="prod")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["promoted"] == [] and doc["ledger"] == []
    assert doc["plants"] and not any(v["ok"] for v in doc["plants"])
    failed = {g["gate"] for v in doc["plants"] for g in v["gates"] if not g["ok"]}
    assert "approvals" in failed or "soak" in failed, failed
    assert ledger_kinds(server) == before


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"stage": "nope"}, 400, "nope"),
        ({"stage": "dev", "plants": ["no-such-plant"]}, 400, "no-such-plant"),
        ({"stage": "dev", "wave": 0}, 422, "wave"),
        ({"stage": "dev", "force": True}, 422, "force"),
        ({}, 422, "stage"),
    ],
)
def test_bad_promotions_are_problems_and_record_nothing(
    server: Server, body: dict[str, Any], status: int, words: str
) -> None:
    made = create(server, "platform-engineer")
    before = ledger_kinds(server)
    r = promote(server, made["id"], "release-manager", **body)
    assert words in str(assert_problem(r, status)), r.text
    assert ledger_kinds(server) == before


def test_matrix_page_promotes_by_form(server: Server) -> None:
    made = create(server, "platform-engineer")
    h = server.as_role("release-manager")
    page = server.client.get("/promotions", headers=h)
    assert page.status_code == 200
    assert f'action="/promotions/{made["id"]}/promotions"' in page.text
    assert "Promote to dev" in page.text
    r = server.client.post(
        f"/promotions/{made['id']}/promotions",
        headers=h,
        data={"stage": "dev"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    done = unquote(r.headers["location"])
    assert re.search(r"dev wave 1: [1-9]\d* promoted", done), done
    assert "promotion" in ledger_kinds(server)
    # a viewer sees no Promote button
    assert (
        "Promote to" not in server.client.get("/promotions", headers=server.as_role("viewer")).text
    )


def test_addon_depths_need_no_recursion_and_skip_cycles() -> None:
    from plantops.services.release import _depths

    chain = {f"a{i}": [f"a{i + 1}"] for i in range(4999)}  # deeper than the recursion limit
    depth = _depths(sorted([*chain, "a4999"]), chain)
    assert depth["a0"] == 4999 and depth["a4999"] == 0
    assert _depths(["x", "y", "z"], {"x": ["y"], "y": ["z"], "z": ["x"]}) == {
        "z": 0,
        "y": 1,
        "x": 2,
    }
    assert _depths(["a", "b", "c", "d"], {"a": ["b", "c"], "b": ["d"]})["a"] == 2

"""Who is asking, and may they: API tokens, OIDC sessions, roles, CSRF.

A request is authenticated by ``Authorization: Bearer <token>`` (an API token from
``plantops token create``) or by the signed session cookie an OIDC sign-in set.
Cookie-authenticated writes must carry the session's CSRF token (a form field
``csrf_token`` or the ``X-CSRF-Token`` header); bearer requests carry no ambient
credential, so they need none.

Roles and what they may do (``PERMISSIONS``) are data, so the matrix test and the
docs read the same table.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from plantops.server.problems import ProblemError
from plantops.server.state import ServerState, utcnow
from plantops.store.server import ROLES

# action → roles allowed. plant-it is allowed only for its own plants (checked per call).
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "read.audit": frozenset({"platform-engineer", "auditor"}),
    "plan.write": frozenset({"platform-engineer", "plant-it"}),
    "release.create": frozenset({"platform-engineer", "release-manager"}),
    # The approver's role goes into the ledger, and fleet.yaml's approval rules name the
    # roles that count (releases.stages.*.approvals.roles); release-manager is the one
    # server role those rules know. The release's author is refused by the ledger guard.
    "release.approve": frozenset({"release-manager"}),
    # Promotion is gated by the stage's own gates (approvals among them); who may start
    # one is who runs releases: the platform engineer and the release manager.
    "release.promote": frozenset({"platform-engineer", "release-manager"}),
    "token.admin": frozenset({"platform-engineer"}),
    "webhook.admin": frozenset({"platform-engineer"}),
}
PLANT_SCOPED = frozenset({"plant-it"})


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    plants: frozenset[str]  # a plant-it's scope; empty for the other roles
    via: str  # "token" or "session"

    def may(self, action: str) -> bool:
        return self.role in PERMISSIONS[action]

    def may_touch(self, plant: str) -> bool:
        return self.role not in PLANT_SCOPED or plant in self.plants

    @property
    def plant_scoped(self) -> bool:
        """True for a role that sees only its own plants (plant-it)."""
        return self.role in PLANT_SCOPED


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.plantops
    return state


def principal_or_none(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProblemError(401, "Authorization must be 'Bearer <token>'", slug="unauthorized")
        record = state_of(request).store.authenticate(token.strip(), now=utcnow())
        if record is None:
            raise ProblemError(
                401,
                "the token is unknown, expired or revoked; create one with `plantops token create`",
                slug="unauthorized",
            )
        return Principal(record.subject, record.role, frozenset(record.plants), "token")
    user = request.session.get("user") if "session" in request.scope else None
    if isinstance(user, dict) and user.get("role") in ROLES:
        return Principal(
            str(user.get("sub", "")),
            str(user["role"]),
            frozenset(user.get("plants", ())),
            "session",
        )
    return None


def authenticated(request: Request) -> Principal:
    found = principal_or_none(request)
    if found is None:
        raise ProblemError(
            401,
            "sign in at /auth/login or send 'Authorization: Bearer <token>'",
            slug="unauthorized",
        )
    return found


def require(action: str) -> Callable[[Request], Principal]:
    """A route dependency: the caller, if their role may do ``action`` (else 401/403).
    Cookie-authenticated writes must also pass the CSRF check."""

    def dependency(request: Request) -> Principal:
        who = authenticated(request)
        if not who.may(action):
            raise ProblemError(
                403, f"role {who.role} may not {action}", slug="forbidden", action=action
            )
        if who.via == "session" and request.method not in ("GET", "HEAD", "OPTIONS"):
            check_csrf_header(request)
        return who

    dependency.__name__ = f"require_{action.replace('.', '_')}"
    setattr(dependency, "plantops_action", action)  # noqa: B010 - read by the matrix test
    return dependency


def require_plants(who: Principal, plants: Iterable[str]) -> None:
    outside = sorted(p for p in plants if not who.may_touch(p))
    if outside:
        raise ProblemError(
            403,
            f"role {who.role} is scoped to {', '.join(sorted(who.plants))}; not {', '.join(outside)}",
            slug="forbidden",
        )


# --- CSRF -------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def _csrf_ok(request: Request, sent: str) -> bool:
    expected = request.session.get("csrf")
    return isinstance(expected, str) and bool(sent) and hmac.compare_digest(expected, sent)


def check_csrf_header(request: Request) -> None:
    if not _csrf_ok(request, request.headers.get("x-csrf-token", "")):
        raise ProblemError(403, "missing or wrong X-CSRF-Token header", slug="csrf")


def check_csrf_form(request: Request, form: dict[str, Any]) -> None:
    sent = form.get("csrf_token")
    if not _csrf_ok(request, sent if isinstance(sent, str) else ""):
        raise ProblemError(403, "missing or wrong CSRF token; reload the page", slug="csrf")

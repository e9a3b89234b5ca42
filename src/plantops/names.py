"""The one rule for every name that becomes a path, an object key or a catalog key.

A plant code, an environment, a database name, a backup id or a store prefix typed on
the command line (or read from a dump) ends up in a file-system path or an S3 key
(``<plant>/<env>/<stamp>-<id>/…``). ``prod/../../x`` must never get that far: each kind
of name is checked here, once, against a fixed pattern that cannot spell a separator,
``.``/``..``, a NUL or a control character; a refusal is a :class:`BadName`
(a :class:`~plantops.errors.UserError`, exit 2) naming the option and the rule.

Pure: no I/O, nothing printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plantops.errors import UserError


@dataclass(frozen=True)
class NameRule:
    kind: str
    pattern: re.Pattern[str]
    max_bytes: int
    words: str
    """The rule as a user reads it."""


# RFC 1123 DNS label (what the fleet spec and Kubernetes namespaces use), with "_" also
# allowed so that a plant named after an Odoo database (``odoo_lyon``) is still a label.
LABEL = NameRule(
    "label",
    re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?"),
    63,
    "lowercase letters, digits, '-' and '_', starting and ending with a letter or digit,"
    " at most 63 characters",
)
# addons/web/controllers/database.py DBNAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]+$'
# (odoo/service/db.py DB_NAME_RE in newer series): what Odoo's database manager accepts
# (one character too, as PostgreSQL allows), within
# PostgreSQL's NAMEDATALEN - 1 = 63 bytes (longer identifiers are silently truncated by
# the server, so two names could collide). The name also becomes the filestore folder.
DATABASE = NameRule(
    "database",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"),
    63,
    "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63"
    " characters (Odoo's database-name rule)",
)
# The catalog's ids are uuid4().hex[:12]; commands accept a unique prefix.
BACKUP_ID = NameRule(
    "backup id",
    re.compile(r"[0-9a-f]{1,12}"),
    12,
    "1 to 12 lowercase hexadecimal digits (an id or a prefix from `plantops backup list`)",
)
# A pgBackRest stanza becomes a folder of the repository (archive/<stanza>, backup/<stanza>)
# and a command-line argument (--stanza=…): the database-name rule, which also covers the
# names CloudNativePG and the pgBackRest user guide use (main, demo, odoo-lyon).
STANZA = NameRule(
    "pgBackRest stanza",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"),
    63,
    "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63" " characters",
)
# One segment of an object-store prefix (s3://bucket/<seg>/<seg>…).
PREFIX_SEGMENT = NameRule(
    "store prefix",
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"),
    128,
    "'/'-separated segments of letters, digits, '.', '_' and '-', none starting with '.'",
)


def _shown(value: str) -> str:
    # repr() escapes NUL and control characters; long values are cut so a 1 MB name
    # does not become a 1 MB error message.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…'"


class BadName(UserError):
    """A name that would become a path or key does not follow its rule (exit 2)."""

    def __init__(self, option: str, value: str, rule: NameRule) -> None:
        self.option, self.value, self.rule = option, value, rule
        super().__init__(f"{option} {_shown(value)} is not a valid {rule.kind}: use {rule.words}")


def check_name(value: str, rule: NameRule, option: str) -> str:
    """``value`` if it follows ``rule``; :class:`BadName` naming ``option`` otherwise."""
    if (
        not isinstance(value, str)
        or len(value.encode("utf-8", "surrogatepass")) > rule.max_bytes
        or rule.pattern.fullmatch(value) is None
    ):
        raise BadName(option, str(value), rule)
    return value


def check_label(value: str, option: str) -> str:
    return check_name(value, LABEL, option)


def check_database(value: str, option: str) -> str:
    return check_name(value, DATABASE, option)


def check_backup_id(value: str, option: str) -> str:
    return check_name(value, BACKUP_ID, option)


def check_prefix(value: str, option: str) -> str:
    """An object-store prefix: empty, or segments that each follow the segment rule."""
    stripped = value.strip("/")
    if not stripped:
        return stripped
    if len(stripped) > 512:
        raise BadName(option, value, PREFIX_SEGMENT)
    for segment in stripped.split("/"):
        if PREFIX_SEGMENT.pattern.fullmatch(segment) is None:
            raise BadName(option, value, PREFIX_SEGMENT)
    return stripped


def is_label(value: str) -> bool:
    return LABEL.pattern.fullmatch(value) is not None and len(value.encode()) <= LABEL.max_bytes


__all__ = [
    "BACKUP_ID",
    "DATABASE",
    "LABEL",
    "PREFIX_SEGMENT",
    "BadName",
    "NameRule",
    "check_backup_id",
    "check_database",
    "check_label",
    "check_name",
    "check_prefix",
    "is_label",
]

"""The dump.sql scanner: what psql would execute is refused, pg_dump's output is not.

The differential test runs the real psql (as the restore does: ``-X -v ON_ERROR_STOP=1``)
on each tricky input: whatever the scanner accepts must not have run its ``\\!``.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from plantops.backup.dumpscan import UnsafeDump, scan_dump
from plantops.backup.pg import PgTarget, find_pg_tool

HEAD = b"""--
-- PostgreSQL database dump
--

\\restrict abcDEF123

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
"""
TAIL = b"""
--
-- PostgreSQL database dump complete
--

\\unrestrict abcDEF123

"""
BODY = b"""CREATE FUNCTION public.f() RETURNS integer
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT CASE WHEN true THEN 1 ELSE 0 END;
END;
CREATE FUNCTION public.g() RETURNS text LANGUAGE plpgsql AS $_$ BEGIN RETURN '\\! x'; END $_$;
CREATE TABLE public.t (id integer, "Na\\me" text, note text DEFAULT 'a\\\\b'::text, abc$def$ int);
COMMENT ON TABLE public.t IS 'it''s -- not a comment; \\\\';
/* nested /* comment */ still \\! a comment */
COPY public.t (id, "Na\\me", note, abc$def$) FROM stdin;
1\t\\N\tx\\\\y\t1
2\t'\t\\t\t\\N
\\.

COPY public."Odd""T" FROM stdin;
\\.

SELECT pg_catalog.setval('public.t_id_seq', 2, true);
"""


def _scan(body: bytes) -> object:
    return scan_dump(io.BytesIO(HEAD + body + TAIL))


def test_pg_dump_output_is_accepted_and_rows_counted() -> None:
    r = _scan(BODY)
    assert r.row_counts == {"public.t": 2, 'public.Odd"T': 0}  # type: ignore[attr-defined]
    assert r.restricted and r.complete  # type: ignore[attr-defined]
    assert r.server_version == "15.18" and r.pg_dump_version == "15.18"  # type: ignore[attr-defined]


def test_copy_data_with_crlf_and_pieces_longer_than_a_read() -> None:
    long_row = b"3\t" + b"x" * (3 << 20) + b"\t\\N\t3\n"
    body = b"COPY public.t (id, note) FROM stdin;\r\n" + long_row * 2 + b"\\.\r\n"
    assert _scan(body).row_counts == {"public.t": 2}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\\! touch /tmp/x\n", "line 14: psql meta-command '\\! touch /tmp/x'"),
        (b"SET a = 1; \\o /tmp/x\n", "psql meta-command '\\o /tmp/x'"),
        (b"-- c\r\\i /etc/passwd\n", "psql meta-command '\\i /etc/passwd'"),
        (b"SET a = 'x\\'; \\! id\n';\n", "depends on standard_conforming_strings"),
        (b"SET a = E'\\''; \\! id\n", "depends on standard_conforming_strings"),
        (b"COPY public.t (id) FROM PROGRAM 'id';\n", "COPY statement not in pg_dump's form"),
        (b"COPY public.t TO '/tmp/x';\n", "COPY statement not in pg_dump's form"),
        (b"copy public.t (id) from stdin;\n\\.\n", "COPY statement not in pg_dump's form"),
        (b"COPY public.t (id) FROM stdin; \\! id\n\\.\n", "COPY statement not in pg_dump's form"),
        (
            b"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$select 1$$"
            b" SET search_path = begin; COPY t FROM stdin; END;\n'\n\\.\n\\! id\n'\n",
            "COPY inside a statement psql sends as one query",
        ),
        (b"DO $$ BEGIN PERFORM 1; END $$;\n", "statement 'DO'"),
        (b"DROP TABLE public.t;\n", "statement 'DROP'"),
        (b"ALTER SYSTEM SET archive_command = 'id';\n", "ALTER SYSTEM"),
        (b"CREATE ROLE evil SUPERUSER;\n", "CREATE ROLE"),
        (b"SELECT pg_read_file('/etc/passwd');\n", "SELECT of something other than"),
        (b"SET client_encoding = 'SJIS';\n", "client encoding SJIS"),
    ],
)
def test_what_psql_would_execute_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(UnsafeDump) as err:
        _scan(body)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + b"COMMENT ON TABLE t IS 'never closed;\n", "ends inside a string"),
        (HEAD + b"CREATE FUNCTION f() AS $$ body\n", "ends inside a $-quoted body"),
        (HEAD + b"COPY public.t (id) FROM stdin;\n1\n2\n", "not ended by '\\.'"),
        (HEAD + BODY, "pg_dump did not finish writing this dump"),
    ],
)
def test_truncated_dumps_are_refused(text: bytes, message: str) -> None:
    with pytest.raises(UnsafeDump, match=message.replace("$", r"\$").replace(".", r"\.")):
        scan_dump(io.BytesIO(text))


# Each hides "\! touch MARKER" where psql does or does not see a command.
TRICKY = {
    "odd backslash in literal": b"SET application_name = 'a\\'; \\! touch MARKER\n';\n",
    "E-string escaped quote": b"SET application_name = E'\\''; \\! touch MARKER\n",
    "CR ends a -- comment": b"-- harmless\r\\! touch MARKER\n",
    "quoted name with backslash": b'SET search_path = "a\\"; \\! touch MARKER\n',
    "inside nested comment": b"/* /* nested */ \\! touch MARKER */\nSET a.b = 1;\n",
    "inside dollar quote": b"CREATE TABLE public.t (a text);\n"
    b"COMMENT ON TABLE public.t IS $x$ \\! touch MARKER $x$;\n",
    "inside COPY data": b"CREATE TABLE public.t (a text);\n"
    b"COPY public.t (a) FROM stdin;\n\\! touch MARKER\n\\.\n",
    "COPY inside CREATE FUNCTION ... begin": b"CREATE TABLE public.t (a text);\n"
    b"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$select 1$$"
    b" SET search_path = begin; COPY public.t FROM stdin; END;\n'\n\\.\n\\! touch MARKER\n'\n",
}


@pytest.mark.postgres
def test_scanner_and_real_psql_agree(pg_db: str, pg_cluster: object, tmp_path: Path) -> None:
    target = PgTarget.from_url(pg_cluster.url(pg_db))  # type: ignore[attr-defined]
    executed: dict[str, bool] = {}
    for name, body in TRICKY.items():
        marker = tmp_path / f"marker-{len(executed)}"
        text = HEAD.replace(b"\\restrict abcDEF123\n", b"") + body.replace(
            b"MARKER", str(marker).encode()
        )
        text += TAIL.replace(b"\\unrestrict abcDEF123\n", b"")
        try:
            scan_dump(io.BytesIO(text))
            accepted = True
        except UnsafeDump:
            accepted = False
        subprocess.run(
            [find_pg_tool("psql", 15), "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", pg_db, "-f", "-"],
            input=text,
            env=target.env(),
            capture_output=True,
            check=False,
        )
        executed[name] = marker.exists()
        assert not (accepted and executed[name]), f"{name}: accepted, but psql ran the command"
        with pg_cluster.connect(pg_db) as conn:  # type: ignore[attr-defined]
            conn.execute("DROP TABLE IF EXISTS public.t; DROP FUNCTION IF EXISTS public.f()")
    # The harness does see psql run a command (else the assertion above proves nothing).
    assert executed["CR ends a -- comment"] and executed["odd backslash in literal"]
    assert executed["COPY inside CREATE FUNCTION ... begin"], executed
    assert not executed["inside COPY data"] and not executed["inside dollar quote"]

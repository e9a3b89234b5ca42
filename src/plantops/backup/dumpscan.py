"""Proving a plain-SQL dump (``pg_dump`` text format) is only SQL before psql runs it.

psql executes backslash meta-commands wherever its lexer meets a backslash outside a
string, comment or COPY data: ``\\!`` runs a shell, ``\\o``/``\\w`` write files,
``\\i`` reads them, ``\\c`` connects elsewhere. A dump that did not come from our own
``pg_dump`` may carry them (CVE-2025-8714: names with newlines broke out of pg_dump's
comment lines). This scanner follows psql's lexer, ``src/fe_utils/psqlscan.l``, closely
enough to know where psql sees SQL, where it sees COPY data and where a backslash
would start a command, and refuses every meta-command except the ``\\restrict`` /
``\\unrestrict`` pair that pg_dump itself writes since 17.6/16.10/15.14.

Where psql's view could depend on something the scanner cannot know, the dump is
refused rather than guessed:

* a quote after an odd run of backslashes inside a ``'…'`` literal ends the literal
  or not depending on ``standard_conforming_strings`` (``psqlscan.l``: ``{xqstart}``
  enters ``xq`` or ``xe`` by ``std_strings``), so it is ambiguous;
* COPY data starts only after ``COPY name (cols) FROM stdin;`` exactly as pg_dump
  writes it, alone on its line, at the start of a statement psql sends on its own
  (``paren_depth`` and ``begin_depth`` both 0, modelled from the ``{identifier}`` and
  ``";"`` rules); any other COPY (``FROM PROGRAM``, to a file, inside a
  ``CREATE FUNCTION … BEGIN`` block psql sends as one query) is refused;
* statements pg_dump never writes for one database (``DO``, ``DROP``, ``ALTER
  SYSTEM``, roles, databases, tablespaces, ``SELECT`` of anything but the
  ``pg_catalog`` functions pg_dump calls) are refused.

psql also expands ``:name`` variables in SQL, but only from its own settings (a dump
cannot ``\\set`` one: that is a meta-command), whose values hold no backslash or quote.

The restore runs psql with ``ON_ERROR_STOP=1`` (``backup.restore._restore_db``): a COPY
the server rejects stops psql before it could read that COPY's data as commands.

Pure: reads the stream it is given, in bounded lines, and returns what it counted —
the rows of every table's COPY block, which verification then compares with the
restored database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from plantops.backup.streams import Readable

MAX_SQL_LINE = 64 * 1024 * 1024
COPY_PIECE = 1024 * 1024
COMPLETE_LINE = b"-- PostgreSQL database dump complete"

# Client encodings in which a multibyte character may contain the byte of '\\' or "'"
# (psqlscan.l maps them through ``safe_encoding``); Odoo databases are UTF8.
UNSAFE_ENCODINGS = {"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030"}

_IDENT = rb"[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*"
_QIDENT = rb'"(?:[^"]|"")+"'
_NAME = rb"(?:" + _IDENT + rb"|" + _QIDENT + rb")"
# dumpTableData_copy: "COPY %s %sFROM stdin;\n" with fmtQualifiedId and fmtCopyColumnList.
_COPY_LINE = re.compile(
    rb"COPY (" + _NAME + rb")\.(" + _NAME + rb") (?:\(" + _NAME + rb"(?:, " + _NAME + rb")*\) )?"
    rb"FROM stdin;\r?\n"
)
_RESTRICT = re.compile(rb"\\(un)?restrict [A-Za-z0-9]+\r?\n?")
_DUMPED = re.compile(rb"-- Dumped (from database|by pg_dump) version (\S+)")
_ENCODING = re.compile(rb"SET client_encoding = '([^']*)';")

# One token of psql's INITIAL state, longest match first where psqlscan.l's flex
# rules would prefer it. Groups: the kind of token.
_TOKEN = re.compile(
    rb"(?P<space>[ \t\n\r\f]+)"
    rb"|(?P<comment>--[^\n\r]*)"
    rb"|(?P<cstart>/\*)"
    rb"|(?P<xe>[eE]')"
    rb"|(?P<xbh>[bBxX]')"
    rb"|(?P<xus>[uU]&')"
    rb"|(?P<xui>[uU]&\")"
    rb"|(?P<nprefix>[nN](?='))"
    rb"|(?P<ident>" + _IDENT + rb")"
    rb"|(?P<quote>')"
    rb"|(?P<dquote>\")"
    rb"|(?P<dolq>\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$)"
    rb"|(?P<param>\$[0-9]+)"
    rb"|(?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
    rb"|(?P<semi>;)"
    rb"|(?P<lparen>\()"
    rb"|(?P<rparen>\))"
    rb"|(?P<backslash>\\)"
    rb"|(?P<op>[~!@#^&|`?+*%<>=]+|-(?!-)|/(?!\*))"
    rb"|(?P<other>.)",
    re.DOTALL,
)
_COMMENT_EDGE = re.compile(rb"/\*|\*/")
# A run of tokens that change no state of psql's lexer: no quote, comment, parenthesis,
# semicolon, backslash or '$'; no identifier that could be a string prefix (E'…', U&'…').
# Used once a statement's first tokens are known and it is no CREATE FUNCTION/PROCEDURE.
_QUIET = re.compile(
    rb"(?:[ \t\n\r\f]+|[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*+(?!['&\"])|[0-9]++(?![.eE])"
    rb"|[,.\[\]:+*%^<>=~!@#&|`?]++|-(?!-)|/(?!\*))++"
)

# First keywords of the statements pg_dump writes into a one-database plain dump.
_ALLOWED_FIRST = {
    b"SET",
    b"SELECT",
    b"CREATE",
    b"ALTER",
    b"COMMENT",
    b"COPY",
    b"GRANT",
    b"REVOKE",
    b"SECURITY",
    b"REFRESH",
    b"INSERT",
}
_REFUSED_SECOND = {
    b"CREATE": {b"ROLE", b"USER", b"GROUP", b"DATABASE", b"TABLESPACE"},
    b"ALTER": {b"SYSTEM", b"ROLE", b"USER", b"GROUP", b"DATABASE", b"TABLESPACE"},
}
# _selectDumpableObject & co: the pg_catalog functions a plain dump calls with SELECT.
_SELECT_FUNCS = {b"set_config", b"setval", b"lo_create", b"lo_open", b"lowrite", b"lo_close"}


class UnsafeDump(Exception):
    """dump.sql holds something psql must not be given; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class DumpScan:
    """What the scan learned: rows per ``schema.table`` (from COPY blocks) and headers."""

    row_counts: dict[str, int] = field(default_factory=dict)
    server_version: str = ""
    pg_dump_version: str = ""
    restricted: bool = False
    lines: int = 0
    bytes: int = 0
    complete: bool = False


def _unquote(name: bytes) -> str:
    if name.startswith(b'"'):
        return name[1:-1].replace(b'""', b'"').decode("utf-8", "replace")
    # An unquoted identifier is folded to lower case (pg_dump quotes anything else).
    return name.decode("utf-8", "replace").lower()


class _Lexer:
    """psql's INITIAL-state lexer over one line at a time, state carried across lines."""

    def __init__(self) -> None:
        self.state = "base"  # base | xc | xq | xd | xdolq
        self.xcdepth = 0
        self.dolq = b""
        self.paren_depth = 0
        self.begin_depth = 0
        self.identifier_count = 0
        self.identifiers = [0, 0, 0, 0]
        # The server-side statement being read: its first significant tokens.
        self.stmt: list[bytes] = []
        # After a ';' psql does not send on (inside CREATE FUNCTION … BEGIN ATOMIC): the
        # server may still take what follows as a statement of its own.
        self.hidden_start = False
        self.line_no = 0

    # --- psqlscan.l {identifier}: BEGIN … END tracking of CREATE FUNCTION/PROCEDURE
    def _in_routine(self) -> bool:
        """psqlscan.l's test: the statement began CREATE [OR REPLACE] FUNCTION|PROCEDURE."""
        ids = self.identifiers
        return ids[0] == ord("c") and (
            ids[1] in (ord("f"), ord("p"))
            or (ids[1] == ord("o") and ids[2] == ord("r") and ids[3] in (ord("f"), ord("p")))
        )

    def _identifier(self, word: bytes) -> None:
        if self.identifier_count == 0:
            self.identifiers = [0, 0, 0, 0]
        low = word.lower()
        if low in (b"create", b"function", b"procedure", b"or", b"replace") and (
            self.identifier_count < 4
        ):
            self.identifiers[self.identifier_count] = low[0]
        self.identifier_count += 1
        if self._in_routine() and self.paren_depth == 0:
            if low == b"begin":
                self.begin_depth += 1
            elif low == b"case":
                if self.begin_depth >= 1:
                    self.begin_depth += 1
            elif low == b"end" and self.begin_depth > 0:
                self.begin_depth -= 1

    def _significant(self, token: bytes) -> None:
        if self.hidden_start:
            self.hidden_start = False
            if token.upper() == b"COPY":
                raise UnsafeDump(
                    self.line_no,
                    "COPY inside a statement psql sends as one query (CREATE FUNCTION … BEGIN):"
                    " psql would read what follows as COPY data or as commands",
                )
            return
        if len(self.stmt) < 4:
            self.stmt.append(token)
            if len(self.stmt) == 1:
                first = token.upper()
                if first not in _ALLOWED_FIRST:
                    raise UnsafeDump(
                        self.line_no,
                        f"statement {token.decode(errors='replace')!r}: pg_dump writes no such"
                        " statement into a one-database dump",
                    )
            elif len(self.stmt) == 2:
                refused = _REFUSED_SECOND.get(self.stmt[0].upper(), set())
                if token.upper() in refused:
                    what = b" ".join(self.stmt).decode(errors="replace").upper()
                    raise UnsafeDump(
                        self.line_no, f"{what}: pg_dump writes no such statement for one database"
                    )
            elif len(self.stmt) == 4 and self.stmt[0].upper() == b"SELECT":
                if not (
                    self.stmt[1] == b"pg_catalog"
                    and self.stmt[2] == b"."
                    and self.stmt[3] in _SELECT_FUNCS
                ):
                    raise UnsafeDump(
                        self.line_no,
                        "SELECT of something other than the pg_catalog functions pg_dump calls"
                        f" ({', '.join(sorted(f.decode() for f in _SELECT_FUNCS))})",
                    )

    def _end_statement(self) -> None:
        if self.stmt and self.stmt[0].upper() == b"SELECT" and len(self.stmt) < 4:
            raise UnsafeDump(
                self.line_no,
                "SELECT of something other than the pg_catalog functions pg_dump calls",
            )
        self.stmt = []

    def _literal(self, line: bytes, pos: int) -> int:
        """Skip a '…' literal whose opening quote is before ``pos``; -1 if it goes on."""
        while True:
            q = line.find(b"'", pos)
            if q < 0:
                self.state = "xq"
                return -1
            run = 0
            while q - run - 1 >= 0 and line[q - run - 1] == 0x5C:
                run += 1
            if run % 2 == 1:
                raise UnsafeDump(
                    self.line_no,
                    "a string literal whose end depends on standard_conforming_strings"
                    " (a quote after an odd number of backslashes): pg_dump never writes one",
                )
            if line[q + 1 : q + 2] == b"'":
                pos = q + 2
                continue
            self.state = "base"
            return q + 1

    def _ident_quoted(self, line: bytes, pos: int) -> int:
        while True:
            q = line.find(b'"', pos)
            if q < 0:
                self.state = "xd"
                return -1
            if line[q + 1 : q + 2] == b'"':
                pos = q + 2
                continue
            self.state = "base"
            return q + 1

    def _comment(self, line: bytes, pos: int) -> int:
        while True:
            m = _COMMENT_EDGE.search(line, pos)
            if m is None:
                self.state = "xc"
                return -1
            if m.group() == b"/*":
                self.xcdepth += 1
            elif self.xcdepth <= 0:
                self.state = "base"
                return m.end()
            else:
                self.xcdepth -= 1
            pos = m.end()

    def _dollar(self, line: bytes, pos: int) -> int:
        end = line.find(self.dolq, pos)
        if end < 0:
            self.state = "xdolq"
            return -1
        self.state = "base"
        return end + len(self.dolq)

    def _resume(self, line: bytes) -> int:
        """Continue a construct opened on an earlier line; position after it or -1."""
        if self.state == "xq":
            return self._literal(line, 0)
        if self.state == "xd":
            return self._ident_quoted(line, 0)
        if self.state == "xc":
            return self._comment(line, 0)
        if self.state == "xdolq":
            return self._dollar(line, 0)
        return 0

    def feed(self, line: bytes) -> bytes | None:
        """Lex one line; returns the COPY line when it starts COPY data, else None."""
        pos = self._resume(line)
        if pos < 0:
            return None
        n = len(line)
        while pos < n:
            if (
                len(self.stmt) >= 4
                and self.identifier_count >= 4
                and not self.hidden_start
                and not self._in_routine()
            ):
                q = _QUIET.match(line, pos)
                if q is not None:
                    pos = q.end()
                    if pos >= n:
                        break
            m = _TOKEN.match(line, pos)
            assert m is not None  # the last alternative matches any byte
            kind = m.lastgroup
            tok = m.group()
            end = m.end()
            if kind in ("space", "comment"):
                pos = end
                continue
            if kind == "cstart":
                self.xcdepth = 0
                self.state = "xc"
                pos = self._comment(line, end)
                if pos < 0:
                    return None
                continue
            if kind == "backslash":
                if not self.stmt and pos == 0 and _RESTRICT.fullmatch(line):
                    return None  # pg_dump's own \restrict KEY / \unrestrict KEY line
                cmd = line[pos : pos + 24].split(b"\n")[0].decode(errors="replace")
                raise UnsafeDump(
                    self.line_no,
                    f"psql meta-command '{cmd}' outside COPY data: psql would execute it"
                    " (a shell, a file, a connection); pg_dump never writes one",
                )
            if kind in ("quote", "xe", "xbh", "xus"):
                self._significant(b"'")
                pos = self._literal(line, end)
                if pos < 0:
                    return None
                continue
            if kind in ("dquote", "xui"):
                self._significant(b'"')
                pos = self._ident_quoted(line, end)
                if pos < 0:
                    return None
                continue
            if kind == "dolq":
                self._significant(b"$")
                self.dolq = tok
                pos = self._dollar(line, end)
                if pos < 0:
                    return None
                continue
            if kind == "ident":
                if not self.stmt and tok.upper() == b"COPY":
                    self._copy_start(line, pos)
                    self.stmt = []
                    self.identifier_count = 0
                    return line
                self._significant(tok)
                self._identifier(tok)
            elif kind == "lparen":
                self.paren_depth += 1
                self._significant(tok)
            elif kind == "rparen":
                if self.paren_depth > 0:
                    self.paren_depth -= 1
                self._significant(tok)
            elif kind == "semi":
                if self.paren_depth == 0:
                    if self.begin_depth == 0:
                        self._end_statement()
                        self.identifier_count = 0
                    else:
                        self.hidden_start = True
            else:
                self._significant(tok)
            pos = end
        return None

    def _copy_start(self, line: bytes, pos: int) -> None:
        if pos != 0 or self.begin_depth or self.paren_depth or not _COPY_LINE.fullmatch(line):
            raise UnsafeDump(
                self.line_no,
                "COPY statement not in pg_dump's form (alone on its line:"
                " COPY schema.table (columns) FROM stdin;)",
            )


def scan_dump(src: Readable, max_line: int = MAX_SQL_LINE) -> DumpScan:
    """Scan a plain dump from ``src`` to EOF; raise ``UnsafeDump`` at the first problem."""
    out = DumpScan()
    lexer = _Lexer()
    reader = _Lines(src)
    line_no = 0
    while True:
        line = reader.readline(max_line + 1)
        if not line:
            break
        line_no += 1
        lexer.line_no = line_no
        if len(line) > max_line and not line.endswith(b"\n"):
            raise UnsafeDump(line_no, f"a SQL line longer than {max_line} bytes")
        if lexer.state == "base" and line.startswith(b"-- "):
            m = _DUMPED.match(line)
            if m:
                if m.group(1) == b"by pg_dump":
                    out.pg_dump_version = m.group(2).decode(errors="replace")
                else:
                    out.server_version = m.group(2).decode(errors="replace")
            if line.rstrip(b"\r\n") == COMPLETE_LINE:
                out.complete = True
        if lexer.state == "base" and line.startswith(b"\\restrict "):
            out.restricted = True
        if lexer.state == "base" and line.startswith(b"SET client_encoding"):
            m = _ENCODING.match(line)
            if m and m.group(1).decode(errors="replace").upper() in UNSAFE_ENCODINGS:
                raise UnsafeDump(
                    line_no,
                    f"client encoding {m.group(1).decode()}: a multibyte character may hide a"
                    " backslash or quote from psql; Odoo databases are UTF8",
                )
        copy = lexer.feed(line)
        if copy is not None:
            m = _COPY_LINE.fullmatch(copy)
            assert m is not None
            table = f"{_unquote(m.group(1))}.{_unquote(m.group(2))}"
            start = line_no
            rows = _copy_data(reader)
            if rows < 0:
                raise UnsafeDump(
                    start, f"the data of {table} is not ended by '\\.': dump.sql is truncated"
                )
            out.row_counts[table] = out.row_counts.get(table, 0) + rows
            line_no += rows + 1
    out.lines = line_no
    out.bytes = reader.total
    if lexer.state != "base":
        what = {"xq": "string", "xd": "quoted name", "xc": "comment", "xdolq": "$-quoted body"}
        raise UnsafeDump(line_no, f"dump.sql ends inside a {what[lexer.state]}: it is truncated")
    if not out.complete:
        raise UnsafeDump(
            line_no,
            f"no {COMPLETE_LINE.decode()!r} line: pg_dump did not finish writing this dump",
        )
    return out


_COPY_END = re.compile(rb"\n\\\.\r?\n")


def _copy_data(reader: _Lines) -> int:
    """Skip COPY data up to psql's end marker; the number of rows, or -1 at EOF.

    psql's handleCopyIn (src/bin/psql/copy.c) ends the data at a line that is exactly
    ``\\.`` + LF or CR LF, looked for only at the beginning of a line; so do we. Rows
    are counted per buffer with ``bytes.count``, not line by line.
    """
    rows = 0
    at_line_begin = True
    while True:
        if at_line_begin:
            while len(reader.buf) - reader.pos < 4 and reader.fill():
                pass
            for marker in (b"\\.\n", b"\\.\r\n"):
                if reader.buf.startswith(marker, reader.pos):
                    reader.pos += len(marker)
                    return rows
        buf, pos = reader.buf, reader.pos
        m = _COPY_END.search(buf, pos)
        if m is not None:
            rows += buf.count(b"\n", pos, m.start() + 1)
            reader.pos = m.end()
            return rows
        if reader.eof:
            return -1
        # Keep a tail that may be the start of a marker split across two reads.
        keep = max(pos, len(buf) - 4)
        rows += buf.count(b"\n", pos, keep)
        if keep > pos:
            at_line_begin = buf[keep - 1] == 0x0A
        reader.pos = keep
        reader.fill()


class _Lines:
    """``readline(limit)`` over any readable, in 1 MiB reads (zip members have no readline)."""

    def __init__(self, src: Readable) -> None:
        self.src = src
        self.buf = b""
        self.pos = 0
        self.eof = False
        self.total = 0

    def fill(self) -> bool:
        """Append one read to the unread rest of the buffer; False at EOF."""
        if self.eof:
            return False
        block = self.src.read(COPY_PIECE)
        if not block:
            self.eof = True
            return False
        self.total += len(block)
        self.buf = self.buf[self.pos :] + block
        self.pos = 0
        return True

    def readline(self, limit: int) -> bytes:
        while True:
            nl = self.buf.find(b"\n", self.pos, self.pos + limit)
            if nl >= 0:
                line = self.buf[self.pos : nl + 1]
                self.pos = nl + 1
                return line
            if len(self.buf) - self.pos >= limit or not self.fill():
                line = self.buf[self.pos : self.pos + limit]
                self.pos += len(line)
                return line

"""The pgBackRest config is user input: read bounded, its stanzas checked by the name rule
(a stanza becomes repository folders and a ``--stanza=`` argument)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plantops.backup.pgbackrest import config_stanza
from plantops.errors import UserError


def _conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pgbackrest.conf"
    path.write_text(text)
    return path


def test_the_only_stanza_is_found_and_option_sections_are_not_stanzas(tmp_path: Path) -> None:
    conf = _conf(
        tmp_path,
        "[global]\nrepo1-path=/r\n[global:archive-push]\nprocess-max=2\n"
        "[odoo-lyon]\npg1-path=/d\n[odoo-lyon:archive-get]\nprocess-max=2\n",
    )
    assert config_stanza(conf, None) == "odoo-lyon"
    assert config_stanza(conf, "odoo-lyon") == "odoo-lyon"


@pytest.mark.parametrize(
    "section",
    ["[" * 50_000 + "]" * 49_999, "../../etc", "a b", "x" * 64, "-rm"],
    ids=["json-like-bomb", "dotdot", "space", "too-long", "dash"],
)
def test_a_section_that_cannot_be_a_stanza_is_refused_with_the_file(
    tmp_path: Path, section: str
) -> None:
    conf = _conf(tmp_path, f"[global]\nrepo1-path=/r\n[{section}]\npg1-path=/d\n")
    with pytest.raises(UserError, match=r"pgbackrest\.conf: section .* is not a valid pgBackRest"):
        config_stanza(conf, None)


def test_a_stanza_option_that_is_not_a_name_is_refused(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "[main]\npg1-path=/d\n")
    with pytest.raises(UserError, match="--stanza '../x' is not a valid pgBackRest stanza"):
        config_stanza(conf, "../x")


def test_a_fifo_or_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="named pipe"):
        config_stanza(fifo, None)
    big = _conf(tmp_path, "[main]\n" + "# padding\n" * 200_000)
    with pytest.raises(UserError, match="pgbackrest.conf"):
        config_stanza(big, None)

"""The log pipeline of ``observe render``: Odoo's log records (written here by Python's
logging with Odoo's format string, so the lines are what Odoo writes) are joined by the
rendered multiline rules and parsed by the rendered regex, tracebacks included; the
rendered Fluent Bit and Loki files are checked against a schema of the sections
plantops writes (Fluent Bit is not installable here from apt or PyPI)."""

from __future__ import annotations

import io
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from plantops.cli.main import app
from plantops.observe.logs import ODOO_RECORD, fluent_bit_config, loki_limits, python_regex
from tests.conftest import EXAMPLE
from tests.render.conftest import Rendered

# odoo/netsvc.py init_logger (16.0+); DBFormatter sets pid and dbname, PerfFilter perf_info
ODOO_FORMAT = "%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s"


class _Context(logging.Filter):
    """What Odoo's thread-locals put on each record: the worker's pid, the request's
    database, the request timing (werkzeug lines only)."""

    def __init__(self) -> None:
        super().__init__()
        self.dbname = "acme"
        self.perf = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.pid = 4242
        record.dbname = self.dbname
        record.perf_info = self.perf
        return True


def _odoo_log() -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(ODOO_FORMAT))
    ctx = _Context()
    handler.addFilter(ctx)
    names = ("odoo.modules.loading", "werkzeug", "odoo.http", "odoo.addons.mrp.models",
             "odoo.service.server")  # fmt: skip
    saved = {}
    for n in names:
        lg = logging.getLogger(n)
        saved[n] = (lg.propagate, lg.level)
        lg.propagate = False
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)

    class _Root:
        def getChild(self, name: str) -> logging.Logger:
            return logging.getLogger(name)

    root = _Root()
    try:
        root.getChild("odoo.modules.loading").info("42 modules loaded in 1.23s, 0 queries")
        ctx.perf = "12 0.034 0.101"
        root.getChild("werkzeug").info(
            '10.0.0.1 - - [03/Dec/2026 10:00:02] "POST /web/dataset/call_kw HTTP/1.1" 200 -'
        )
        ctx.perf = "- - -"
        root.getChild("werkzeug").info(
            '10.0.0.1 - - [03/Dec/2026 10:00:03] "GET /web/health HTTP/1.1" 200 -'
        )
        ctx.perf = ""
        try:
            {}["missing"]
        except KeyError:
            root.getChild("odoo.http").exception("Exception during request handling.")
        root.getChild("odoo.addons.mrp.models").warning("ratio 3 0.5 1.5")
        ctx.dbname = "?"
        root.getChild("odoo.service.server").error("no database: %s", "multi\nline")
    finally:
        for n in names:
            lg = logging.getLogger(n)
            lg.removeHandler(handler)
            lg.propagate, level = saved[n]
            lg.setLevel(level)
    return stream.getvalue()


def _join(text: str, rules: list[dict[str, Any]]) -> list[str]:
    """Fluent Bit's regex multiline engine: a line matching start_state opens a record,
    lines matching cont extend it."""
    start = re.compile(rules[0]["regex"].strip("/"))
    cont = re.compile(rules[1]["regex"].strip("/"))
    records: list[str] = []
    for line in text.splitlines():
        if start.search(line) or not records:
            records.append(line)
        elif cont.search(line):
            records[-1] += "\n" + line
    return records


def _parse(example: Rendered) -> list[dict[str, str | None]]:
    cfg = fluent_bit_config(example.deployments[:1], kubernetes=True, loki_host="loki")
    rules = cfg["multiline_parsers"][0]["rules"]
    (parser,) = cfg["parsers"]
    regex = re.compile(python_regex(parser["regex"]))
    out = []
    for rec in _join(_odoo_log(), rules):
        m = regex.match(rec)
        assert m is not None, rec
        out.append(m.groupdict())
    return out


def test_odoo_records_are_joined_and_parsed(example: Rendered) -> None:
    loaded, call, health, exc, ratio, nodb = _parse(example)
    assert loaded["level"] == "INFO" and loaded["pid"] == "4242" and loaded["dbname"] == "acme"
    assert loaded["logger"] == "odoo.modules.loading"
    assert loaded["message"] == "42 modules loaded in 1.23s, 0 queries"
    assert loaded["query_count"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", str(loaded["time"]))
    assert call["logger"] == "werkzeug" and call["message"].endswith('HTTP/1.1" 200 -')  # type: ignore[union-attr]
    assert (call["query_count"], call["query_time"], call["remaining_time"]) == (
        "12",
        "0.034",
        "0.101",
    )
    assert health["message"].endswith('"GET /web/health HTTP/1.1" 200 -')  # type: ignore[union-attr]
    assert health["query_count"] == "-"
    # the traceback stays in its record
    assert exc["level"] == "ERROR" and exc["logger"] == "odoo.http"
    msg = str(exc["message"])
    assert msg.startswith("Exception during request handling. \nTraceback (most recent call last):")
    assert msg.rstrip().endswith("KeyError: 'missing'") and exc["query_count"] is None
    # three numbers ending a message are not timing columns (the empty perf_info's space)
    assert ratio["message"] == "ratio 3 0.5 1.5" and ratio["query_count"] is None
    assert nodb["dbname"] == "?" and nodb["message"] == "no database: multi\nline"


def test_the_regex_is_onigmo_syntax() -> None:
    assert "(?P<" not in ODOO_RECORD and "(?<message>" in ODOO_RECORD
    # no line anchors (Ruby syntax: every line); "[^" is a negated class, not an anchor
    assert "$" not in ODOO_RECORD and "^" not in ODOO_RECORD.replace("[^", "[")


# The sections and keys plantops writes, from the Fluent Bit YAML reference
# (administration/configuring-fluent-bit/yaml: service, parsers, multiline_parsers, pipeline).
_STR = {"type": "string", "minLength": 1}
FLUENT_BIT_SCHEMA = {
    "type": "object",
    "required": ["service", "parsers", "multiline_parsers", "pipeline"],
    "additionalProperties": False,
    "properties": {
        "service": {"type": "object"},
        "parsers": {"type": "array", "items": {"type": "object", "required": ["name", "format", "regex"]}},
        "multiline_parsers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "type", "rules"],
                "properties": {
                    "type": {"enum": ["regex"]},
                    "rules": {
                        "type": "array",
                        "minItems": 2,
                        "items": {
                            "type": "object",
                            "required": ["state", "regex", "next_state"],
                            "properties": {
                                "state": _STR,
                                "regex": {"type": "string", "pattern": "^/.*/$"},
                                "next_state": _STR,
                            },
                            "additionalProperties": False,
                        },
                    },
                },
            },
        },
        "pipeline": {
            "type": "object",
            "required": ["inputs", "filters", "outputs"],
            "additionalProperties": False,
            "properties": {
                k: {"type": "array", "items": {"type": "object", "required": ["name"],
                                                "properties": {"name": _STR}}}
                for k in ("inputs", "filters", "outputs")
            },
        },
    },
}  # fmt: skip


def test_rendered_pipelines_label_every_deployment(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(EXAMPLE, fleet)
    text = (fleet / "fleet.yaml").read_text()
    text = text.replace("    slo: {availability: 99.95, latency_p95_ms: 800}",
                        "    slo: {availability: 99.95, latency_p95_ms: 800}\n    log_retention_days: 400", 1)  # fmt: skip
    (fleet / "fleet.yaml").write_text(text)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["observe", "render", str(fleet), "--out", str(out)])
    assert res.exit_code == 0, res.output
    configs = {
        p.name: yaml.safe_load(p.read_text()) for p in (out / "logs" / "fluent-bit").glob("*.yaml")
    }
    assert "us-detroit-auto.yaml" in configs and "vm-leipzig-vm-prod.yaml" in configs
    for name, cfg in configs.items():
        jsonschema.validate(cfg, FLUENT_BIT_SCHEMA)
        pipe = cfg["pipeline"]
        parsers = {p["name"] for p in cfg["parsers"]} | {
            p["name"] for p in cfg["multiline_parsers"]
        }
        for f in pipe["filters"]:
            assert (
                f.get("parser", "odoo") in parsers
                and f.get("multiline.parser", "odoo-multiline") in parsers
            )
        for inp in pipe["inputs"]:
            tag = inp["tag"]
            added = {
                f["add"].split()[0] for f in pipe["filters"] if f["match"] == tag and "add" in f
            }
            assert added == {
                "plantops_plant",
                "plantops_environment",
                "plantops_tier",
                "namespace",
            }, name
        (loki,) = pipe["outputs"]
        assert "plantops_plant=$plantops_plant" in loki["labels"] and "dbname" not in loki["labels"]
    vm = configs["vm-leipzig-vm-prod.yaml"]["pipeline"]
    assert vm["inputs"][0]["multiline.parser"] == "docker"
    eu = configs["eu-shared-1.yaml"]["pipeline"]
    tenant = [
        f for f in eu["filters"] if f.get("condition", "").startswith("Key_value_equals dbname")
    ]
    assert len(tenant) >= 2  # shared-eu-subsidiaries: the database names the plant
    inputs = {i["tag"]: i for i in configs["us-detroit-auto.yaml"]["pipeline"]["inputs"]}
    prod = inputs["odoo.detroit-stamping-prod"]
    assert prod["path"] == "/var/log/containers/*_detroit-stamping-prod_odoo-*.log"
    assert prod["multiline.parser"] == "cri"
    retention = yaml.safe_load((out / "logs" / "loki" / "retention.yaml").read_text())
    streams = {s["selector"]: s["period"] for s in retention["limits_config"]["retention_stream"]}
    assert streams['{plantops_tier="critical"}'] == f"{400 * 24}h"
    assert streams['{plantops_tier="standard"}'] == f"{31 * 24}h"  # the default
    assert retention["limits_config"]["retention_period"] == f"{400 * 24}h"
    assert retention["compactor"]["retention_enabled"] is True


def test_loki_limits_default(example: Rendered) -> None:
    limits = loki_limits(example.deployments)["limits_config"]
    assert {s["period"] for s in limits["retention_stream"]} == {"744h"}


@pytest.mark.parametrize("line", ["\x1b[1;32m\x1b[1;49mINFO\x1b[0m", "garbage"])
def test_lines_that_are_not_odoo_records_are_not_parsed(line: str) -> None:
    regex = re.compile(python_regex(ODOO_RECORD))
    assert regex.match(f"2026-12-03 10:00:01,123 4242 {line} acme odoo: x ") is None

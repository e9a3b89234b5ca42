"""Centralized logging (issue #15 §6): a Fluent Bit pipeline per cluster and per VM plant
that joins Odoo's multi-line records, parses them into fields and labels them with plant,
environment and tier for Loki, and Loki's retention per tier.

Odoo's log line (``odoo/netsvc.py`` ``init_logger``: the format
``%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s``,
``DBFormatter.format`` sets ``pid`` and ``dbname``, ``?`` without a database)::

    2026-12-03 10:00:01,123 4242 INFO acme odoo.modules.loading: 42 modules loaded.
    2026-12-03 10:00:02,456 4243 INFO acme werkzeug: 10.0.0.1 - - [03/Dec/2026 10:00:02] "POST /web/dataset/call_kw HTTP/1.1" 200 - 12 0.034 0.101
    2026-12-03 10:00:03,789 4243 ERROR acme odoo.http: Exception during request handling.
    Traceback (most recent call last):
      File "/usr/lib/python3/dist-packages/odoo/http.py", line 2204, in __call__
    ...

``asctime`` is the logging module's default (``%Y-%m-%d %H:%M:%S,mmm``, local time of the
container: UTC in Odoo's images); a record continues on the following lines until the
next line that starts with a timestamp and a pid (a traceback, ``log_exception``). The
``PerfFilter`` (16.0+) appends ``query_count query_time remaining_time`` — a fourth column
(cursor mode) with a read replica — to werkzeug's request lines, ``- - -`` when no request
was timed. The level of a coloured TTY is wrapped in ANSI escapes
(``ColoredFormatter``); containers have no TTY, so the plain level is parsed.

Pure: a function of the deployments. Regexes are written in the dialect Fluent Bit runs
(Onigmo, Ruby syntax: ``(?<name>…)``); ``python_regex`` converts for the tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plantops.plan import Deployment

DEFAULT_LOG_RETENTION_DAYS = 31
START = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} \d+ "
# One record after the multiline join (message keeps its "\n"s). Anchored with \A and \Z,
# never ^ and $: in Onigmo's Ruby syntax those match at every line, so a lazy message
# would stop at the end of a traceback's first line. The perf columns count only at the
# very end without a trailing space: a record without them ends in the space of the
# empty perf_info (or in its traceback), so a message ending in three numbers stays whole.
ODOO_RECORD = (
    r"\A(?<time>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (?<pid>\d+) "
    r"(?<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?<dbname>\S+) (?<logger>[^\s:]+): "
    r"(?<message>[\s\S]*?)"
    r"(?: (?<query_count>\d+|-) (?<query_time>\d+\.\d+|-) (?<remaining_time>\d+\.\d+|-)"
    r"(?: (?<cursor_mode>[a-z]+))?\Z| \Z|\Z)"
)
LABELS = ("plantops_plant", "plantops_environment", "plantops_tier", "namespace", "level")


def python_regex(onigmo: str) -> str:
    """The same pattern for Python's ``re`` (named groups ``(?P<name>…)``)."""
    return re.sub(r"\(\?<([a-z_]+)>", r"(?P<\1>", onigmo)


def log_retention_days(dep: Deployment) -> int:
    return dep.tier_spec.log_retention_days or DEFAULT_LOG_RETENTION_DAYS


def _parsers() -> dict[str, Any]:
    return {
        "parsers": [
            {
                "name": "odoo",
                "format": "regex",
                "regex": ODOO_RECORD,
                "time_key": "time",
                "time_format": "%Y-%m-%d %H:%M:%S,%L",
                "time_keep": "off",
                "types": "pid:integer query_count:integer query_time:float remaining_time:float",
            }
        ],
        "multiline_parsers": [
            {
                "name": "odoo-multiline",
                "type": "regex",
                "flush_timeout": 1000,
                "rules": [
                    {"state": "start_state", "regex": f"/^{START}/", "next_state": "cont"},
                    {"state": "cont", "regex": f"/^(?!{START})/", "next_state": "cont"},
                ],
            }
        ],
    }


def _label_filters(dep: Deployment, match: str) -> list[dict[str, Any]]:
    add = [
        f"plantops_environment {dep.environment.name}",
        f"plantops_tier {dep.tier}",
        f"namespace {dep.namespace}",
    ]
    filters: list[dict[str, Any]] = [{"name": "modify", "match": match, "add": a} for a in add]
    if len(dep.tenants) == 1:
        filters.append(
            {"name": "modify", "match": match, "add": f"plantops_plant {dep.tenants[0].plant}"}
        )
    else:
        # a tenant group: the database names the plant (one database per tenant)
        for t in sorted(dep.tenants, key=lambda t: t.plant):
            filters.append(
                {
                    "name": "modify",
                    "match": match,
                    "condition": f"Key_value_equals dbname {t.database}",
                    "add": f"plantops_plant {t.plant}",
                }
            )
        filters.append({"name": "modify", "match": match, "add": "plantops_plant shared"})
    return filters


def _loki_output(match: str, loki_host: str, loki_port: int) -> dict[str, Any]:
    return {
        "name": "loki",
        "match": match,
        "host": loki_host,
        "port": loki_port,
        # low-cardinality labels only; dbname, logger and pid stay in the structured line
        "labels": "job=odoo, " + ", ".join(f"{k}=${k}" for k in LABELS),
        "line_format": "json",
        "remove_keys": ",".join(LABELS),
    }


def fluent_bit_config(
    deployments: Sequence[Deployment], *, kubernetes: bool, loki_host: str, loki_port: int = 3100
) -> dict[str, Any]:
    """One Fluent Bit YAML configuration for these deployments (a cluster's, or a VM's)."""
    inputs: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    for dep in sorted(deployments, key=lambda d: d.namespace):
        tag = f"odoo.{dep.namespace}"
        if kubernetes:
            # kubelet's file name: <pod>_<namespace>_<container>-<id>.log; the web
            # container is "odoo", cron "odoo-cron" (render/kubernetes/odoo.py)
            path = f"/var/log/containers/*_{dep.namespace}_odoo-*.log"
            runtime = "cri"
        else:
            path = "/var/lib/docker/containers/*/*-json.log"
            runtime = "docker"
        inputs.append(
            {
                "name": "tail",
                "tag": tag,
                "path": path,
                "multiline.parser": runtime,
                "db": f"/var/lib/fluent-bit/{dep.namespace}.db",
                "mem_buf_limit": "16MB",
                "skip_long_lines": "on",
            }
        )
        filters.append(
            {
                "name": "multiline",
                "match": tag,
                "multiline.key_content": "log",
                "multiline.parser": "odoo-multiline",
            }
        )
        filters.append(
            {
                "name": "parser",
                "match": tag,
                "key_name": "log",
                "parser": "odoo",
                "reserve_data": "on",
            }
        )
        filters.extend(_label_filters(dep, tag))
    return {
        "service": {"flush": 1, "log_level": "info", "http_server": "on", "http_port": 2020},
        **_parsers(),
        "pipeline": {
            "inputs": inputs,
            "filters": filters,
            "outputs": [_loki_output("odoo.*", loki_host, loki_port)],
        },
    }


def loki_limits(deployments: Sequence[Deployment]) -> dict[str, Any]:
    """Loki's per-stream retention by tier (``limits_config.retention_stream``, applied
    by the compactor with ``retention_enabled``); the longest tier is the default."""
    by_tier: dict[str, int] = {}
    for dep in deployments:
        by_tier[dep.tier] = max(by_tier.get(dep.tier, 0), log_retention_days(dep))
    longest = max(by_tier.values(), default=DEFAULT_LOG_RETENTION_DAYS)
    streams = [
        {"selector": f'{{plantops_tier="{tier}"}}', "priority": 1, "period": f"{days * 24}h"}
        for tier, days in sorted(by_tier.items())
    ]
    return {
        "compactor": {"retention_enabled": True},
        "limits_config": {"retention_period": f"{longest * 24}h", "retention_stream": streams},
    }


__all__ = [
    "DEFAULT_LOG_RETENTION_DAYS",
    "ODOO_RECORD",
    "fluent_bit_config",
    "log_retention_days",
    "loki_limits",
    "python_regex",
]

"""The database-initialisation script, shared by the Kubernetes Job and the Compose service.

Databases are created empty (CloudNativePG, the ``Database`` objects, the VM init
script), and Odoo installs ``base`` only into a database it created itself
(odoo/cli/server.py main: ``config['init']['base'] = True`` only when
``_create_empty_database`` succeeds, ``DatabaseExists`` is passed over). Without ``-i
base`` the registry of an existing, empty database loads nothing (odoo/modules/loading.py
load_modules: "Database %s not initialized, you can force it with `-i base`") while
``/web/health`` still answers: every deployment would serve an uninitialised database.

The script is guarded, not a bare ``odoo -i base``: on an initialised database ``-i base``
reloads base's data in ``init`` mode (loading.py load_module_graph: ``mode = 'init'`` when
the package has ``init``, set from ``config['init']`` by graph.add_module), which rewrites
records marked ``noupdate`` - the main company, the admin user. So it runs Odoo only
where base is absent or not yet installed, and does nothing otherwise; a database whose
first installation broke off (base ``to install``) is installed again. Pure text, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

# Base states after which the database belongs to the release process, not to this script.
# ir_module_module.state: uninstalled, to install, installed, to upgrade, to remove.
_PROBE_TABLE = (
    "SELECT CASE WHEN to_regclass('public.ir_module_module') IS NULL "
    "THEN 'missing' ELSE 'present' END"
)
_PROBE_BASE = "SELECT coalesce((SELECT state FROM ir_module_module WHERE name = 'base'), 'missing')"
# Odoo's own test (odoo/modules/db.py has_unaccent, 17.0+): FunctionStatus.INDEXABLE only
# when the one-argument unaccent in the current schema is IMMUTABLE; otherwise trigram
# indexes are built without it (odoo/orm/registry.py, warning "present but not immutable").
_PROBE_UNACCENT = (
    "SELECT coalesce((SELECT provolatile FROM pg_proc WHERE proname = 'unaccent' "
    "AND pronargs = 1 AND pronamespace = current_schema::regnamespace), '-')"
)
WAIT_SECONDS = 5
WAIT_TRIES = 60


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _sh_dquote(value: str) -> str:
    """Double quotes, so the SQL's own single quotes read as they are."""
    for ch in ("\\", '"', "$", "`"):
        value = value.replace(ch, "\\" + ch)
    return f'"{value}"'


def odoo_init_args(conf: str) -> list[str]:
    """Odoo's argv for one database (``$db``); the same flags in 16.0 to 19.0.

    ``--db_user`` because the config file's ``db_user`` may be the shared ``odoo`` role of
    a tenant group: what the installation creates must belong to the database's owner.
    ``--workers=0`` selects the threaded server, whose ``start(stop=True)`` spawns no HTTP
    thread (odoo/service/server.py ThreadedServer.start: ``http_enable and not stop``);
    ``--no-http`` and ``--max-cron-threads=0`` say so outright. ``--stop-after-init``
    exits with the registry's status (server.py preload_registries returns -1 when
    loading a database fails; cli/server.py main passes it to ``sys.exit``).
    """
    return [
        "odoo",
        f"--config={conf}",
        '--database="$db"',
        '--db_user="$PGUSER"',
        "--init=base",
        "--stop-after-init",
        "--no-http",
        "--workers=0",
        "--max-cron-threads=0",
    ]


def db_init_script(conf: str) -> str:
    """POSIX sh: initialise each database named in ``"$@"`` that is not initialised yet.

    Connection settings come from the libpq environment (``PGHOST``, ``PGPORT``,
    ``PGUSER``, ``PGPASSWORD``, ``PGSSLMODE``), which Odoo reads too. PostgreSQL may not
    answer at once (a pooler still starting, a ``Database`` still reconciling): the
    probe is retried every 5 s, ``PLANTOPS_DB_WAIT_TRIES`` times (default 60).
    """
    psql = "psql --no-psqlrc --no-align --tuples-only --quiet --set=ON_ERROR_STOP=1"
    odoo = " ".join(odoo_init_args(_sh_quote(conf)))
    lines = [
        "set -eu",
        f'tries="${{PLANTOPS_DB_WAIT_TRIES:-{WAIT_TRIES}}}"',
        'for db in "$@"; do',
        "  n=0",
        f'  until table="$({psql} --dbname="$db" --command={_sh_dquote(_PROBE_TABLE)})"; do',
        "    n=$((n + 1))",
        '    if [ "$n" -ge "$tries" ]; then',
        '      echo "plantops: database $db unreachable, giving up" >&2',
        "      exit 1",
        "    fi",
        f"    sleep {WAIT_SECONDS}",
        "  done",
        '  base="$table"',
        '  if [ "$table" = present ]; then',
        f'    base="$({psql} --dbname="$db" --command={_sh_dquote(_PROBE_BASE)})"',
        "  fi",
        '  case "$base" in',
        "    missing|uninstalled|'to install')",
        '      echo "plantops: installing base in $db (base: $base)"',
        f"      {odoo}",
        "      ;;",
        "    *)",
        '      echo "plantops: $db is initialised (base: $base), nothing to do"',
        "      ;;",
        "  esac",
        f'  volatility="$({psql} --dbname="$db" --command={_sh_dquote(_PROBE_UNACCENT)})"',
        '  if [ "$volatility" != i ]; then',
        '    echo "plantops: warning: unaccent is not IMMUTABLE in $db; trigram indexes'
        ' will not use it (a superuser must run ALTER FUNCTION unaccent(text) IMMUTABLE)" >&2',
        "  fi",
        "done",
    ]
    return "\n".join(lines) + "\n"


def db_init_command(conf: str, databases: Sequence[str]) -> list[str]:
    """argv of a container that runs :func:`db_init_script` for ``databases``."""
    return ["/bin/sh", "-c", db_init_script(conf), "db-init", *databases]


PGPASSFILE = "/run/odoo/pgpass"


def pgpass_script(password_file: str, passfile: str = PGPASSFILE) -> str:
    """sh: a libpq password file (mode 0600) for any server, from a raw password file.

    libpq ignores a password file that group or others may read (fe-connect.c
    ``passwordFromFile``), hence the umask; ``:`` and ``\\`` in the password are escaped,
    as the file's format asks. Odoo and psql then read it through ``$PGPASSFILE``, and the
    password is in no environment that child processes (wkhtmltopdf, git) inherit.
    """
    return (
        f"(umask 077 && sed -e 's/[\\\\:]/\\\\&/g' -e 's/^/*:*:*:*:/' {password_file}"
        f" > {passfile})"
    )

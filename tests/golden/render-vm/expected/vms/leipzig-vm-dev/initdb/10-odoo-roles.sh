#!/bin/sh
# Rendered by plantops: Odoo's roles own their databases; none is a superuser.
set -eu
pw="$(cat /run/secrets/odoo_db_password)"
psql -v ON_ERROR_STOP=1 -v pw="$pw" --username postgres --dbname postgres <<'SQL'
CREATE ROLE "leipzig_vm" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE "leipzig-vm" OWNER "leipzig_vm" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\connect "leipzig-vm"
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
ALTER FUNCTION unaccent(text) IMMUTABLE;
SQL

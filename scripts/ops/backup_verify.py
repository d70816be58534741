"""``alp-db backup --verify``: restore the dump into a scratch database and compare it.

A dump that pg_dump wrote without error can still fail to restore (a missing role, an
extension that is not installed, an archive the target's pg_restore cannot read), so the
check is a restore: into a scratch database on the same server, with the pg_restore that
will be used for real, in one transaction that stops at the first error. Then the schema
(``pg_dump --schema-only`` of both, by the same pg_dump) and the exact row count of every
table must be equal. The scratch database is dropped whatever happens.

The text of two schema dumps can differ with the schema the same: PostgreSQL stores an
expression parsed and prints it back (``pg_get_constraintdef``), and printing a re-parsed
expression is not always a fixpoint — ``x IN ('a', 'b')`` on a varchar column comes back as
``ARRAY[('a'::varchar)::text, ...]`` after one restore. When the texts differ, the schemas
are compared by catalog facts that carry no expression text (every relation, column type,
nullability, constraint, index, function body, trigger and enum label), and the differing
dump lines are counted so a person can look.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.clients import Client, run_client
from scripts.db.engine import first_line
from scripts.db.target import session
from scripts.errors import BackupFailed

# Every table that holds rows: plain tables and partitions (a partitioned parent holds none itself).
TABLES_SQL = text(
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2"
)
# Lines of pg_dump output that differ between two dumps of equal schemas: comments, SET
# lines, and pg_dump 17+'s random \restrict keys.
VOLATILE_PREFIXES = ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
# Catalog facts of a schema without expression text: one row of text per fact.
SCHEMA_FACTS_SQL = text(
    """
WITH user_ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg_toast%'
      AND nspname NOT LIKE 'pg_temp%'
)
SELECT 'relation ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' '
       || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || a.atthasdef
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN user_ns n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || n.nspname || '.' || conname || ' ' || contype::text
FROM pg_constraint JOIN user_ns n ON n.oid = connamespace
UNION ALL
SELECT 'function ' || n.nspname || '.' || proname || ' ' || md5(coalesce(prosrc, ''))
FROM pg_proc JOIN user_ns n ON n.oid = pronamespace
UNION ALL
SELECT 'trigger ' || tgrelid::regclass::text || '.' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'enum ' || t.typname || ' ' || e.enumsortorder || ' ' || e.enumlabel
FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
ORDER BY 1
"""
)


@dataclass(frozen=True)
class Verification:
    scratch_database: str
    tables: int
    rows: int
    schema_equal: bool
    dump_lines_differing: int  # pg_dump -s lines printed differently (see the module docstring)
    row_mismatches: list[str] = field(default_factory=list)  # "public.users: 10 vs 9"

    @property
    def ok(self) -> bool:
        return self.schema_equal and not self.row_mismatches


def verify_backup(url: URL, dump: Path, *, pg_dump: Client, pg_restore: Client) -> Verification:
    scratch = f"{(url.database or 'postgres')[:40]}_verify_{uuid.uuid4().hex[:8]}"
    scratch_url = url.set(database=scratch)
    try:
        return _verify(url, scratch_url, dump, pg_dump, pg_restore)
    except DBAPIError as exc:
        raise BackupFailed(f"could not verify the backup: {first_line(exc, url)}") from None


def _verify(url: URL, scratch_url: URL, dump: Path, pg_dump: Client, pg_restore: Client) -> Verification:
    scratch = str(scratch_url.database)
    _create_database(url, scratch)
    try:
        restored = run_client(
            scratch_url,
            pg_restore.path,
            ["--exit-on-error", "--single-transaction", "--no-owner", "--no-privileges",
             f"--dbname={scratch}", str(dump)],
        )  # fmt: skip
        if restored.returncode != 0:
            raise BackupFailed(
                f"the backup did not restore with {pg_restore.path}: {_last_error(restored.stderr)}",
                "the dump file is kept; restore it by hand to see every error",
            )
        before, after = _schema(url, pg_dump), _schema(scratch_url, pg_dump)
        differing = len(set(before) ^ set(after))
        schema_equal = before == after or _facts(url) == _facts(scratch_url)
        original, copy = _row_counts(url), _row_counts(scratch_url)
    finally:
        _drop_database(url, scratch)
    mismatches = [
        f"{name}: {original.get(name)} vs {copy.get(name)}"
        for name in sorted(set(original) | set(copy))
        if original.get(name) != copy.get(name)
    ]
    return Verification(
        scratch_database=scratch,
        tables=len(original),
        rows=sum(original.values()),
        schema_equal=schema_equal,
        dump_lines_differing=differing,
        row_mismatches=mismatches,
    )


def _schema(url: URL, pg_dump: Client) -> list[str]:
    result = run_client(url, pg_dump.path, ["--schema-only", "--no-owner", "--no-privileges"])
    if result.returncode != 0:
        raise BackupFailed(f"pg_dump --schema-only failed: {_last_error(result.stderr)}")
    return [
        line for line in result.stdout.splitlines() if line.strip() and not line.startswith(VOLATILE_PREFIXES)
    ]


def _facts(url: URL) -> list[str]:
    with session(url) as conn:
        return list(conn.scalars(SCHEMA_FACTS_SQL))


def _row_counts(url: URL) -> dict[str, int]:
    counts: dict[str, int] = {}
    with session(url) as conn:
        for schema, table in conn.execute(TABLES_SQL).all():
            count = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            counts[f"{schema}.{table}"] = int(_execute(conn, count).scalar_one())
    return counts


def _execute(conn: Connection, statement: sql.Composable) -> Any:
    """Run SQL composed with psycopg2.sql (identifiers quoted by the driver) through
    SQLAlchemy, so a failure is a DBAPIError like every other."""
    raw = conn.connection.dbapi_connection
    return conn.exec_driver_sql(statement.as_string(raw))  # type: ignore[arg-type]


def _create_database(url: URL, name: str) -> None:
    try:
        with session(url, isolation_level="AUTOCOMMIT") as conn:
            _execute(conn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except DBAPIError as exc:
        raise BackupFailed(
            f"cannot create the scratch database {name!r} to verify the backup: {first_line(exc, url)}",
            "run --verify as a role with CREATEDB, or verify on another server",
        ) from None


def _drop_database(url: URL, name: str) -> None:
    with session(url, isolation_level="AUTOCOMMIT") as conn:
        # pg_restore has exited, so nobody is connected; FORCE (13+) covers a stray session
        force = (
            sql.SQL(" WITH (FORCE)") if (conn.dialect.server_version_info or (0,)) >= (13,) else sql.SQL("")
        )
        _execute(conn, sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force)


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return next((line for line in lines if "error:" in line), lines[-1] if lines else "no output")

"""The database holds exactly the functions and triggers of the `.sql` files, and each change to a file is released.

What a migrated database holds is compared with the files by recreating: in one rolled-back
transaction, every function and trigger of the schema is dropped and the files are applied
afresh; the catalog (pg_get_functiondef, pg_get_triggerdef) must read the same before and
after. A function or trigger that a migration defined outside the files, a body a migration
changed, or a file that no longer reproduces the database all make it differ.

A migrated test database is built from the files as they are now, so an edit that no
migration releases shows in the pins instead (crm.migrate's docstring): the newest migration
applying a file must pin the file's digest.
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from alembic import op
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from crm.db.connect import async_url
from crm.migrate import SqlSource, alembic_config, apply_sql, split_statements, sql_sources

# Functions of the schema that extensions own (pg_trgm's) are the extension's business.
_FUNCTIONS = """
    SELECT p.oid::regprocedure::text AS name, pg_get_functiondef(p.oid) AS definition
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (
          SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
      )
"""
# Internal triggers are the ones PostgreSQL makes for foreign keys.
_TRIGGERS = """
    SELECT format('%I ON %s', t.tgname, t.tgrelid::regclass) AS name, pg_get_triggerdef(t.oid) AS definition
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
"""

Catalog = dict[str, dict[str, str]]


async def catalog(conn: asyncpg.Connection[Any]) -> Catalog:
    return {
        kind: {row["name"]: row["definition"] for row in await conn.fetch(query)}
        for kind, query in (("functions", _FUNCTIONS), ("triggers", _TRIGGERS))
    }


async def apply_files(conn: asyncpg.Connection[Any]) -> None:
    for source in sql_sources():
        for statement in source.statements():
            await conn.execute(statement)


async def drift(conn: asyncpg.Connection[Any]) -> tuple[Catalog, Catalog]:
    """(what the database holds, what it would hold from the files alone): equal when nothing drifted."""
    held = await catalog(conn)
    transaction = conn.transaction()
    await transaction.start()
    try:
        for trigger in held["triggers"]:
            await conn.execute(f"DROP TRIGGER {trigger}")
        for function in held["functions"]:
            # CASCADE: the trigram indexes over the search-text functions go too (rolled back).
            await conn.execute(f"DROP FUNCTION {function} CASCADE")
        await apply_files(conn)
        return held, await catalog(conn)
    finally:
        await transaction.rollback()


async def test_the_database_holds_exactly_the_functions_and_triggers_of_the_files(
    db: asyncpg.Connection[Any],
) -> None:
    held, from_files = await drift(db)
    assert held["functions"], "the migrated database holds no function at all"
    assert held["triggers"], "the migrated database holds no trigger at all"
    assert held == from_files


async def test_applying_the_files_again_changes_nothing(db: asyncpg.Connection[Any]) -> None:
    """How a change is released: a later migration re-applies the file over what is there."""
    before = await catalog(db)
    await apply_files(db)
    assert await catalog(db) == before


async def test_a_database_that_drifted_from_the_files_is_told(db: asyncpg.Connection[Any]) -> None:
    """The comparison can fail: a body changed outside the files, a function and a trigger no file defines."""
    await db.execute("""
        CREATE OR REPLACE FUNCTION crm_bump_segment(p_status text, p_type text, p_delta bigint) RETURNS void
        LANGUAGE sql AS $$ SELECT $$
    """)
    await db.execute("CREATE FUNCTION crm_stray() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$")
    await db.execute(
        "CREATE TRIGGER stray AFTER UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION crm_customers_segments_trg()"
    )
    held, from_files = await drift(db)
    assert held["functions"]["crm_stray()"]
    assert "crm_stray()" not in from_files["functions"]
    assert held["triggers"]["stray ON customers"]
    assert "stray ON customers" not in from_files["triggers"]
    signature = "crm_bump_segment(text,text,bigint)"
    assert held["functions"][signature] != from_files["functions"][signature]


def test_every_file_only_creates_or_replaces_functions_and_triggers() -> None:
    """So applying a file again replaces what it defines, and the recreation above sees all of it."""
    for source in sql_sources():
        for statement in source.statements():
            assert statement.startswith(("CREATE OR REPLACE FUNCTION ", "CREATE OR REPLACE TRIGGER ")), (
                f"{source.path}: {statement.splitlines()[0]}"
            )


def _pins() -> dict[SqlSource, tuple[str, str]]:
    """Each file's newest pin: (the revision of the newest migration applying it, the digest it pinned)."""
    scripts = ScriptDirectory.from_config(alembic_config())
    newest: dict[SqlSource, tuple[str, str]] = {}
    for script in scripts.walk_revisions():  # from the head down
        assert script.path is not None
        with open(script.path, encoding="utf-8") as module:
            tree = ast.parse(module.read())
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "apply_sql"):
                continue
            package, name = (ast.literal_eval(arg) for arg in call.args)
            (digest,) = (ast.literal_eval(k.value) for k in call.keywords if k.arg == "sha256")
            newest.setdefault(SqlSource(package, name), (script.revision, digest))
    return newest


def test_every_change_to_a_file_is_released_by_a_migration() -> None:
    pins = _pins()
    for source in sql_sources():
        assert source in pins, f"{source.path} is applied by no migration"
        revision, pinned = pins[source]
        assert source.digest() == pinned, (
            f"{source.path} changed since migration {revision} released it: release the change in a new "
            f"migration that applies it again with sha256={source.digest()!r} (crm.migrate's docstring)"
        )


def test_statements_split_on_semicolons_outside_bodies_quotes_and_comments() -> None:
    script = """
        -- a comment; not a statement
        CREATE OR REPLACE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'a;b' $$;
        CREATE OR REPLACE FUNCTION "g;h"() RETURNS void LANGUAGE plpgsql AS $body$
        BEGIN PERFORM ';'; END $body$;
        SELECT 'it''s; fine'
        -- trailing comment
    """
    assert split_statements(script) == [
        "CREATE OR REPLACE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'a;b' $$",
        'CREATE OR REPLACE FUNCTION "g;h"() RETURNS void LANGUAGE plpgsql AS $body$\n'
        "        BEGIN PERFORM ';'; END $body$",
        "SELECT 'it''s; fine'\n        -- trailing comment",
    ]
    with pytest.raises(ValueError, match=r"unterminated \$\$"):
        split_statements("CREATE FUNCTION f() AS $$ SELECT 1;")


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    name = f"crm_empty_{uuid.uuid4().hex[:12]}"
    admin_dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(admin_dsn).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_file_changed_since_its_migration_is_applied_with_bodies_unchecked(empty_database: str) -> None:
    """A fresh database runs an old migration on the newest text, which may name tables a later one creates."""
    rollups = SqlSource("crm.interactions", "rollups.sql")
    setup = await asyncpg.connect(empty_database)
    try:
        # The table the triggers are on, but none of the roll-up tables the functions write.
        await setup.execute("CREATE TABLE interactions (date timestamptz, type text, user_id uuid)")
    finally:
        await setup.close()

    def apply(sync_conn: Connection, sha256: str) -> str:
        with Operations.context(MigrationContext.configure(sync_conn)):
            apply_sql(rollups.package, rollups.name, sha256=sha256)
            return str(op.get_bind().exec_driver_sql("SHOW check_function_bodies").scalar_one())

    engine = create_async_engine(async_url(empty_database), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            # The released text, checked: the empty database has none of the tables it names.
            with pytest.raises(ProgrammingError, match="does not exist"):
                await conn.run_sync(apply, rollups.digest())
            await conn.rollback()
            # Pinned to an older text: applied unchecked (its functions are created), then checks are back on.
            assert await conn.run_sync(apply, "0123456789ab") == "on"
            functions = await conn.exec_driver_sql("SELECT count(*) FROM pg_proc WHERE proname = 'crm_bump_daily'")
            assert functions.scalar_one() == 1
    finally:
        await engine.dispose()

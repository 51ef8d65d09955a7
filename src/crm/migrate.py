"""Applying migrations programmatically, safely from several instances at once, and the SQL they apply.

Where trigger and function bodies live: in `.sql` files next to the feature whose derived
state they keep (`src/crm/<feature>/sql/*.sql`), never in a migration's strings. Each file
holds only `CREATE OR REPLACE FUNCTION` and `CREATE OR REPLACE TRIGGER` statements, so applying
it again replaces what it defines. A migration applies a file with `apply_sql(package, name,
sha256=...)`, pinning the digest of the file as that migration released it
(`python -m crm.migrate digest` prints every file's).

How a change to a file is released: edit the file and add a migration that, after any DDL the
new text needs, applies the file again with its new digest; it may also have to drop what the
file no longer defines (a removed function, an old signature) or rebuild an index over a
changed IMMUTABLE function. Earlier migrations are never edited. A database past them gets the
change from the new migration. A fresh database runs the earlier migrations too: their pins no
longer match the file, so they apply its newest text with function bodies unchecked (as
pg_restore does; the text may name a table the later migration creates), and the releasing
migration applies it again, checked. A trigger on a table or column that a later migration
adds goes in a new file that this later migration applies: no earlier one could create it.

tests/test_database_source.py holds this together: it fails when a file's newest pin is not its
content (a change nobody released) and when a migrated database holds a function or trigger
that differs from the files or that no file defines.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from alembic import command, op
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from crm.db.connect import async_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every instance of this service.
_MIGRATION_LOCK_KEY = 0x43524D5F4D494752  # "CRM_MIGR"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s")
    if database_url:
        config.attributes["database_url"] = database_url
    return config


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Upgrade under a transaction-scoped advisory lock: concurrent starters wait, then find nothing to do."""

    def _run(sync_conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.upgrade(config, revision)

    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    asyncio.run(upgrade_async(database_url, revision))


# What can hide a `;` that does not end a statement: a quoted identifier or string, a
# dollar-quoted body, a line comment. (No file uses E'' strings or /* */ comments.)
_LEXEMES = re.compile(r'\$(?:[A-Za-z_]\w*)?\$|"|\'|--|;')
_LEADING_COMMENTS = re.compile(r"\A(?:\s*--[^\n]*(?:\n|\Z))*\s*")


def split_statements(sql: str) -> list[str]:
    """The statements of a script, without their `;` and leading comments: asyncpg runs one per call."""
    statements: list[str] = []
    start = position = 0
    while match := _LEXEMES.search(sql, position):
        lexeme = match.group()
        if lexeme == ";":
            statements.append(sql[start : match.start()])
            start = position = match.end()
            continue
        closing = "\n" if lexeme == "--" else lexeme
        end = sql.find(closing, match.end())
        if end < 0:
            raise ValueError(f"unterminated {lexeme} in SQL script at offset {match.start()}")
        position = end + len(closing)
    statements.append(sql[start:])
    return [text for s in statements if (text := _LEADING_COMMENTS.sub("", s).rstrip())]


@dataclass(frozen=True, order=True)
class SqlSource:
    """One `.sql` file of a feature package: `SqlSource("crm.interactions", "rollups.sql")`."""

    package: str
    name: str

    @property
    def path(self) -> str:
        return f"{self.package.replace('.', '/')}/sql/{self.name}"

    def text(self) -> str:
        return resources.files(self.package).joinpath("sql", self.name).read_text(encoding="utf-8")

    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:12]

    def statements(self) -> list[str]:
        return split_statements(self.text())


def sql_sources() -> list[SqlSource]:
    """Every `.sql` file the package ships, whether or not a migration applies it."""
    root = resources.files("crm")
    return sorted(
        SqlSource(f"crm.{feature.name}", file.name)
        for feature in root.iterdir()
        if feature.is_dir() and feature.joinpath("sql").is_dir()
        for file in feature.joinpath("sql").iterdir()
        if file.name.endswith(".sql")
    )


def apply_sql(package: str, name: str, *, sha256: str) -> None:
    """Run one `.sql` file inside the running migration; `sha256` is its digest as this migration released it."""
    source = SqlSource(package, name)
    bind = op.get_bind()
    # Not the text this migration was written for: a later migration releases it (see the
    # module docstring) and checks its bodies then, against the schema they were written for.
    released = source.digest() == sha256
    checks = bind.exec_driver_sql("SHOW check_function_bodies").scalar_one()
    bind.exec_driver_sql(f"SET LOCAL check_function_bodies = {'on' if released else 'off'}")
    for statement in source.statements():
        # exec_driver_sql: the text goes to PostgreSQL as written (no `:name` bind parsing).
        bind.exec_driver_sql(statement)
    bind.exec_driver_sql(f"SET LOCAL check_function_bodies = {checks}")


def main(argv: list[str]) -> int:
    if argv != ["digest"]:
        print("usage: python -m crm.migrate digest   (each .sql file's digest, for apply_sql)", file=sys.stderr)
        return 2
    for source in sql_sources():
        print(f"{source.path}: apply_sql({source.package!r}, {source.name!r}, sha256={source.digest()!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

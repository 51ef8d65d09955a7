"""`crm demo-data`: bulk-load generated customers, contacts, interactions and the order projection
(what `crm orders sync` would have filled: orders of about 45% of the customers, and every
customer's figures summed from exactly those rows) through COPY.

Into empty tables it takes the fast path: drop foreign keys and secondary indexes, let
N worker processes generate and COPY chunks in parallel, then rebuild indexes (N at a
time) and constraints in bulk (each a single pass, instead of one index probe per row) and
recompute the maintained aggregates. Into non-empty tables it COPYs with everything in
place, so every constraint and trigger applies row by row.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from crm.demo.generate import (
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    FIGURES_COLUMNS,
    HISTORY_COLUMNS,
    INTERACTION_COLUMNS,
    ORDER_COLUMNS,
    generate_chunk,
    user_ids,
)

TABLES = ("customers", "contacts", "interactions", "history", "order_projections", "customer_order_figures")
# The tables whose secondary indexes the fast path drops and builds back. Not order_projections:
# its partial index's predicate does not come back from pg_indexes in the text it was made with
# (the same index, a different definition), and it is half the customers' size.
STRIPPED = ("customers", "contacts", "interactions", "history", "customer_order_figures")
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Plan:
    dsn: str
    customers: int
    contacts_per_customer: float
    interactions_per_customer: float
    seed: int
    # A `created` history entry per record (as writes through the API leave): about doubles the
    # load's time, so only when asked for (`crm demo-data --history`).
    history: bool = False

    def chunks(self) -> Iterator[tuple[int, int, int]]:
        for number, first in enumerate(range(0, self.customers, CHUNK)):
            yield number, first, min(CHUNK, self.customers - first)


@dataclass(frozen=True, slots=True)
class Saved:
    """What the fast path removed and must put back, as the database described it."""

    indexes: list[tuple[str, str]]  # table, definition
    foreign_keys: list[tuple[str, str, str]]  # table, name, definition


# --- worker processes ---------------------------------------------------------------------

_worker_state: dict[str, Any] = {}


def _worker_init(plan: Plan, fast: bool) -> None:
    loop = asyncio.new_event_loop()
    _worker_state["loop"] = loop
    _worker_state["plan"] = plan
    _worker_state["users"] = user_ids(plan.seed)
    conn = loop.run_until_complete(asyncpg.connect(plan.dsn))
    if fast:
        # Skip per-row triggers on the fast path: the aggregates are recomputed in bulk
        # afterwards. Needs superuser; without it the triggers simply run.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            loop.run_until_complete(conn.execute("SET session_replication_role = replica"))
    _worker_state["conn"] = conn


def _load_chunk(job: tuple[int, int, int]) -> tuple[int, int, int]:
    number, first, count = job
    plan: Plan = _worker_state["plan"]
    chunk = generate_chunk(
        plan.seed,
        number,
        first,
        count,
        plan.contacts_per_customer,
        plan.interactions_per_customer,
        _worker_state["users"],
        history=plan.history,
    )
    conn: asyncpg.Connection[Any] = _worker_state["conn"]

    async def copy() -> None:
        async with conn.transaction():
            # The figures before their customers: where triggers run (a load into tables that are not
            # empty), the customers' trigger then leaves these rows as they are instead of adding zeros.
            await conn.copy_records_to_table("customer_order_figures", records=chunk.figures, columns=FIGURES_COLUMNS)
            await conn.copy_records_to_table("order_projections", records=chunk.orders, columns=ORDER_COLUMNS)
            await conn.copy_records_to_table("customers", records=chunk.customers, columns=CUSTOMER_COLUMNS)
            await conn.copy_records_to_table("contacts", records=chunk.contacts, columns=CONTACT_COLUMNS)
            await conn.copy_records_to_table("interactions", records=chunk.interactions, columns=INTERACTION_COLUMNS)
            if chunk.history:  # a `created` entry for each record, as a write through the API leaves
                await conn.copy_records_to_table("history", records=chunk.history, columns=HISTORY_COLUMNS)

    _worker_state["loop"].run_until_complete(copy())
    return len(chunk.customers), len(chunk.contacts), len(chunk.interactions)


# --- the coordinator ----------------------------------------------------------------------


async def _is_empty(conn: asyncpg.Connection[Any]) -> bool:
    for table in TABLES:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608 - fixed names
            return False
    return True


async def _strip(conn: asyncpg.Connection[Any]) -> Saved:
    indexes = await conn.fetch(
        """
        SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = ANY($1::text[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        list(STRIPPED),
    )
    fks = await conn.fetch(
        """
        SELECT cl.relname AS table, c.conname AS name, pg_get_constraintdef(c.oid) AS definition
        FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid
        WHERE c.contype = 'f' AND cl.relname = ANY($1::text[])
        """,
        list(STRIPPED),
    )
    async with conn.transaction():
        for fk in fks:
            await conn.execute(f'ALTER TABLE {fk["table"]} DROP CONSTRAINT "{fk["name"]}"')
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    return Saved(
        [(i["tablename"], i["indexdef"]) for i in indexes], [(f["table"], f["name"], f["definition"]) for f in fks]
    )


# Each build's own budget: a GIN build keeps its entries in memory up to this limit before
# it merges, and a btree build sorts in it; two builds at once stay well inside the RAM of a
# small server.
_BUILD_MEMORY = "1GB"


_REBUILD = "SELECT crm_rebuild_aggregates()"
# The typo tier's dictionary of customers' words (crm/customers/sql/customer_words.sql): its
# trigger does not fire for rows loaded while the tables were stripped.
_REBUILD_WORDS = "SELECT crm_rebuild_customer_words()"
# The same for interactions' words (crm/interactions/sql/words.sql).
_REBUILD_INTERACTION_WORDS = "SELECT crm_rebuild_interaction_words()"


async def _build_order(conn: asyncpg.Connection[Any], indexes: list[tuple[str, str]]) -> list[str]:
    """The index builds and the roll-ups' rebuild, longest first, so that the last one to finish
    starts early (a table's size on disk, ten times over for an inverted index, which costs far
    more per row than a btree; the rebuild groups the interactions several ways)."""
    sizes = {table: await conn.fetchval("SELECT pg_relation_size(to_regclass($1))", table) or 0 for table in TABLES}
    jobs = list(indexes)
    if await _has_rebuild(conn):
        # Their SHARE locks on customers and interactions do not conflict with CREATE INDEX's.
        jobs.append(("interactions", _REBUILD))
        jobs.append(("customers", _REBUILD_WORDS))
        jobs.append(("interactions", _REBUILD_INTERACTION_WORDS))

    def cost(job: tuple[str, str]) -> int:
        table, statement = job
        inverted = " USING gin " in statement or " USING gist " in statement
        rebuild = statement in {_REBUILD, _REBUILD_WORDS, _REBUILD_INTERACTION_WORDS}
        return int(sizes.get(table, 0)) * (10 if inverted else 3 if rebuild else 1)

    return [statement for _, statement in sorted(jobs, key=cost, reverse=True)]


async def _run_all(dsn: str, statements: list[str], connections: int, say: Callable[[str], None]) -> None:
    """Run the statements on `connections` connections at once, each taking the next in turn."""
    pending = list(statements)

    async def runner() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"SET maintenance_work_mem = '{_BUILD_MEMORY}'")
            await conn.execute("SET max_parallel_maintenance_workers = 2")
            while pending:
                statement = pending.pop(0)
                started = time.perf_counter()
                await conn.execute(statement)
                say(f"  {statement.split(' ON ')[0]} ({time.perf_counter() - started:.1f} s)")
        finally:
            await conn.close()

    await asyncio.gather(*(runner() for _ in range(max(1, min(connections, len(pending))))))


async def _restore(dsn: str, saved: Saved, connections: int, say: Callable[[str], None]) -> None:
    """Rebuild the dropped indexes and the roll-ups on `connections` connections at once, then
    add the foreign keys back.

    A GIN build runs on one core from start to end (before PostgreSQL 18), so on their own the
    inverted indexes would leave the other cores idle for most of the rebuild. CREATE INDEX
    takes a SHARE lock, which does not conflict with itself: builds on the same table run side
    by side. Adding a foreign key locks both tables against another one, so those go one by one
    (each is a single join of two indexed columns).
    """
    conn = await asyncpg.connect(dsn)
    try:
        jobs = await _build_order(conn, saved.indexes)
    finally:
        await conn.close()
    await _run_all(dsn, jobs, connections, say)
    conn = await asyncpg.connect(dsn)
    try:
        for table, name, definition in saved.foreign_keys:
            started = time.perf_counter()
            await conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            say(f"  constraint {name} ({time.perf_counter() - started:.1f} s)")
    finally:
        await conn.close()


async def _has_rebuild(conn: asyncpg.Connection[Any]) -> bool:
    return bool(await conn.fetchval("SELECT to_regprocedure('crm_rebuild_aggregates()') IS NOT NULL"))


async def rebuild_aggregates(conn: asyncpg.Connection[Any]) -> None:
    """Recompute every maintained aggregate from the base tables (after a bulk load)."""
    if await _has_rebuild(conn):
        await conn.execute(_REBUILD)
        await conn.execute(_REBUILD_WORDS)
        await conn.execute(_REBUILD_INTERACTION_WORDS)


def load(plan: Plan, *, workers: int | None, progress: Callable[[int], None], say: Callable[[str], None]) -> None:
    workers = workers or os.cpu_count() or 2

    async def prepare() -> Saved | None:
        conn = await asyncpg.connect(plan.dsn)
        try:
            first_email = await conn.fetchval(
                "SELECT 1 FROM customers WHERE lower(email) LIKE $1 LIMIT 1", f"%.{plan.seed}.0@example.com"
            )
            if first_email:
                raise SystemExit(f"data of seed {plan.seed} is already loaded; pass another --seed")
            if not await _is_empty(conn):
                say("tables are not empty: loading with every index, constraint and trigger in place")
                return None
            say("empty tables: dropping foreign keys and secondary indexes for the load")
            return await _strip(conn)
        finally:
            await conn.close()

    def phase(name: str) -> None:
        say(f"{name} ({time.perf_counter() - started:.0f} s since the start)")

    async def finish(saved: Saved | None) -> None:
        if saved is not None:
            phase(f"rebuilding indexes, roll-ups and constraints on {workers} connections")
            await _restore(plan.dsn, saved, workers, say)
        else:
            conn = await asyncpg.connect(plan.dsn)
            try:
                phase("recomputing the roll-ups")
                await rebuild_aggregates(conn)
            finally:
                await conn.close()
        phase("vacuuming and analysing")
        # VACUUM sets the visibility map that index-only scans need (deep list pages walk the
        # sort index only); on a fresh load it is quick, and autovacuum would do it later.
        await _run_all(
            plan.dsn,
            [
                "VACUUM (ANALYZE) customers",
                "VACUUM (ANALYZE) contacts",
                "ANALYZE interactions",
                "ANALYZE history",
                "VACUUM (ANALYZE) customer_order_figures",
                "ANALYZE order_projections",
            ],
            workers,
            say,
        )
        phase("done")

    started = time.perf_counter()
    saved = asyncio.run(prepare())
    fast = saved is not None
    ctx = mp.get_context("spawn")
    phase(f"generating and copying rows in {workers} processes")
    try:
        with ctx.Pool(workers, initializer=_worker_init, initargs=(plan, fast)) as pool:
            for customers, _, _ in pool.imap_unordered(_load_chunk, plan.chunks()):
                progress(customers)
    finally:
        # Even after a failed load, put the indexes and constraints back.
        asyncio.run(finish(saved))

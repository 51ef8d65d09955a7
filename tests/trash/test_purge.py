"""The purge: what was deleted longer ago than CRM_TRASH_DAYS goes for good, one instance at a
time, in batches; a restore racing it loses or wins whole; history outlives it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

import crm
from crm.trash.service import PURGE_LOCK_KEY, purge
from tests.helpers import assert_problem, create_customer
from tests.history.support import history
from tests.trash.support import delete, figures, interaction, trash

Headers = dict[str, str]


async def _age(db: asyncpg.Connection[Any], record_id: str, days: int) -> None:
    """Make a deletion look `days` old."""
    await db.execute(
        "UPDATE trash SET deleted_at = deleted_at - make_interval(days => $2) "
        "WHERE deletion_id = (SELECT deletion_id FROM trash WHERE id = $1)",
        uuid.UUID(record_id),
        days,
    )


async def _trashed_customer(client: httpx.AsyncClient, headers: Headers) -> dict[str, Any]:
    customer = await create_customer(client, headers, contacts=[{"first_name": "A", "last_name": "B"}])
    await interaction(client, headers, customer["id"])
    await delete(client, headers, f"/api/customers/{customer['id']}")
    return customer


async def test_purge_removes_what_is_due_and_nothing_else_and_history_stays(
    app: Starlette, client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    old = await _trashed_customer(client, admin)
    recent = await _trashed_customer(client, admin)
    await _age(db, old["id"], 31)
    entries_before = await history(client, admin, old["id"])

    result = await purge(app.state.engine, 30, 100)

    assert (result.deletions, result.records, result.ran) == (1, 3, True)  # the customer, its contact, its interaction
    assert [i["id"] for i in await trash(client, admin)] == [recent["id"]]
    assert_problem(await client.post(f"/api/customers/{old['id']}/restore", headers=admin), 404)
    assert_problem(await client.post(f"/api/contacts/{old['contacts'][0]['id']}/restore", headers=admin), 404)
    assert await history(client, admin, old["id"]) == entries_before
    counts = await figures(client, admin, db)
    assert counts["served"] == counts["direct"]
    assert (await client.post(f"/api/customers/{recent['id']}/restore", headers=admin)).status_code == 200


async def test_purge_runs_in_batches(
    app: Starlette, client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    for _ in range(7):
        customer = await create_customer(client, admin)
        await delete(client, admin, f"/api/customers/{customer['id']}")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        del conn, cursor, rest
        if "DELETE FROM trash" in statement:
            statements.append(statement)

    from sqlalchemy import event

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", seen)
    try:
        result = await purge(app.state.engine, 0, 2)
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", seen)

    assert result.deletions == 7
    assert len(statements) == 4  # 2 + 2 + 2 + 1
    assert await db.fetchval("SELECT count(*) FROM trash") == 0


async def test_one_instance_at_a_time(
    app: Starlette, client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await delete(client, admin, f"/api/customers/{customer['id']}")
    await db.execute("SELECT pg_advisory_lock($1)", PURGE_LOCK_KEY)  # another instance purging

    busy = await purge(app.state.engine, 0, 100)

    assert (busy.ran, busy.deletions) == (False, 0)
    assert await db.fetchval("SELECT count(*) FROM trash") == 1
    await db.execute("SELECT pg_advisory_unlock($1)", PURGE_LOCK_KEY)
    assert (await purge(app.state.engine, 0, 100)).deletions == 1


async def test_a_restore_holding_the_row_wins_and_the_purge_skips_it(
    app: Starlette, client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await _trashed_customer(client, admin)
    async with db.transaction():  # what a restore holds while it runs
        await db.execute(
            "SELECT 1 FROM trash WHERE entity = 'customer' AND id = $1 FOR UPDATE", uuid.UUID(customer["id"])
        )
        skipped = await purge(app.state.engine, 0, 100)
    assert (skipped.ran, skipped.deletions) == (True, 0)
    assert await db.fetchval("SELECT count(*) FROM trash") == 3
    assert (await client.post(f"/api/customers/{customer['id']}/restore", headers=admin)).status_code == 200


async def test_a_purge_holding_the_row_wins_and_the_restore_then_404s_whole(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await _trashed_customer(client, admin)
    transaction = db.transaction()
    await transaction.start()
    try:
        # The purge's batch statement, mid-transaction: the head is locked and the deletion's rows gone.
        purged = await db.fetch(
            "WITH due AS (SELECT deletion_id FROM trash WHERE head FOR UPDATE SKIP LOCKED) "
            "DELETE FROM trash WHERE deletion_id IN (SELECT deletion_id FROM due) RETURNING id"
        )
        assert len(purged) == 3
        restore = asyncio.create_task(client.post(f"/api/customers/{customer['id']}/restore", headers=admin))
        await asyncio.sleep(0.3)
        assert not restore.done()  # waits for the purge's lock
    finally:
        await transaction.commit()
    assert_problem(await restore, 404)
    assert await db.fetchval("SELECT count(*) FROM customers WHERE id = $1", uuid.UUID(customer["id"])) == 0
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(customer["id"])) == 0
    assert await db.fetchval("SELECT count(*) FROM interactions WHERE customer_id = $1", uuid.UUID(customer["id"])) == 0


async def test_restores_racing_a_purge_each_win_or_lose_whole(
    app: Starlette, client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customers = [await _trashed_customer(client, admin) for _ in range(12)]

    async def restore(customer: dict[str, Any]) -> int:
        return (await client.post(f"/api/customers/{customer['id']}/restore", headers=admin)).status_code

    results = await asyncio.gather(purge(app.state.engine, 0, 3), *(restore(c) for c in customers))

    statuses = results[1:]
    assert set(statuses) <= {200, 404}
    assert await db.fetchval("SELECT count(*) FROM trash") == 0
    for customer, status in zip(customers, statuses, strict=True):
        cid = uuid.UUID(customer["id"])
        live = (
            await db.fetchval("SELECT count(*) FROM customers WHERE id = $1", cid),
            await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", cid),
            await db.fetchval("SELECT count(*) FROM interactions WHERE customer_id = $1", cid),
        )
        assert live == ((1, 1, 1) if status == 200 else (0, 0, 0)), (status, live)
    counts = await figures(client, admin, db)
    assert counts["served"] == counts["direct"]


def test_crm_purge_on_demand(tmp_path: Path, database_url: str) -> None:
    async def prepare() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for age in (40, 10):
                record = '{"id": "x"}'
                await conn.execute(
                    "INSERT INTO trash (entity, id, customer_id, deletion_id, head, record, summary, deleted_at) "
                    "VALUES ('customer', $1, $1, $2, true, $3::jsonb, 'S', now() - make_interval(days => $4))",
                    uuid.uuid4(),
                    uuid.uuid4(),
                    record,
                    age,
                )
        finally:
            await conn.close()

    asyncio.run(prepare())
    src = str(Path(crm.__file__).parents[1])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": src, "DATABASE_URL": database_url, "CRM_DATA_DIR": str(tmp_path)}
    command = str(Path(sys.executable).with_name("crm"))

    done = subprocess.run(
        [command, "purge"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "purged 1 deletions (1 records)"
    shorter = subprocess.run(
        [command, "purge", "--days", "5"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shorter.stdout.strip().splitlines()[-1] == "purged 1 deletions (1 records)", shorter.stderr

"""What the deliveries trigger costs a write: `python -m tests.webhooks.trigger_cost [server URL]`.

Not a test (nothing to assert on a shared machine). Two figures per case: one event inserted
per transaction, as a change writes it (synchronous_commit off: the flush to disk is the same
in every case), and the INSERT statement alone in a server-side loop (no network, no commit:
the trigger's own cost). Cases: the trigger off, then on with 0, 10 non-matching, 1 matching
and 10 matching subscriptions, in alternating rounds; the medians are printed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import uuid

import asyncpg

from crm.migrate import upgrade_async

WRITES = 2000
ROUNDS = 5
_INSERT = """
    INSERT INTO events (id, type, customer_id, subject, sequence, data)
    VALUES (gen_random_uuid(), 'crm.customer.updated', $1, $1, $2, $3)
"""
_DATA = json.dumps({"customer": {"id": "x", "first_name": "Ivan", "city": "Lviv"}, "changes": {}})


async def writes(conn: asyncpg.Connection, sequence: list[int]) -> float:
    """µs per write, each its own transaction, as the service writes them (network round trips included)."""
    customer = uuid.uuid4()
    started = time.perf_counter()
    for _ in range(WRITES):
        sequence[0] += 1
        await conn.execute(_INSERT, customer, sequence[0], _DATA)
    return (time.perf_counter() - started) / WRITES * 1e6


_SERVER_LOOP = """
    DO $$
    DECLARE c uuid := gen_random_uuid();
    BEGIN
        FOR i IN 1..%d LOOP
            INSERT INTO events (id, type, customer_id, subject, sequence, data)
            VALUES (gen_random_uuid(), 'crm.customer.updated', c, c, i, '{"customer": {"city": "Lviv"}}');
        END LOOP;
    END $$
"""


async def statements(conn: asyncpg.Connection) -> float:
    """µs per INSERT statement inside the server (one loop, no network, no commit): the trigger's own cost."""
    transaction = conn.transaction()
    await transaction.start()
    started = time.perf_counter()
    await conn.execute(_SERVER_LOOP % (WRITES * 5))
    elapsed = time.perf_counter() - started
    await transaction.rollback()
    return elapsed / (WRITES * 5) * 1e6


async def setup(conn: asyncpg.Connection, case: str) -> None:
    await conn.execute("DELETE FROM webhook_deliveries")
    await conn.execute("DELETE FROM webhook_subscriptions")
    trigger = "DISABLE" if case == "no trigger" else "ENABLE"
    await conn.execute(f"ALTER TABLE events {trigger} TRIGGER crm_webhook_deliveries")
    count, pattern = {
        "no trigger": (0, ""),
        "0 subscriptions": (0, ""),
        "10 not matching": (10, "crm.interaction.*"),
        "1 matching": (1, "crm.customer.*"),
        "10 matching": (10, "crm.customer.*"),
    }[case]
    for _ in range(count):
        await conn.execute(
            "INSERT INTO webhook_subscriptions (url, events, secret) VALUES ('https://93.184.216.34/', $1, 'whsec_x')",
            [pattern],
        )


async def main(server: str) -> None:
    name = f"crm_trigger_cost_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        await upgrade_async(url)
        conn = await asyncpg.connect(url)
        # The commit's flush to disk is the same with or without the trigger, and on a shared
        # machine its noise is larger than what is measured: leave it out.
        await conn.execute("SET synchronous_commit = off")
        cases = ["no trigger", "0 subscriptions", "10 not matching", "1 matching", "10 matching"]
        results: dict[str, list[float]] = {case: [] for case in cases}
        inside: dict[str, list[float]] = {case: [] for case in cases}
        sequence = [0]
        for _ in range(ROUNDS):
            for case in cases:
                await setup(conn, case)
                results[case].append(await writes(conn, sequence))
                inside[case].append(await statements(conn))
        await conn.close()
        base = statistics.median(results["no trigger"])
        base_inside = statistics.median(inside["no trigger"])
        for case in cases:
            median, server = statistics.median(results[case]), statistics.median(inside[case])
            print(
                f"{case:>16}: {median:6.1f} µs per write ({median - base:+6.1f}),"
                f" {server:6.1f} µs per statement in the server ({server - base_inside:+6.1f})"
            )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres"))

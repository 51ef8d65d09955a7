"""Events benchmarks: commit-to-broker latency under a steady write rate, and the relay's throughput.

- commit to broker: PUTs (one event each) at a fixed rate against a running service whose relay
  publishes to RabbitMQ; a consumer on the exchange takes, for every event, the time it arrived
  minus its `time` (stamped when the row was written, just before the commit, so the figure
  slightly over-counts). Target: p99 < 500 ms at 500 writes/s.
- relay throughput: a scratch database (migrated, then dropped) whose outbox holds N events
  written directly; a relay publishes them all to RabbitMQ with confirms, routed to a queue.
  Target: >= 2,000 events/s.

bench/run.py runs both per database (`--only events`); standalone, against one PostgreSQL server,
with a service it starts itself: python bench/events.py --database postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
LATENCY_TARGET_MS = 500.0
THROUGHPUT_TARGET = 2_000.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def admin_token(secret: str) -> str:
    now = int(time.time())
    claims = {"id": str(uuid.uuid4()), "email": "bench@example.com", "role": "admin", "type": "access"}
    return jwt.encode({**claims, "iat": now, "exp": now + 86_400}, secret, algorithm="HS256")


async def _bound_queue(channel: aio_pika.abc.AbstractChannel, exchange: str) -> aio_pika.abc.AbstractQueue:
    target = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"{exchange}.bench", durable=False, exclusive=True, auto_delete=True)
    await queue.bind(target, "#")
    return queue


async def commit_to_broker(
    base: str, token: str, exchange: str, *, rate: float = 500, duration: float = 20, customers: int = 200
) -> dict[str, Any]:
    """PUTs at `rate` per second for `duration` seconds; each event's commit-to-broker latency."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []  # from the row's write (before the commit): an upper bound
    arrived_at: dict[str, float] = {}  # the PUT's notes -> when its event reached the consumer
    answered_at: dict[str, float] = {}  # the PUT's notes -> when its 200 reached the client (after the commit)
    started_at = 0.0
    connection = await aio_pika.connect(AMQP_URL)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as http:
        ids = []
        for n in range(customers):
            body = {"first_name": "Bench", "last_name": f"Events{n}", "email": f"bench.events.{uuid.uuid4().hex}@e.com"}
            response = await http.post("/api/customers", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])
        channel = await connection.channel()
        queue = await _bound_queue(channel, exchange)
        measured: set[str] = set()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            arrived = time.time()
            event = json.loads(message.body)
            written = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
            if written >= started_at and message.message_id not in measured:
                measured.add(str(message.message_id))
                latencies.append((arrived - written) * 1000)
                notes = (event["data"].get("changes", {}).get("notes") or {}).get("new")
                if isinstance(notes, str):
                    arrived_at[notes] = arrived

        await queue.consume(on_message, no_ack=True)
        await asyncio.sleep(1.0)
        statuses: dict[int, int] = {}
        in_flight: set[asyncio.Task[None]] = set()
        rng = random.Random(5)

        async def put(n: int) -> None:
            response = await http.put(f"/api/customers/{rng.choice(ids)}", json={"notes": f"bench {n}"})
            answered_at[f"bench {n}"] = time.time()
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started_at = time.time()
        t0 = time.perf_counter()
        total = int(rate * duration)
        skipped = 0
        for n in range(total):
            delay = t0 + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= 64:
                skipped += 1  # the service is behind: count it, do not queue up
                continue
            task = asyncio.create_task(put(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - t0
        ok = statuses.get(200, 0)
        deadline = time.perf_counter() + 30
        while len(latencies) < ok and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
    await connection.close()
    # From the answer (after the commit) to the broker: a lower bound; below 0 when the event
    # reached the consumer before the answer reached the client.
    after_answer = [(arrived_at[k] - answered_at[k]) * 1000 for k in arrived_at.keys() & answered_at.keys()]
    return {
        "answer_p50_ms": percentile(after_answer, 0.50),
        "answer_p99_ms": percentile(after_answer, 0.99),
        "rate_asked": rate,
        "writes_per_s": ok / elapsed,
        "statuses": statuses,
        "skipped": skipped,
        "events": len(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies, default=float("nan")),
        "met": bool(latencies) and percentile(latencies, 0.99) < LATENCY_TARGET_MS and len(latencies) >= ok,
    }


async def relay_throughput(server_url: str, *, events: int = 50_000, customers: int = 1_000) -> dict[str, Any]:
    """A scratch database's outbox of `events` published by one relay; events per second."""
    from crm.config import Settings
    from crm.events.relay import Relay
    from crm.migrate import upgrade_async

    name = f"crm_bench_relay_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    exchange = f"bench.crm.events.{uuid.uuid4().hex[:8]}"
    try:
        await upgrade_async(url)
        db = await asyncpg.connect(url)
        # A customer record's size and shape, numbered per customer as the outbox numbers them.
        await db.execute(
            """
            INSERT INTO events (id, type, customer_id, subject, sequence, data)
            SELECT gen_random_uuid(), 'crm.customer.updated', c.id, c.id, s.n,
                   jsonb_build_object(
                       'customer', jsonb_build_object('id', c.id, 'first_name', 'Olena', 'last_name', 'Kovalenko',
                           'email', 'olena.kovalenko@example.com', 'phone', '+380 67 123 4567', 'status', 'active',
                           'company_name', 'Agro Nova', 'notes', repeat('x', 120), 'version', s.n),
                       'changes', jsonb_build_object('notes', jsonb_build_object('old', 'a', 'new', 'b')),
                       'actor', jsonb_build_object('user_id', gen_random_uuid(), 'role', 'manager'),
                       'request_id', md5(s.n::text))
            FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, $1)) c,
                 generate_series(1, $2) AS s(n)
            ORDER BY s.n
            """,
            customers,
            events // customers,
        )
        total = await db.fetchval("SELECT count(*) FROM events")
        connection = await aio_pika.connect(AMQP_URL)
        channel = await connection.channel()
        await _bound_queue(channel, exchange)
        settings = Settings(events_amqp_url=AMQP_URL, events_exchange=exchange, log_level="warning")
        relay = Relay(settings, url, publish_metrics=False)
        relay.start()
        await relay.became_leader.wait()
        t0 = time.perf_counter()
        while relay.published < total:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        await relay.stop()
        await channel.exchange_delete(exchange)
        await connection.close()
        await db.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    rate = total / elapsed
    return {"events": total, "seconds": elapsed, "events_per_s": rate, "met": rate >= THROUGHPUT_TARGET}


def describe(latency: dict[str, Any], throughput: dict[str, Any]) -> list[str]:
    """The report's lines for both cases."""
    return [
        "| events case | measured | target | met |",
        "|---|---|---|---|",
        f"| commit to broker at {latency['rate_asked']:.0f} writes/s asked "
        f"({latency['writes_per_s']:.0f}/s done, {latency['events']} events, statuses {latency['statuses']}, "
        f"{latency['skipped']} skipped) | p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms, "
        f"max {latency['max_ms']:.0f} ms from the row's write (an upper bound); p50 {latency['answer_p50_ms']:.0f} ms, "
        f"p99 {latency['answer_p99_ms']:.0f} ms from the 200 (a lower bound) "
        f"| p99 < {LATENCY_TARGET_MS:.0f} ms | {'yes' if latency['met'] else 'NO'} |",
        f"| relay throughput ({throughput['events']} events) | {throughput['events_per_s']:.0f} events/s "
        f"({throughput['seconds']:.1f} s) | >= {THROUGHPUT_TARGET:.0f}/s | {'yes' if throughput['met'] else 'NO'} |",
    ]


def _wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="an admin URL of a PostgreSQL server")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    name = f"crm_bench_events_{uuid.uuid4().hex[:8]}"
    url = args.database.rsplit("/", 1)[0] + f"/{name}"
    secret = "bench-secret-" + "b" * 40
    exchange = f"bench.crm.events.{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        admin = await asyncpg.connect(args.database)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()

    async def drop() -> None:
        admin = await asyncpg.connect(args.database)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(create())
    port = 8314
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "DATABASE_URL": url,
        "JWT_SECRET": secret,
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "warning",
        "EVENTS_AMQP_URL": AMQP_URL,
        "EVENTS_EXCHANGE": exchange,
        "CRM_DATA_DIR": tempfile.mkdtemp(prefix="crm-bench-events-"),
    }
    serve = [sys.executable, "-m", "crm.cli", "serve", "--port", str(port), "--workers", str(args.workers)]
    service = subprocess.Popen(serve, env=env, cwd=ROOT)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/ready")
        latency = asyncio.run(
            commit_to_broker(
                f"http://127.0.0.1:{port}", admin_token(secret), exchange, rate=args.rate, duration=args.duration
            )
        )
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
        asyncio.run(drop())
    throughput = asyncio.run(relay_throughput(args.database, events=args.events))
    print("\n".join(describe(latency, throughput)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

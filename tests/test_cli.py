"""The `crm` command and the configuration it starts from, run as real subprocesses."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from sqlalchemy.engine import make_url

from crm.config import ConfigurationError
from crm.main import create_app
from tests.auth.support import app_client, free_port, make_settings, public_pem, rsa_private_key

CRM = str(Path(sys.executable).with_name("crm"))
AUTH_CLAIMS = {"id", "email", "role", "type", "jti", "iat", "exp"}
# Variables of the service (and of the rate limiter/CORS it also reads) a developer's shell may carry.
_SERVICE_PREFIXES = ("CRM_", "JWT_", "DATABASE_URL", "DB_", "LOG_", "ORDER_SERVICE", "REDIS", "RATE_LIMIT", "CORS")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus every service setting, plus a private data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SERVICE_PREFIXES) and k not in {"HOST", "PORT"}}
    env["CRM_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def crm(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # cwd is a temp dir: the service reads `.env` from its working directory.
    return subprocess.run([CRM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def mint(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = crm("token", *args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2
    assert result.stdout == token + "\n"
    return token


def header(token: str) -> dict[str, Any]:
    head = token.split(".", maxsplit=1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


# --- crm token ---------------------------------------------------------------------------------


def test_token_has_exactly_the_auth_service_claims(tmp_path: Path) -> None:
    data = tmp_path / "data"
    user_id = "6f1c1b1e-8f1e-4c47-9b36-2a7c9c1b7a11"
    before = int(time.time())
    token = mint(
        cli_env(data),
        tmp_path,
        "--role",
        "admin",
        "--user-id",
        user_id,
        "--email",
        "ops@example.com",
        "--ttl",
        "15m",
    )
    after = int(time.time())
    secret = (data / "jwt-secret").read_text().strip()
    assert len(secret) >= 32
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert set(claims) == AUTH_CLAIMS
    assert claims["id"] == user_id
    assert claims["email"] == "ops@example.com"
    assert claims["role"] == "admin"
    assert claims["type"] == "access"
    assert before <= claims["iat"] <= after
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert header(token) == {"alg": "HS256", "typ": "JWT"}
    # The secret file is private to its owner.
    assert stat.S_IMODE((data / "jwt-secret").stat().st_mode) == 0o600


@pytest.mark.parametrize(("ttl", "seconds"), [("900", 900), ("30s", 30), ("2h", 7200), ("1d", 86400), (" 1h ", 3600)])
def test_token_ttl_units(tmp_path: Path, ttl: str, seconds: int) -> None:
    token = mint(cli_env(tmp_path), tmp_path, "--role", "employee", "--ttl", ttl)
    claims = jwt.decode(token, (tmp_path / "jwt-secret").read_text(), algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == seconds


def test_token_defaults(tmp_path: Path) -> None:
    token = mint(cli_env(tmp_path), tmp_path, "--role", "manager")
    claims = jwt.decode(token, (tmp_path / "jwt-secret").read_text(), algorithms=["HS256"])
    assert uuid.UUID(claims["id"]).version == 4
    assert claims["email"] == "manager@example.com"
    assert claims["exp"] - claims["iat"] == 3600
    # Two tokens: two different token ids.
    other = jwt.decode(mint(cli_env(tmp_path), tmp_path, "--role", "manager"), options={"verify_signature": False})
    assert other["jti"] != claims["jti"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "admin", "--ttl", "abc"], "--ttl"),
        (["--role", "admin", "--ttl", "0"], "--ttl"),
        (["--role", "admin", "--ttl", "0m"], "--ttl"),
        (["--role", "admin", "--ttl", "15x"], "--ttl"),
        (["--role", "admin", "--ttl", "-5m"], "--ttl"),
        (["--role", "admin", "--ttl", "1.5h"], "--ttl"),
        (["--role", "admin", "--ttl", ""], "--ttl"),
        (["--role", "admin", "--ttl", "15m\n"], None),  # stripped: valid
        (["--role", "admin", "--user-id", "nope"], "--user-id"),
        (["--role", "admin", "--user-id", "123"], "--user-id"),
        (["--role", "admin", "--user-id", ""], None),  # empty: a random id
        (["--role", "auditor"], "--role"),
        (["--role", "Admin"], "--role"),
        ([], "--role"),
    ],
)
def test_token_bad_arguments(tmp_path: Path, args: list[str], message: str | None) -> None:
    result = crm("token", *args, env=cli_env(tmp_path), cwd=tmp_path)
    if message is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_token_signs_with_jwt_secret_when_set(tmp_path: Path) -> None:
    secret = "shared-with-the-auth-service-" + "s" * 20
    token = mint(cli_env(tmp_path, JWT_SECRET=secret), tmp_path, "--role", "admin")
    assert jwt.decode(token, secret, algorithms=["HS256"])["role"] == "admin"
    assert not (tmp_path / "jwt-secret").exists()


def test_token_carries_issuer_and_audience_when_configured(tmp_path: Path) -> None:
    env = cli_env(tmp_path, JWT_SECRET="k" * 40, JWT_ISSUER="https://auth.example.com", JWT_AUDIENCE="crm")
    token = mint(env, tmp_path, "--role", "admin")
    claims = jwt.decode(token, "k" * 40, algorithms=["HS256"], audience="crm", issuer="https://auth.example.com")
    assert set(claims) == AUTH_CLAIMS | {"iss", "aud"}


def test_token_cannot_be_minted_with_a_public_key(tmp_path: Path) -> None:
    env = cli_env(tmp_path, JWT_PUBLIC_KEY=public_pem(rsa_private_key()))
    result = crm("token", "--role", "admin", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "HS256 secret" in result.stderr
    assert result.stdout == ""


def test_invalid_configuration_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    result = crm("token", "--role", "admin", env=cli_env(tmp_path, CRM_ENV="staging"), cwd=tmp_path)
    assert result.returncode == 2
    assert "CRM_ENV" in result.stderr
    assert "Traceback" not in result.stderr


def test_env_name_is_case_insensitive(tmp_path: Path) -> None:
    assert make_settings(tmp_path, CRM_ENV="Production").is_production


# --- development secret ----------------------------------------------------------------------


def test_dev_secret_is_generated_once_and_reused(tmp_path: Path) -> None:
    first = make_settings(tmp_path).dev_jwt_secret()
    again = make_settings(tmp_path).dev_jwt_secret()
    assert first == again
    assert len(first) >= 32
    assert (tmp_path / "jwt-secret").read_text() == first
    assert [p.name for p in tmp_path.iterdir()] == ["jwt-secret"]  # no temp files left behind


def test_dev_secret_is_agreed_on_by_concurrent_starters(tmp_path: Path) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        results.append(make_settings(tmp_path).dev_jwt_secret())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 8
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jwt-secret"]


def test_concurrent_token_commands_share_one_secret(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "fresh")
    procs = [
        subprocess.Popen([CRM, "token", "--role", "admin"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        for _ in range(5)
    ]
    tokens = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    secret = (tmp_path / "fresh" / "jwt-secret").read_text()
    for token in tokens:
        assert jwt.decode(token, secret, algorithms=["HS256"])["type"] == "access"


@pytest.mark.parametrize("content", ["", "   \n", "short"])
def test_unusable_dev_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "jwt-secret").write_text(content)
    with pytest.raises(ConfigurationError, match="jwt-secret"):
        make_settings(tmp_path).dev_jwt_secret()
    result = crm("token", "--role", "admin", env=cli_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "jwt-secret" in result.stderr
    assert "Traceback" not in result.stderr


async def test_server_without_jwt_setting_accepts_crm_token(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    token = mint(cli_env(data), tmp_path, "--role", "employee")
    settings = make_settings(data)
    assert not settings.has_explicit_jwt
    async with app_client(settings, database_url) as client:
        ok = await client.get("/api/customers", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        # A token from another data dir (another secret) is refused.
        other = mint(cli_env(tmp_path / "other"), tmp_path, "--role", "employee")
        refused = await client.get("/api/customers", headers={"Authorization": f"Bearer {other}"})
        assert refused.status_code == 401


# --- production refuses to start ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "missing", "present"),
    [
        ({}, ["DATABASE_URL", "JWT_SECRET"], []),
        ({"database_url": "postgresql://db/crm"}, ["JWT_SECRET"], ["DATABASE_URL"]),
        ({"jwt_secret": "s" * 40}, ["DATABASE_URL"], ["JWT_SECRET"]),
        ({"jwt_jwks_url": "https://auth/jwks.json"}, ["DATABASE_URL"], ["JWT_SECRET"]),
    ],
)
def test_check_production_names_what_is_missing(
    tmp_path: Path, overrides: dict[str, Any], missing: list[str], present: list[str]
) -> None:
    settings = make_settings(tmp_path, CRM_ENV="production", **overrides)
    with pytest.raises(ConfigurationError) as raised:
        settings.check_production()
    message = str(raised.value)
    for name in missing:
        assert name in message
    for name in present:
        assert name not in message
    with pytest.raises(ConfigurationError):
        create_app(settings, database_url="postgresql://db/crm")


@pytest.mark.parametrize("jwt_setting", ["jwt_secret", "jwt_public_key", "jwt_jwks_url"])
def test_check_production_passes_when_configured(tmp_path: Path, jwt_setting: str) -> None:
    value = public_pem(rsa_private_key()) if jwt_setting == "jwt_public_key" else "https://auth/jwks.json"
    settings = make_settings(tmp_path, CRM_ENV="production", database_url="postgresql://db/crm", **{jwt_setting: value})
    settings.check_production()  # does not raise
    make_settings(tmp_path).check_production()  # development never does


def test_empty_values_count_as_unset(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, CRM_ENV="production", database_url="  ", jwt_secret="")
    with pytest.raises(ConfigurationError, match="DATABASE_URL and JWT_SECRET"):
        settings.check_production()


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize(
    ("extra", "missing", "present"),
    [
        ({}, ["DATABASE_URL", "JWT_SECRET"], []),
        ({"DATABASE_URL": "postgresql://crm@127.0.0.1:1/crm"}, ["JWT_SECRET"], ["DATABASE_URL"]),
        ({"JWT_SECRET": "s" * 40}, ["DATABASE_URL"], ["JWT_SECRET"]),
    ],
)
def test_production_cli_refuses_to_start(
    tmp_path: Path, command: str, extra: dict[str, str], missing: list[str], present: list[str]
) -> None:
    data = tmp_path / "data"
    result = crm(command, env=cli_env(data, CRM_ENV="production", **extra), cwd=tmp_path, timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: CRM_ENV=production requires")
    for name in missing:
        assert name in result.stderr
    for name in present:
        assert name not in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was started or created on the way to the refusal.
    assert not data.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"JWT_PUBLIC_KEY": "not a pem"}, "JWT_PUBLIC_KEY is not a PEM-encoded public key"),
        ({"JWT_JWKS_URL": "http://auth/jwks.json", "JWT_ALGORITHMS": "HS256"}, "must be RSA or EC algorithms"),
        ({"PORT": "eighty"}, "PORT"),
    ],
)
def test_serve_refuses_a_bad_configuration_before_starting_anything(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    data = tmp_path / "data"
    result = crm("serve", env=cli_env(data, **extra), cwd=tmp_path, timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data / "pg").exists()


def test_serve_refuses_an_unusable_dev_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "jwt-secret").write_text("")
    result = crm("serve", env=cli_env(data), cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "jwt-secret holds no usable secret" in result.stderr
    assert not (data / "pg").exists()


def test_production_settings_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CRM_ENV=production\nJWT_SECRET=\n")
    result = crm("serve", env=cli_env(tmp_path / "data"), cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "DATABASE_URL and JWT_SECRET" in result.stderr


# --- crm migrate -----------------------------------------------------------------------------------


def _dsn(server_url: str, database: str) -> str:
    return make_url(server_url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


@pytest.fixture
async def fresh_database(server_url: str) -> Any:
    """An empty database (no migrations applied), dropped afterwards."""
    name = f"crm_cli_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_dsn(server_url, make_url(server_url).database or "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _dsn(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def alembic_versions(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await conn.close()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from crm.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head
    return head


async def acrm(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`crm ...` without blocking the event loop the database fixtures run on."""
    proc = await asyncio.create_subprocess_exec(
        CRM, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_migrate_applies_the_migrations(tmp_path: Path, fresh_database: str) -> None:
    assert await tables(fresh_database) == set()
    env = cli_env(tmp_path, DATABASE_URL=fresh_database)
    code, out, err = await acrm("migrate", env=env, cwd=tmp_path)
    assert code == 0, err
    assert out.strip() == "migrations applied"
    assert await tables(fresh_database) >= {"customers", "contacts", "interactions", "alembic_version"}
    assert await alembic_versions(fresh_database) == [head_revision()]
    # Running it again is a no-op.
    code, _, err = await acrm("migrate", env=env, cwd=tmp_path)
    assert code == 0, err
    assert await alembic_versions(fresh_database) == [head_revision()]


@pytest.mark.slow
async def test_concurrent_migrate_is_safe(tmp_path: Path, fresh_database: str) -> None:
    env = cli_env(tmp_path, DATABASE_URL=fresh_database)
    results = await asyncio.gather(*(acrm("migrate", env=env, cwd=tmp_path) for _ in range(3)))
    for code, out, err in results:
        assert code == 0, err
        assert out.strip() == "migrations applied"
    assert await tables(fresh_database) >= {"customers", "contacts", "interactions"}
    assert await alembic_versions(fresh_database) == [head_revision()]


def test_migrate_against_an_unreachable_database_fails_cleanly(tmp_path: Path) -> None:
    env = cli_env(tmp_path, DATABASE_URL=f"postgresql://crm@127.0.0.1:{free_port()}/crm")
    result = crm("migrate", env=env, cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert "migrations applied" not in result.stdout


# --- crm serve: the embedded database survives a restart -------------------------------------------


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM, as a supervisor would; returns the exit code and how long it took."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started


@contextmanager
def running_server(env: dict[str, str], cwd: Path, log: Path, *args: str) -> Iterator[Server]:
    """`crm serve` on a free port, ready (GET /ready is 200) before the body runs; always stopped."""
    port = free_port()
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [CRM, "serve", "--port", str(port), *args], env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"crm serve exited with {proc.returncode}:\n{server.output()}"
            assert time.monotonic() < deadline, f"crm serve not ready in time:\n{server.output()}"
            try:
                if httpx.get(f"{server.base_url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        _stop_leftover_postgres(Path(env["CRM_DATA_DIR"]) / "pg")


def _stop_leftover_postgres(pgdata: Path) -> None:
    """If a server died without stopping its embedded PostgreSQL, stop that one postmaster."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(pgdata).encode() in cmdline:
        os.kill(pid, signal.SIGTERM)


def postmaster_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    return Path(f"/proc/{pid}").exists()


@pytest.fixture
def own_dir() -> Iterator[Path]:
    """A directory outside pytest's basetemp, which another pytest run on the machine may prune
    (it keeps the newest few) while this test's embedded server still uses it."""
    path = Path(tempfile.mkdtemp(prefix="crm-cli-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_embedded_database_survives_a_restart(own_dir: Path) -> None:
    tmp_path = own_dir
    data = tmp_path / "data"
    env = cli_env(data)
    log = tmp_path / "serve.log"

    with running_server(env, tmp_path, log) as server:
        assert (data / "pg" / "PG_VERSION").exists()
        token = mint(env, tmp_path, "--role", "admin")
        auth = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{server.base_url}/api/customers",
            json={"first_name": "Persistent", "last_name": "Customer", "email": "persist@example.com"},
            headers=auth,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        customer = created.json()
        code, took = server.stop()
        assert code == 0, server.output()
        assert took < 15, took
        # The embedded PostgreSQL went down with the server that started it.
        assert not postmaster_running(data / "pg")

    with running_server(env, tmp_path, log) as server:
        # Same data dir, same secret: the token minted before the restart still works.
        got = httpx.get(f"{server.base_url}/api/customers/{customer['id']}", headers=auth, timeout=10)
        assert got.status_code == 200, got.text
        assert got.json()["email"] == "persist@example.com"
        assert got.json()["created_at"] == customer["created_at"]
        listed = httpx.get(f"{server.base_url}/api/customers", headers=auth, timeout=10).json()
        assert listed["pagination"]["total"] == 1
        code, _ = server.stop()
        assert code == 0, server.output()
    output = log.read_text()
    assert "Traceback" not in output
    # The server logs JSON lines; each request is one of them.
    access = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"request"' in line]
    assert any(r.get("path") == "/api/customers" and r.get("status") == 201 for r in access)

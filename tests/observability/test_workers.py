"""GET /metrics of a real `crm serve --workers 2`: one scrape answers for both workers, and a
worker killed and restarted by the server takes nothing back from the instance's counters."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from crm.config import Settings
from tests.helpers import create_customer
from tests.observability.support import label_values, value
from tests.reliability.test_shutdown import free_port

pytestmark = pytest.mark.slow

CRM = Path(sys.executable).with_name("crm")
ROUTE = {"method": "GET", "route": "/api/customers/{customer_id}", "status": "200"}
REQUESTS = "crm_http_requests_total"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    metrics_parent: Path
    token: str

    @property
    def metrics_dir(self) -> Path:
        (directory,) = self.metrics_parent.iterdir()  # the fresh one `crm serve` made
        return directory

    async def scrape(self) -> str:
        deadline = time.monotonic() + 10
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            while True:
                try:
                    response = await http.get("/metrics", headers={"Authorization": f"Bearer {self.token}"})
                    assert response.status_code == 200, response.text
                    return response.text
                except httpx.TransportError:  # a worker that is being killed
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)

    def per_worker(self, name: str, **labels: str) -> dict[int, float]:
        """A counter's value in each worker's own file (what the server adds up)."""
        counts = {}
        for file in self.metrics_dir.glob("counter_*.db"):
            alone = self.metrics_parent / f"one-{file.stem}"
            alone.mkdir(exist_ok=True)
            shutil.copy(file, alone / file.name)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=str(alone))
            counts[int(file.stem.partition("_")[2])] = value(generate_latest(registry).decode(), name, **labels)
            shutil.rmtree(alone)
        return counts


@contextmanager
def crm_serve(tmp_path: Path, database_url: str, settings: Settings) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / "serve.log"
    parent = tmp_path / "metrics"
    parent.mkdir()
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DATABASE_URL=database_url,
        JWT_SECRET=settings.jwt_secret or "",
        RATE_LIMIT_PER_MINUTE="0",
        REDIS_URL="",
        CRM_DATA_DIR=str(tmp_path / "data"),
        METRICS_TOKEN=token,
        DB_POOL_SIZE="3",
        PROMETHEUS_MULTIPROC_DIR=str(parent),
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CRM), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Served(process, f"http://127.0.0.1:{port}", log, parent, token)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=served.url, timeout=1) as http:
        while time.monotonic() < deadline:
            assert served.process.poll() is None, served.log.read_text()
            try:
                if (await http.get("/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"not ready:\n{served.log.read_text()}")


async def worker_pids(served: Served, expected: int = 2, without: int | None = None) -> set[int]:
    """The pids the scrape reports process figures for, once there are `expected` of them."""
    deadline = time.monotonic() + 40
    while True:
        text = await served.scrape()
        pids = {int(pid) for pid in label_values(text, "process_resident_memory_bytes", "pid")}
        if len(pids) == expected and without not in pids and value(text, "crm_worker_processes") == expected:
            return pids
        assert time.monotonic() < deadline, f"workers {pids}:\n{text}\n{served.log.read_text()}"
        await asyncio.sleep(0.2)


async def get_by_id(served: Served, path: str, headers: dict[str, str], n: int) -> None:
    # A new connection per request, so that both workers get some.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=served.url, timeout=10, limits=limits) as http:
        answers = await asyncio.gather(*(http.get(path, headers=headers) for _ in range(n)))
    assert {response.status_code for response in answers} == {200}


async def test_one_scrape_covers_every_worker_and_survives_a_restart(
    tmp_path: Path, database_url: str, settings: Settings, admin: dict[str, str]
) -> None:
    with crm_serve(tmp_path, database_url, settings) as served:
        await wait_ready(served)
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
            assert (await http.get("/metrics")).status_code == 401  # METRICS_TOKEN is set
            path = f"/api/customers/{(await create_customer(http, admin))['id']}"
        pids = await worker_pids(served)

        sent = 0
        while sent < 400:
            await get_by_id(served, path, admin, 20)
            sent += 20
            per_worker = served.per_worker(REQUESTS, **ROUTE)
            if len([n for n in per_worker.values() if n > 0]) == 2:
                break
        per_worker = served.per_worker(REQUESTS, **ROUTE)
        assert set(per_worker) == pids
        assert all(n > 0 for n in per_worker.values()), per_worker
        assert sum(per_worker.values()) == sent
        # Whichever worker answers, the scrape has them all.
        for _ in range(6):
            text = await served.scrape()
            assert value(text, REQUESTS, **ROUTE) == sent
            assert value(text, "crm_http_request_duration_seconds_count", method="GET", route=ROUTE["route"]) == sent
        cpu_before = value(text, "process_cpu_seconds_total")
        assert cpu_before > 0

        # A worker dies; the server starts another. Its counts stay; its live figures go.
        killed = min(pids)
        os.kill(killed, signal.SIGKILL)
        restarted = await worker_pids(served, without=killed)
        assert len(restarted & pids) == 1
        text = await served.scrape()
        assert value(text, REQUESTS, **ROUTE) == sent
        assert value(text, "process_cpu_seconds_total") >= cpu_before
        assert value(text, "crm_db_pool_max_connections", pool="read") == 2 * 3  # two live workers
        await get_by_id(served, path, admin, 20)
        text = await served.scrape()
        assert value(text, REQUESTS, **ROUTE) == sent + 20
        assert served.per_worker(REQUESTS, **ROUTE)[killed] == per_worker[killed]

    # Nothing of the run's metrics is left behind.
    assert list(served.metrics_parent.iterdir()) == []

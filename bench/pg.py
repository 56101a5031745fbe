"""Throwaway PostgreSQL databases, one per method and scale, on the local server."""

from __future__ import annotations

import contextlib
import os

import psycopg

from bench.config import PG_ADMIN_URL


def db_url(name: str, password: str | None = None) -> str:
    """URL of database ``name`` on the admin URL's server (a password for clients that insist on one)."""
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    if password and "@" in base and ":" not in base.split("//", 1)[1].split("@", 1)[0]:
        user, host = base.split("//", 1)[1].split("@", 1)
        base = (
            f"postgresql://{user}:{password}@{host}"  # trust auth ignores it; dlt refuses to connect without
        )
    return f"{base}/{name}"


def create_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return db_url(name)


def drop_database(name: str) -> None:
    if os.environ.get("JINBAO_BENCH_KEEP_DBS"):
        return
    with contextlib.suppress(psycopg.Error), psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_stale(prefix: str = "jbbench_") -> None:
    """Databases left by an interrupted earlier bench run."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        names = [
            r[0]
            for r in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
        ]
    for name in names:
        drop_database(name)


def query(url: str, sql: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as con:
        return con.execute(sql, params).fetchall()


def server_version() -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as con:
        return con.execute("SHOW server_version").fetchone()[0]

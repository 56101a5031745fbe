"""One way to name the provincial database: a URL (``duckdb:///path`` or ``postgresql://...``)."""

from __future__ import annotations

from pathlib import Path

from jinbao.errors import JinbaoError

DEFAULT_TARGET = "duckdb:///jinbao.duckdb"


def open_target(url: str):
    """Open the target named by ``url``; relative DuckDB paths are relative to the working directory."""
    from loaders import DuckDBTarget

    if url.startswith("duckdb:///"):
        path = url.removeprefix("duckdb:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return DuckDBTarget(path)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from loaders.postgres_target import PostgresTarget

        return PostgresTarget(url.replace("postgres://", "postgresql://", 1))
    import re

    shown = re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)  # never echo a password
    raise JinbaoError(f"unknown target URL {shown!r}; expected duckdb:///PATH or postgresql://...")

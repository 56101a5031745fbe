"""One way to name the provincial database: a URL (``duckdb:///path``; PostgreSQL comes with issue 5)."""

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
    if url.startswith(("postgresql://", "postgres://")):
        raise JinbaoError("PostgreSQL targets are not available yet; use duckdb:///PATH")
    raise JinbaoError(f"unknown target URL {url!r}; expected duckdb:///PATH")

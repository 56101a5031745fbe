"""Where a city's legacy database is: endpoint settings from the environment or an Airflow connection.

Secrets come only from there; an endpoint's repr never shows the password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from extractors.exceptions import EndpointNotConfigured


@dataclass(frozen=True)
class SourceEndpoint:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str | None = None
    tds_version: str | None = None  # overrides the spec's (Airflow connection extra ``tds_version``)
    client_charset: str | None = None  # Airflow connection extra ``charset``; default UTF-8

    def __repr__(self) -> str:  # dataclass repr=False on a field still leaks via asdict; keep it explicit
        return f"SourceEndpoint(host={self.host!r}, port={self.port}, user={self.user!r}, database={self.database!r})"

    __str__ = __repr__


def endpoint_from_env(env_prefix: str, database: str | None = None, environ=os.environ) -> SourceEndpoint:
    """Read ``<PREFIX>_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD`` (and optional ``_DATABASE``)."""
    missing = [k for k in ("HOST", "PORT", "USER", "PASSWORD") if f"{env_prefix}_{k}" not in environ]
    if missing:
        names = ", ".join(f"{env_prefix}_{k}" for k in missing)
        raise EndpointNotConfigured(f"set {names} to say where the city's legacy database is")
    port = environ[f"{env_prefix}_PORT"]
    if not port.strip().isdigit() or not 0 < int(port) < 65536:
        raise EndpointNotConfigured(f"{env_prefix}_PORT must be a TCP port number, not {port!r}")
    return SourceEndpoint(
        host=environ[f"{env_prefix}_HOST"],
        port=int(port),
        user=environ[f"{env_prefix}_USER"],
        password=environ[f"{env_prefix}_PASSWORD"],
        database=environ.get(f"{env_prefix}_DATABASE", database),
    )


def endpoint_from_airflow(conn_id: str, database: str | None = None) -> SourceEndpoint:
    """Resolve an Airflow connection; imported lazily so the CLI never needs Airflow."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson or {}
    return SourceEndpoint(
        host=conn.host or "127.0.0.1",
        port=int(conn.port or 1433),
        user=conn.login or "",
        password=conn.password or "",
        database=conn.schema or database,
        tds_version=extra.get("tds_version"),
        client_charset=extra.get("charset"),
    )

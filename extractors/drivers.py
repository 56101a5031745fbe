"""DB-API connections to legacy servers through FreeTDS, one function per driver.

pymssql bundles its own FreeTDS (1.5); pyodbc uses the system FreeTDS ODBC
driver (1.3). Both are asked for UTF-8 so FreeTDS converts from the server's
charset; the spec's actual charset is what the server's collation must decode as.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from extractors.configuration import SourceEndpoint
from extractors.exceptions import SourceUnavailable, driver_message
from jinbao.spec import SourceSpec


def connect(source: SourceSpec, endpoint: SourceEndpoint, *, login_timeout: int = 10) -> Any:
    database = endpoint.database or source.database
    tds_version = endpoint.tds_version or source.tds_version
    charset = endpoint.client_charset or "UTF-8"
    try:
        if source.driver == "pymssql":
            import pymssql

            extra = {}
            if tds_version == "5.0":
                # pymssql's API only names 7.x versions; Sybase TDS 5.0 is chosen through a freetds.conf entry.
                # Its default SET options are SQL Server's, which ASE refuses (pymssql issue #97).
                server, version = freetds_server_entry(endpoint.host, endpoint.port, "5.0"), None
                extra["conn_properties"] = ""
            else:
                server, version = endpoint.host, tds_version
            return pymssql.connect(
                server=server,
                port=str(endpoint.port),
                user=endpoint.user,
                password=endpoint.password,
                database=database,
                tds_version=version,
                charset=charset,
                login_timeout=login_timeout,
                autocommit=True,
                **extra,
            )
        import pyodbc

        conn = pyodbc.connect(
            odbc_connection_string(source, endpoint), autocommit=True, timeout=login_timeout
        )
        # FreeTDS ODBC keeps the server's text size (often 4,096 bytes): long text must arrive whole
        conn.execute("SET TEXTSIZE 2147483647")
        return conn
    except Exception as exc:  # driver errors carry no password; the endpoint repr never does
        raise SourceUnavailable(
            f"cannot connect to {endpoint} with {source.driver}: {driver_message(exc)}"
        ) from exc


_CONF_LOCK = threading.Lock()


def freetds_server_entry(host: str, port: int, tds_version: str) -> str:
    """A named server in jinbao's own freetds.conf (FREETDSCONF), for settings pymssql cannot pass.

    The file holds no credentials: only host, port and protocol version per entry.
    """
    name = f"jinbao_{host.replace('.', '_')}_{port}_{tds_version.replace('.', '')}"
    with _CONF_LOCK:
        path = Path(
            os.environ.get("JINBAO_FREETDS_CONF")
            or Path(tempfile.gettempdir()) / f"jinbao-freetds-{os.getuid()}.conf"
        )
        text = path.read_text() if path.exists() else "[global]\n\tclient charset = UTF-8\n"
        if f"[{name}]" not in text:
            text += f"\n[{name}]\n\thost = {host}\n\tport = {port}\n\ttds version = {tds_version}\n"
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
        os.environ["FREETDSCONF"] = str(path)
    return name


def odbc_connection_string(source: SourceSpec, endpoint: SourceEndpoint) -> str:
    """FreeTDS ODBC connection string (pyodbc and arrow-odbc); holds the password: never log it."""
    database = endpoint.database or source.database
    return (
        "DRIVER={FreeTDS};"
        f"SERVER={endpoint.host};PORT={endpoint.port};DATABASE={database};"
        f"TDS_Version={endpoint.tds_version or source.tds_version};"
        f"ClientCharset={endpoint.client_charset or 'UTF-8'};"
        f"UID={endpoint.user};PWD={{{endpoint.password}}}"
    )


def placeholder(source: SourceSpec) -> str:
    """The driver's parameter marker: pymssql formats client-side (%s), pyodbc sends RPC (?)."""
    return "%s" if source.driver == "pymssql" else "?"


def typed_placeholder(source: SourceSpec, sql_type: str) -> str:
    """arrow-odbc binds every parameter as text: the SQL casts it back to the column's type."""
    mark = placeholder(source)
    return f"CAST({mark} AS {sql_type})" if source.driver == "arrow_odbc" else mark


# Errors worth a retry: the connection went away, or the server chose us as a deadlock victim.
_RETRYABLE_MARKERS = (
    "1205",
    "deadlock",
    "08S01",
    "08001",
    "communication link",
    "connection",
    "dbprocess is dead",
    "server closed",
    "reset by peer",
    "broken pipe",
    "unexpected eof",
    "read from the server failed",
    "write to the server failed",
    "not connected",
)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, SourceUnavailable):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m.lower() in text for m in _RETRYABLE_MARKERS)

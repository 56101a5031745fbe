"""Extraction errors that say what to do."""

from jinbao.errors import JinbaoError


class ExtractError(JinbaoError):
    """Reading from a city's legacy database failed."""


class EndpointNotConfigured(ExtractError):
    """No host/port/credentials for a city: set the environment variables or the Airflow connection."""


class SourceUnavailable(ExtractError):
    """The legacy server could not be reached; retried like a dropped connection."""


def driver_message(exc: BaseException) -> str:
    """A driver error's text on one line, without its bytes repr (pymssql gives ``(20009, b'...')``)."""

    def text(arg) -> str:
        if isinstance(arg, bytes):
            return arg.decode(errors="replace")
        if isinstance(arg, tuple):  # pymssql: ((code, b"message"),)
            return " ".join(text(a) for a in arg)
        return str(arg)

    return " ".join(text(exc.args).split()) or type(exc).__name__

"""Extraction errors that say what to do."""

from jinbao.errors import JinbaoError


class ExtractError(JinbaoError):
    """Reading from a city's legacy database failed."""


class EndpointNotConfigured(ExtractError):
    """No host/port/credentials for a city: set the environment variables or the Airflow connection."""


class SourceUnavailable(ExtractError):
    """The legacy server could not be reached; retried like a dropped connection."""

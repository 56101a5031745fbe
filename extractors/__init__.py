"""Extract: a city spec and an entity spec in, a stream of exact Arrow record batches out."""

from extractors.configuration import SourceEndpoint, endpoint_from_airflow, endpoint_from_env
from extractors.exceptions import EndpointNotConfigured, ExtractError
from extractors.stream import extract_entity

__all__ = [
    "EndpointNotConfigured",
    "ExtractError",
    "SourceEndpoint",
    "endpoint_from_airflow",
    "endpoint_from_env",
    "extract_entity",
]

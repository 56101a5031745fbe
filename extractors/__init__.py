"""Extract: a city spec and an entity spec in, a stream of exact Arrow record batches out."""

from extractors.configuration import SourceEndpoint, endpoint_from_airflow, endpoint_from_env
from extractors.drift import Drift, SchemaDriftError, check_schema
from extractors.exceptions import EndpointNotConfigured, ExtractError
from extractors.parallel import extract_parallel
from extractors.stream import KeyRange, RateLimit, Since, extract_entity

__all__ = [
    "Drift",
    "SchemaDriftError",
    "check_schema",
    "EndpointNotConfigured",
    "ExtractError",
    "SourceEndpoint",
    "endpoint_from_airflow",
    "endpoint_from_env",
    "KeyRange",
    "RateLimit",
    "Since",
    "extract_entity",
    "extract_parallel",
]

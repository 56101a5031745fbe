"""Load: apply unified batches to the provincial database (schema ``province``)."""

from loaders.duckdb_target import DuckDBTarget
from loaders.exceptions import LoadError
from loaders.schema import ENTITY_TABLES, SCHEMA, metadata
from loaders.target import ApplyResult, ProvincialTarget

__all__ = [
    "ENTITY_TABLES",
    "SCHEMA",
    "ApplyResult",
    "DuckDBTarget",
    "LoadError",
    "ProvincialTarget",
    "metadata",
]

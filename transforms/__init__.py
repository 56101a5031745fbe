"""Transform: pure Arrow → Arrow normalization into the unified schema, plus quarantine rows.

No I/O here, so every rule tests without a database.
"""

from transforms.identity import normalize_id_numbers
from transforms.normalize import NormalizedBatch, money_columns, normalize_batch, unified_schema
from transforms.reasons import Reason

__all__ = [
    "NormalizedBatch",
    "Reason",
    "money_columns",
    "normalize_batch",
    "normalize_id_numbers",
    "unified_schema",
]

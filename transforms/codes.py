"""City code values to national codes, through the maps in the city spec."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def map_codes(values: pa.Array, mapping: dict[str, str]) -> tuple[pa.Array, pa.Array]:
    """Return (national codes, unmapped mask). NULL in stays NULL out and is not 'unmapped'."""
    keys = pa.array(list(mapping), pa.string())
    targets = pa.array(list(mapping.values()), pa.string())
    idx = pc.index_in(values, value_set=keys)
    mapped = pc.take(targets, idx)
    unmapped = pc.and_(pc.is_valid(values), pc.is_null(idx))
    return mapped, unmapped

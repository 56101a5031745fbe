"""Text clean-up shared by every entity: blank padding, full-width spaces, full-width digits."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# ASCII space, tab, and the ideographic (full-width) space U+3000 that legacy Chinese UIs insert.
BLANKS = " \t\u3000"
_FULLWIDTH = {chr(0xFF10 + i): str(i) for i in range(10)} | {"Ｘ": "X", "ｘ": "x"}


def trim(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Strip CHAR padding and full-width spaces at both ends; NULL stays NULL, '' stays ''."""
    return pc.utf8_trim(values, characters=BLANKS)


def halfwidth_digits(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Full-width digits (０-９) and Ｘ to their ASCII forms."""
    for wide, narrow in _FULLWIDTH.items():
        values = pc.replace_substring(values, wide, narrow)
    return values


def parse_yyyymmdd(values: pa.Array) -> pa.Array:
    """YYYYMMDD text → date32; anything that is not a real calendar date (19850231) → NULL.

    Arrow's strptime rolls 31 February over into March, so each parse is checked by
    formatting it back.
    """
    parsed = pc.strptime(values, format="%Y%m%d", unit="s", error_is_null=True)
    back = pc.strftime(parsed, format="%Y%m%d")
    real = pc.fill_null(pc.equal(back, values), False)
    return pc.cast(pc.if_else(real, parsed, pa.scalar(None, parsed.type)), pa.date32())

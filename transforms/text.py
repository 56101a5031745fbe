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

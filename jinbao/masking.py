"""Personal ID numbers never appear whole in logs or reports."""

from __future__ import annotations

import re

# 15- or 18-character ID-like runs (digits, optionally a final X), including full-width digits.
_ID_RUN = re.compile(r"(?<![0-9０-９])([0-9０-９]{6})([0-9０-９]{5,8})([0-9０-９]{3}[0-9０-９Xx]?)(?![0-9０-９])")


def mask_id_number(value: str | None) -> str | None:
    """Keep the division code and the last four characters: 230103********123X."""
    if value is None:
        return None
    v = value.strip()
    if len(v) <= 10:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_ids_in_text(text: str) -> str:
    """Mask every ID-like run inside free text (JSON of original values, messages)."""

    def repl(m: re.Match) -> str:
        whole = m.group(0)
        if len(whole) not in (15, 17, 18):
            return whole
        return mask_id_number(whole)

    return _ID_RUN.sub(repl, text)

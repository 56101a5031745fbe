"""Personal ID numbers never appear whole in logs or reports."""

from __future__ import annotations

import re

# 15- or 18-character ID-like runs (digits, optionally a final X), including full-width digits.
_ID_RUN = re.compile(
    r"(?<![0-9０-９])([0-9０-９]{6})([0-9０-９]{5,8})([0-9０-９]{3}[0-9０-９Xx]?)(?![0-9０-９])"
)


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


# Unified columns whose source values identify a person; reports show them redacted.
PERSONAL = {"id_number", "birth_date", "name", "phone", "address"}


def redact_value(unified: str, value):
    """A personal value as a report may show it: enough to find the row, not to know the person."""
    if value is None:
        return None
    text = str(value).strip()
    if unified == "id_number":
        return mask_id_number(text) if len(text) > 10 else "*" * len(text)
    if unified == "birth_date":
        return "****-**-**"
    if unified == "name":
        return text[:1] + "*" * max(len(text) - 1, 1)
    if unified == "phone":
        return text[:3] + "*" * max(len(text) - 5, 0) + text[-2:] if len(text) > 5 else "*" * len(text)
    if unified == "address":
        return text[:6] + "…"
    return value


def redact_original(original: str, personal_columns: set[str], columns_to_unified: dict[str, str]) -> str:
    """The JSON of a quarantined source row with every personal field redacted (by its unified meaning)."""
    import json

    try:
        row = json.loads(original)
    except (TypeError, ValueError):
        return mask_ids_in_text(str(original))
    out = {}
    for key, value in row.items():
        unified = columns_to_unified.get(key)
        out[key] = redact_value(unified, value) if key in personal_columns else value
    return mask_ids_in_text(json.dumps(out, ensure_ascii=False))

"""Charset repair: servers declared Latin-1 or cp850 that really hold GBK bytes.

FreeTDS converts from the *declared* server charset, so such text arrives as
mojibake (``ÕÅÈý``). For single-byte declared charsets that map all 256 bytes
(cp850, iso_1) the conversion is reversible: re-encode with the declared
charset to get the original bytes back, then decode with the actual one.
Bytes the actual charset cannot decode are never replaced by ``?``: the value
becomes NULL and the row carries the original bytes in hex for quarantine.
"""

from __future__ import annotations

from extractors.exceptions import ExtractError

#: column added to a batch whose rows held bytes the actual charset cannot decode ("column=hex; ...")
UNDECODABLE_COLUMN = "__undecodable__"

# Sybase / iconv charset names → Python codecs.
PYTHON_CODECS = {
    "iso_1": "latin-1", "iso-8859-1": "latin-1", "iso88591": "latin-1", "latin1": "latin-1", "latin-1": "latin-1",
    "cp850": "cp850", "cp437": "cp437", "cp1252": "cp1252",
    "cp936": "gbk", "gbk": "gbk", "eucgb": "gb2312", "gb2312": "gb2312", "gb18030": "gb18030",
    "utf8": "utf-8", "utf-8": "utf-8",
}
# Charsets FreeTDS itself decodes as GB18030 (a superset): no repair is needed between them.
_CHINESE = {"gbk", "gb18030"}
# Declared charsets whose byte ↔ character mapping is total, so re-encoding recovers the bytes exactly.
_REVERSIBLE = {"latin-1", "cp850", "cp437"}


def python_codec(name: str) -> str:
    try:
        return PYTHON_CODECS[name.strip().lower()]
    except KeyError:
        raise ExtractError(f"unknown charset {name!r}; known: {', '.join(sorted(PYTHON_CODECS))}") from None


def needs_repair(declared: str, actual: str) -> bool:
    d, a = python_codec(declared), python_codec(actual)
    if d == a or (d in _CHINESE and a in _CHINESE):
        return False
    if d not in _REVERSIBLE:
        raise ExtractError(
            f"text declared {declared} but stored as {actual} cannot be repaired after FreeTDS converts it; "
            "declare the server charset as the actual one in the connection (client charset) instead"
        )
    return True


def repair_values(values: list, declared: str, actual: str) -> tuple[list, list]:
    """Return (repaired strings, hex of undecodable originals or None) for one column."""
    d, a = python_codec(declared), python_codec(actual)
    out, bad = [], []
    for v in values:
        if v is None:
            out.append(None)
            bad.append(None)
            continue
        raw = v.encode(d)
        try:
            out.append(raw.decode(a))
            bad.append(None)
        except UnicodeDecodeError:
            out.append(None)
            bad.append(raw.hex())
    return out, bad

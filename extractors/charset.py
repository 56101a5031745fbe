"""Charset repair: servers whose declared charset is not the charset of the bytes they hold.

FreeTDS converts from the *declared* server charset, so GBK bytes in a Latin-1 or cp850
server arrive as mojibake (``ÕÅÈý``). For single-byte declared charsets that map all 256
bytes (cp850, iso_1) the conversion is reversible: re-encode with the declared charset to
get the original bytes back, then decode with the actual one.

Against Sybase ASE, a multi-byte declared charset is converted by the system iconv, which
is lossy for what real servers hold: glibc's CP936 (GBK) has no mapping for GBK's
user-defined areas (AAA1-AFFE, F8A1-FEFE, A140-A7A0, where cities registered rare name
characters; GB18030 maps them to U+E000-U+E765) nor for GB18030's four-byte sequences.
FreeTDS then writes ``?`` for the first byte and reads the rest out of step (张\ue01a三
arrives as ``张?蝗?``), silently. Such text is fetched as bytes instead
(``CONVERT(VARBINARY(n), column)``, see ``fetch_as_bytes``) and decoded here with the
actual charset. (SQL Server is not affected: FreeTDS reads the Chinese_PRC collations as
GB18030.)

Bytes the actual charset cannot decode are never replaced by ``?``: the value becomes
NULL and the row carries the original bytes in hex for quarantine.
"""

from __future__ import annotations

from extractors.exceptions import ExtractError

#: column added to a batch whose rows held bytes the actual charset cannot decode ("column=hex; ...")
UNDECODABLE_COLUMN = "__undecodable__"

# Sybase / iconv charset names → Python codecs.
PYTHON_CODECS = {
    "iso_1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso88591": "latin-1",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "cp850": "cp850",
    "cp437": "cp437",
    "cp1252": "cp1252",
    "cp936": "gbk",
    "gbk": "gbk",
    "eucgb": "gb2312",
    "gb2312": "gb2312",
    "gb18030": "gb18030",
    "utf8": "utf-8",
    "utf-8": "utf-8",
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


def fetch_as_bytes(dialect: str, declared: str) -> bool:
    """Whether text must travel as bytes (CONVERT to VARBINARY) and be decoded by jinbao.

    True for every ASE source whose declared charset is not a single-byte one that FreeTDS
    converts reversibly: FreeTDS's conversion from cp936, eucgb or utf8 writes ``?`` for bytes
    it cannot map (the GBK user-defined area, four-byte GB18030, invalid sequences), and
    FreeTDS does not know ASE's name gb18030 at all, so only the bytes are trustworthy. Decoded
    with the spec's actual charset, a value either round-trips or quarantines with its hex.
    """
    return dialect == "sybase" and python_codec(declared) not in _REVERSIBLE


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


def decode_values(values: list, actual: str) -> tuple[list, list]:
    """Return (strings, hex of undecodable originals or None) for one column fetched as bytes."""
    codec = python_codec(actual)
    out, bad = [], []
    for raw in values:
        if raw is None:
            out.append(None)
            bad.append(None)
            continue
        raw = bytes(raw)
        try:
            out.append(raw.decode(codec))
            bad.append(None)
        except UnicodeDecodeError:
            out.append(None)
            bad.append(raw.hex())
    return out, bad

"""Guess the charset a legacy table's text is really stored in, from a sample.

Text arrives decoded with the server's *declared* charset; re-encoding it with
that charset gives back the stored bytes (exactly, for single-byte declared
charsets), which are then tried against each candidate. Chinese text stored as
GBK in a Latin-1 or cp850 server decodes as GB18030 into ideographs, while the
declared reading shows Latin-1 mojibake (ÕÅÈý).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from extractors.charset import python_codec

CANDIDATES = ("gb18030", "gbk", "gb2312", "utf-8", "big5", "latin-1", "cp850")


@dataclass(frozen=True)
class EncodingScore:
    charset: str
    decodable: float  # share of non-ASCII values that decode without error
    ideographs: float  # share of decoded non-ASCII characters that are CJK ideographs
    mojibake: float  # share that are Latin-1 supplement letters and symbols (Õ Å È ý ...)
    samples: tuple[str, ...]

    @property
    def score(self) -> float:
        return self.decodable * (self.ideographs - self.mojibake)


def _is_ideograph(ch: str) -> bool:
    return "CJK" in unicodedata.name(ch, "") or "\ue000" <= ch <= "\uf8ff"


def score_values(values: list[str], declared: str) -> list[EncodingScore]:
    """Score every candidate charset on the sampled (declared-decoded) text values, best first."""
    codec = python_codec(declared)
    raws = []
    for v in values:
        if v is None or v.isascii():
            continue
        try:
            raws.append(v.encode(codec))
        except UnicodeEncodeError:
            continue
    out = []
    for cand in CANDIDATES:
        ok, texts = 0, []
        for raw in raws:
            try:
                texts.append(raw.decode(cand))
                ok += 1
            except UnicodeDecodeError:
                pass
        chars = [c for t in texts for c in t if not c.isascii()]
        ideo = sum(_is_ideograph(c) for c in chars) / len(chars) if chars else 0.0
        moji = sum("\u00a0" <= c <= "\u00ff" for c in chars) / len(chars) if chars else 0.0
        out.append(EncodingScore(cand, ok / len(raws) if raws else 0.0, ideo, moji, tuple(texts[:3])))
    return sorted(out, key=lambda s: s.score, reverse=True)

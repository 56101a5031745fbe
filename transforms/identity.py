"""Citizen ID numbers (GB 11643-1999): clean-up, 15-to-18 upgrade, check digit, cross-checks.

Everything is vectorised with pyarrow compute: 17 digit columns times their
weights, summed, modulo 11, looked up in "10X98765432".
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from transforms.reasons import Reason
from transforms.text import halfwidth_digits, parse_yyyymmdd, trim

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = pa.array(list("10X98765432"))


@dataclass(frozen=True)
class IdCheck:
    """Per-row result: the 18-digit number (NULL if unusable) and the first failing reason."""

    id_number: pa.Array
    reason: pa.Array  # string, NULL where the number is fine


def check_character(body17: pa.Array) -> pa.Array:
    """Check character for 17-digit bodies (all rows must be 17 ASCII digits or NULL)."""
    total = None
    for i, w in enumerate(WEIGHTS):
        digit = pc.cast(pc.utf8_slice_codeunits(body17, i, i + 1), pa.int32())
        term = pc.multiply(digit, w)
        total = term if total is None else pc.add(total, term)
    remainder = pc.subtract(total, pc.multiply(pc.divide(total, 11), 11))  # integer division
    return pc.take(CHECK_CHARS, remainder)


def normalize_id_numbers(raw: pa.Array, birth_date: pa.Array, sex: pa.Array) -> IdCheck:
    """Normalize IDs and cross-check them with the recorded birth date (date32) and sex code ('1'/'2'/'9')."""
    raw = pa.array(raw) if not isinstance(raw, pa.Array) else raw
    cleaned = pc.utf8_upper(halfwidth_digits(trim(raw)))
    is18 = pc.match_substring_regex(cleaned, r"^\d{17}[\dX]$")
    is15 = pc.match_substring_regex(cleaned, r"^\d{15}$")
    well_formed = pc.fill_null(pc.or_(is18, is15), False)

    # 15-digit form: the century comes from the recorded birth date when there is one.
    year = pc.year(birth_date)
    century = pc.cast(pc.fill_null(pc.divide(year, 100), 19), pa.string())
    body15 = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(cleaned, 0, 6), century, pc.utf8_slice_codeunits(cleaned, 6, 15), ""
    )
    body17 = pc.if_else(pc.fill_null(is18, False), pc.utf8_slice_codeunits(cleaned, 0, 17), body15)
    body17 = pc.if_else(well_formed, body17, pa.scalar(None, pa.string()))
    check = check_character(body17)
    id18 = pc.binary_join_element_wise(body17, check, "")

    given = pc.utf8_slice_codeunits(cleaned, 17, 18)
    bad_check = pc.and_(pc.fill_null(is18, False), pc.not_equal(given, check))

    id_birth = parse_yyyymmdd(pc.utf8_slice_codeunits(body17, 6, 14))
    bad_date_in_id = pc.and_(well_formed, pc.is_null(id_birth))
    birth_mismatch = pc.fill_null(pc.not_equal(id_birth, pc.cast(birth_date, pa.date32())), False)

    seq_digit = pc.cast(pc.utf8_slice_codeunits(body17, 16, 17), pa.int32())
    id_sex = pc.if_else(pc.equal(pc.bit_wise_and(seq_digit, 1), 1), "1", "2")
    sex_known = pc.is_in(sex, pa.array(["1", "2"]))
    sex_mismatch = pc.fill_null(pc.and_(sex_known, pc.not_equal(id_sex, sex)), False)

    reason = first_reason(
        [
            (pc.or_(pc.invert(well_formed), pc.fill_null(bad_date_in_id, False)), Reason.ID_MALFORMED),
            (pc.fill_null(bad_check, False), Reason.ID_CHECK_DIGIT),
            (birth_mismatch, Reason.ID_BIRTH_DATE_MISMATCH),
            (sex_mismatch, Reason.ID_SEX_MISMATCH),
        ],
        len(raw),
    )
    id18 = pc.if_else(pc.is_null(reason), id18, pa.scalar(None, pa.string()))
    return IdCheck(id_number=id18, reason=reason)


def first_reason(checks: list[tuple[pa.Array, str]], length: int) -> pa.Array:
    """The first reason whose mask is true, per row; NULL where none is. Order is precedence."""
    out = pa.nulls(length, pa.string())
    for mask, code in reversed(checks):
        out = pc.if_else(mask, pa.scalar(str(code)), out)
    return out

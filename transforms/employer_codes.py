"""Employer codes: organization codes (GB 11714), unified social credit codes (GB 32100) and the provincial id.

Vectorised with pyarrow compute, like the ID-number checks: each character's value is looked up in
its alphabet, multiplied by its weight and summed. python-stdnum (``stdnum.cn.uscc``) validates one
value at a time; the generator and the tests use it as the independent reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from transforms.identity import first_reason
from transforms.reasons import Reason
from transforms.text import trim

ORG_ALPHABET = pa.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_CHECK = pa.array(list("0123456789X0"))  # index 11 - S mod 11: 10 is X, 11 is 0
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V
USCC_ALPHABET = pa.array(list(USCC_CHARS))
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_U = f"[{USCC_CHARS}]"
ORG_PATTERN = r"^[0-9A-Z]{8}[0-9X]$"
USCC_PATTERN = rf"^{_U}{{2}}\d{{6}}{_U}{{10}}$"


@dataclass(frozen=True)
class EmployerCodes:
    """Per row: the codes in their standard form (NULL where absent), the provincial id, and a reason."""

    org_code: pa.Array  # XXXXXXXX-X
    uscc: pa.Array  # 18 characters
    employer_id: pa.Array
    reason: pa.Array  # EMPLOYER_CODE_INVALID or NULL


def _clean(values: pa.Array) -> pa.Array:
    """Upper case without blanks or hyphens; an empty value is NULL (Sybase keeps '' as one space)."""
    out = pc.utf8_upper(trim(pc.cast(values, pa.string())))
    out = pc.replace_substring_regex(out, "[\\s\\-\u3000]", "")
    return pc.if_else(pc.equal(pc.utf8_length(out), 0), pa.scalar(None, pa.string()), out)


def _weighted_sum(values: pa.Array, alphabet: pa.Array, weights: tuple[int, ...], start: int = 0) -> pa.Array:
    total = None
    for i, w in enumerate(weights):
        digit = pc.index_in(pc.utf8_slice_codeunits(values, start + i, start + i + 1), value_set=alphabet)
        term = pc.multiply(pc.cast(digit, pa.int64()), w)
        total = term if total is None else pc.add(total, term)
    return total


def _mod(values: pa.Array, n: int) -> pa.Array:
    return pc.subtract(values, pc.multiply(pc.divide(values, n), n))  # integer division


def org_check_character(body: pa.Array, start: int = 0) -> pa.Array:
    """GB 11714 check character of the 8-character bodies at ``start`` (rows must be well formed or NULL)."""
    return pc.take(
        ORG_CHECK, pc.subtract(11, _mod(_weighted_sum(body, ORG_ALPHABET, ORG_WEIGHTS, start), 11))
    )


def uscc_check_character(body: pa.Array) -> pa.Array:
    """GB 32100 check character of 17-character bodies (rows must be well formed or NULL)."""
    return pc.take(
        USCC_ALPHABET, _mod(pc.subtract(31, _mod(_weighted_sum(body, USCC_ALPHABET, USCC_WEIGHTS), 31)), 31)
    )


def _formatted_org(code9: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(code9, 0, 8), pc.utf8_slice_codeunits(code9, 8, 9), "-"
    )


def normalize_employer_codes(
    org_code: pa.Array, uscc: pa.Array | None, city: str, employer_no: pa.Array
) -> EmployerCodes:
    """Check both codes and derive the provincial employer id.

    The id is the organization code (XXXXXXXX-X) a valid USCC embeds, else the valid organization code,
    else ``CITY:EMPLOYER_NO``. A code present but malformed or with a wrong check character, or a USCC
    whose embedded organization code differs from the organization code beside it, holds the row back:
    an employer is never merged on a doubtful code.
    """
    n = len(employer_no)
    org = _clean(org_code)
    usc = _clean(uscc) if uscc is not None else pa.nulls(n, pa.string())

    org_formed = pc.fill_null(pc.match_substring_regex(org, ORG_PATTERN), False)
    org_ok = pc.and_(
        org_formed,
        pc.fill_null(
            pc.equal(
                pc.utf8_slice_codeunits(org, 8, 9),
                org_check_character(pc.if_else(org_formed, org, pa.scalar(None, pa.string()))),
            ),
            False,
        ),
    )
    org_bad = pc.and_(pc.is_valid(org), pc.invert(org_ok))

    usc_formed = pc.fill_null(pc.match_substring_regex(usc, USCC_PATTERN), False)
    formed = pc.if_else(usc_formed, usc, pa.scalar(None, pa.string()))
    embedded = pc.utf8_slice_codeunits(formed, 8, 17)
    usc_ok = pc.and_(
        pc.fill_null(
            pc.equal(
                pc.utf8_slice_codeunits(formed, 17, 18),
                uscc_check_character(pc.utf8_slice_codeunits(formed, 0, 17)),
            ),
            False,
        ),
        pc.fill_null(
            pc.and_(
                pc.match_substring_regex(embedded, ORG_PATTERN),
                pc.equal(pc.utf8_slice_codeunits(embedded, 8, 9), org_check_character(formed, 8)),
            ),
            False,
        ),
    )
    usc_bad = pc.and_(pc.is_valid(usc), pc.invert(usc_ok))
    mismatch = pc.fill_null(pc.and_(pc.and_(usc_ok, org_ok), pc.not_equal(embedded, org)), False)

    reason = first_reason(
        [
            (org_bad, Reason.EMPLOYER_CODE_INVALID),
            (usc_bad, Reason.EMPLOYER_CODE_INVALID),
            (mismatch, Reason.EMPLOYER_CODE_INVALID),
        ],
        n,
    )
    local = pc.binary_join_element_wise(pa.array([city] * n, pa.string()), employer_no, ":")
    employer_id = pc.coalesce(
        pc.if_else(usc_ok, _formatted_org(embedded), pa.scalar(None, pa.string())),
        pc.if_else(org_ok, _formatted_org(org), pa.scalar(None, pa.string())),
        local,
    )
    return EmployerCodes(
        org_code=pc.if_else(org_ok, _formatted_org(org), pa.scalar(None, pa.string())),
        uscc=pc.if_else(usc_ok, usc, pa.scalar(None, pa.string())),
        employer_id=employer_id,
        reason=reason,
    )

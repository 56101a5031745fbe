"""Quarantine reason codes: the closed list of reasons a source row can be held back."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    ID_MALFORMED = "ID_MALFORMED"  # not 15 or 18 characters of digits (+X) after clean-up
    ID_CHECK_DIGIT = "ID_CHECK_DIGIT"  # 18-digit ID whose check character is wrong
    ID_BIRTH_DATE_MISMATCH = "ID_BIRTH_DATE_MISMATCH"  # birth date in the ID differs from AAC006
    ID_SEX_MISMATCH = "ID_SEX_MISMATCH"  # sequence parity in the ID differs from AAC004
    NAME_MISSING = "NAME_MISSING"  # empty after trimming
    UNMAPPED_CODE = "UNMAPPED_CODE"  # a code value the city spec does not map
    PERSON_NOT_LOADED = "PERSON_NOT_LOADED"  # child row whose person is unknown or quarantined
    EMPLOYER_CODE_INVALID = (
        "EMPLOYER_CODE_INVALID"  # organization code or USCC malformed, wrong check, or disagreeing
    )
    EMPLOYER_UNKNOWN = "EMPLOYER_UNKNOWN"  # child row naming an employer the source does not have
    AMOUNT_INVALID = "AMOUNT_INVALID"  # money that is NULL, negative where not allowed, or finer than a cent
    DATE_INVALID = "DATE_INVALID"  # a required date missing or impossible
    VALUE_MISSING = "VALUE_MISSING"  # a required value (period, insurance type, ...) is NULL
    DUPLICATE_SOURCE_KEY = "DUPLICATE_SOURCE_KEY"  # the same source key twice in one extract
    UNDECODABLE_TEXT = "UNDECODABLE_TEXT"  # bytes not valid in the city's actual charset
    EXPECTATION_FAILED = "EXPECTATION_FAILED"  # a Great Expectations check failed on a transformed row

"""Unified rows built by hand for unit tests of the stages that take them (checks, loaders)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal


def contribution_row(
    source_key,
    *,
    city: str = "harbin",
    id_number: str | None = "11010519491231002X",
    base: str | None = "5000.00",
    insurance: str = "110",
    period: int = 202401,
) -> dict:
    """One unified contribution: 800.00 from the employer, 400.00 from the person, all of it received."""
    return {
        "source_city": city,
        "source_key": str(source_key),
        "id_number": id_number,
        "employer_no": "E1",
        "insurance_type": insurance,
        "fee_period": period,
        "accounting_period": period,
        "payment_type": "1",
        "contribution_base": None if base is None else Decimal(base),
        "employer_due": Decimal("800.00"),
        "employer_to_account": Decimal("0.00"),
        "individual_due": Decimal("400.00"),
        "individual_to_account": Decimal("400.00"),
        "received_flag": "1",
        "received_date": dt.date(2024, 2, 1),
    }

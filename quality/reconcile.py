"""Reconciliation: every extracted row is loaded, merged or quarantined; money adds up to the cent."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc


def money_total(table: pa.Table | pa.RecordBatch, columns: list[str]) -> Decimal:
    """Exact sum of the given decimal columns (Arrow decimal sums, converted once to Decimal)."""
    total = Decimal(0)
    for c in columns:
        s = pc.sum(table.column(c)).as_py()
        if s is not None:
            total += Decimal(s)
    cents = total.quantize(Decimal("0.01"))
    return cents if cents == total else total  # show yuan.fen when that is exact


@dataclass
class EntityReconciliation:
    """Running totals for one entity of one city run."""

    entity: str
    extracted_rows: int = 0
    loaded_rows: int = 0
    quarantined_rows: int = 0
    merged_rows: int = 0
    extracted_money: Decimal = Decimal(0)
    loaded_money: Decimal = Decimal(0)
    quarantined_money: Decimal = Decimal(0)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    target_rows: int | None = None  # rows the target holds for this city after the run
    target_money: Decimal | None = None
    target_quarantined: int | None = None

    @property
    def rows_reconciled(self) -> bool:
        return self.extracted_rows == self.loaded_rows + self.quarantined_rows + self.merged_rows

    @property
    def money_reconciled(self) -> bool:
        return self.extracted_money == self.loaded_money + self.quarantined_money

    @property
    def target_reconciled(self) -> bool:
        """The database holds what this run says it loaded (a full extract of the city)."""
        if self.target_rows is None:
            return True
        return (
            self.target_rows == self.loaded_rows
            and self.target_money == self.loaded_money
            and self.target_quarantined == self.quarantined_rows
        )

    @property
    def reconciled(self) -> bool:
        return self.rows_reconciled and self.money_reconciled and self.target_reconciled

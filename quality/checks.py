"""Run an entity's expectation suite on every transformed batch and say which rows failed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import pyarrow as pa

logging.getLogger("great_expectations").setLevel(logging.ERROR)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class CheckResult:
    """Failed row positions with the expectations each row failed, plus batch-level failures."""

    failed_rows: dict[int, list[str]] = field(default_factory=dict)
    batch_failures: list[str] = field(default_factory=list)  # expectations that failed without row indices
    evaluated: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed_rows and not self.batch_failures


class BatchChecker:
    """One ephemeral GX context reused for all batches of a run (context setup is the slow part)."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        from quality.expectations import suite_for

        self._ctx = gx.get_context(mode="ephemeral")
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        self._ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self._ctx.data_sources.add_pandas("jinbao_batches")
        self._defs = {}
        self._suites = {}
        self._suite_for = suite_for

    def _definition(self, entity: str):
        if entity not in self._defs:
            asset = self._source.add_dataframe_asset(entity)
            self._defs[entity] = asset.add_batch_definition_whole_dataframe(f"{entity}_batch")
            self._suites[entity] = self._ctx.suites.add(self._suite_for(entity))
        return self._defs[entity], self._suites[entity]

    def check(self, entity: str, rows: pa.Table) -> CheckResult:
        if rows.num_rows == 0:
            return CheckResult()
        definition, suite = self._definition(entity)
        df = rows.to_pandas()
        batch = definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        failed: dict[int, list[str]] = {}
        batch_failures: list[str] = []
        for r in result.results:
            if r.success:
                continue
            cfg = r.expectation_config
            label = f"{cfg.type}({cfg.kwargs.get('column', '')})"
            idx = (r.result or {}).get("unexpected_index_list")
            if idx:
                for i in idx:
                    failed.setdefault(int(i), []).append(label)
            else:
                batch_failures.append(label)
        return CheckResult(failed_rows=failed, batch_failures=batch_failures, evaluated=len(result.results))

"""Quality: check every batch (Great Expectations), reconcile every run, render the reports."""

from quality.checks import BackgroundChecker, BatchChecker, CheckResult, PageChecker
from quality.reconcile import EntityReconciliation, money_total

__all__ = [
    "BackgroundChecker",
    "BatchChecker",
    "CheckResult",
    "PageChecker",
    "EntityReconciliation",
    "money_total",
]

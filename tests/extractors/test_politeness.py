import pytest

from extractors.drivers import is_retryable
from extractors.stream import RateLimit


def test_rate_limit_sleeps_until_the_city_budget_allows_more(monkeypatch):
    clock = {"t": 100.0}
    slept = []
    monkeypatch.setattr("extractors.stream.time.monotonic", lambda: clock["t"])
    monkeypatch.setattr("extractors.stream.time.sleep", lambda s: slept.append(round(s, 6)))
    limit = RateLimit(1000)
    limit.take(500)  # 0.5 s of budget used at t=0
    clock["t"] += 0.2
    limit.take(500)  # 1.0 s of budget used after 0.2 s
    assert slept == [0.5, 0.8]


def test_no_cap_never_sleeps(monkeypatch):
    monkeypatch.setattr("extractors.stream.time.sleep", lambda s: pytest.fail("slept"))
    RateLimit(None).take(10**9)


@pytest.mark.parametrize(
    ("message", "retry"),
    [
        ("(1205, b'Transaction (Process ID 52) was deadlocked on lock resources')", True),
        ("('08S01', '[08S01] [FreeTDS][SQL Server]Communication link failure')", True),
        ("DB-Lib error message 20047: DBPROCESS is dead or not enabled", True),
        ("(208, b\"Invalid object name 'dbo.ac99'.\")", False),
        ("(102, b\"Incorrect syntax near 'FORM'.\")", False),
    ],
)
def test_only_connection_losses_and_deadlocks_are_retried(message, retry):
    assert is_retryable(Exception(message)) is retry

"""Errors of the quality stage."""


class QualityError(Exception):
    """Base of the quality stage's errors."""


class UnsupportedExpectation(QualityError):
    """A suite holds an expectation the vectorized evaluation cannot judge row by row."""

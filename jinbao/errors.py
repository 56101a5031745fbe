"""Errors that say what to do next."""


class JinbaoError(Exception):
    """Base for every error jinbao raises on purpose."""


class SpecError(JinbaoError):
    """A city spec is missing or invalid; the message names file, field and value."""

"""Load errors that say what to do."""

from jinbao.errors import JinbaoError


class LoadError(JinbaoError):
    """Writing to the provincial database failed; the page's transaction was rolled back."""

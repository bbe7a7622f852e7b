"""The one exception type whose message is meant for the user.

Anything raised as :class:`CodeLampError` is shown as it is, without a traceback, by both
the CLI and the GUI. Its message says what happened and what to do next.
"""


class CodeLampError(Exception):
    """A problem the user can understand and act on."""


class ModelError(CodeLampError):
    """A model file that cannot be used (missing, damaged, wrong kind, does not fit)."""


class UsageError(CodeLampError):
    """Bad input from the user (a query, filter or option that cannot work). The CLI exits
    with 2 for it, as for a bad flag, so scripts can tell a typo from a failed search."""

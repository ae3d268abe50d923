"""User-facing errors: one line that says what is wrong and what is valid.

Both command lines catch :class:`FiltvizError` and print its message alone (exit status 2),
so every check that guards user input raises it instead of letting a traceback through.
It subclasses ``ValueError`` so library callers can catch the usual exception type.
"""


class FiltvizError(ValueError):
    """Bad user input (unknown layer, filter out of range, unreadable image, ...)."""


class WeightsError(FiltvizError):
    """A weights file or source that is missing, corrupt, or not the expected network."""

"""User-facing errors: one line that says what is wrong and what is valid.

Two kinds, because a command line must tell them apart (exit status 2 vs 1):

* :class:`FiltvizError` (a ``ValueError``): the input is wrong — an unknown layer, a filter out of
  range, a weights file that does not fit the model. The user fixes the command. Exit status 2.
* :class:`FiltvizRuntimeError` (a ``RuntimeError``): the input is fine but something failed while
  running — weights not found or a download failed, a device error. Exit status 1.
"""


class FiltvizError(ValueError):
    """Bad user input (unknown layer, filter out of range, unreadable image, ...)."""


class WeightsError(FiltvizError):
    """A weights file or source that is corrupt, or not the expected network."""


class FiltvizRuntimeError(RuntimeError):
    """A failure while running with valid input (weights unavailable, download failed, device error)."""


class WeightsUnavailable(WeightsError, FiltvizRuntimeError):
    """Weights that cannot be found or fetched here (a missing file, no network, no cache).

    Both a :class:`WeightsError` (code that catches weights problems catches it) and a
    :class:`FiltvizRuntimeError` (the command lines exit with status 1: the input was fine).
    """

"""The library's input errors (no imports: the command line loads this module at startup).

A bad argument raises an :class:`InputError` (a ``ValueError``) or an
:class:`InputTypeError` (a ``TypeError`` and an :class:`InputError`) whose
message names the argument, the value it got and what is allowed.  The command
line reports an :class:`InputError` as bad input (one line, exit code 2) and any
other exception as a bug (exit code 1).  :mod:`attnscale._validate` re-exports both.
"""

__all__ = ["InputError", "InputTypeError"]


class InputError(ValueError):
    """A bad argument: the message names it, the value it got and what is allowed.

    A ``ValueError``, so ``except ValueError`` keeps catching it.

    Examples
    --------
    >>> from attnscale._validate import check_positive
    >>> try:
    ...     check_positive(-1.0, "beta")
    ... except ValueError as exc:
    ...     print(type(exc).__name__, exc)
    InputError beta: got -1.0; expected a finite number > 0
    """


class InputTypeError(InputError, TypeError):
    """A bad argument of the wrong type (both an :class:`InputError` and a ``TypeError``)."""

"""Command line: ``attnscale critical | simulate | exponent | heat | estimate | schedules | probe | report``.

Every command prints a human table by default and one JSON object with ``--json``.
Bad input (an :class:`attnscale._errors.InputError`, or a usage error of the click that
typer runs on) becomes one line on stderr and exit code 2; any other exception is a bug:
one line naming its type and message, exit code 1, and the traceback only with
``ATTNSCALE_DEBUG=1`` (DESIGN.md, "Command line").

The package: :mod:`.commands` (the commands), :mod:`.parsing` (the only place that reads
text: counts such as ``1e6``, law and rule specs, arrays), :mod:`.payloads` (the JSON
objects).  Only typer is imported at startup; the library loads inside each command.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from .._errors import InputError
from . import commands

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Long-context scaling theory of softmax attention, computable and checkable.",
)
for _command in commands.COMMANDS:
    app.command()(_command)


def _click_exception_type() -> type[Any]:
    """``ClickException`` of the click that typer runs on, found through typer's public API.

    typer >= 0.26 vendors click (``typer._click``, private), older typer uses the click
    package; in both, the public ``typer.BadParameter`` is a click usage error, and so a
    ``ClickException`` (the base of every usage error, ``NoArgsIsHelpError`` included).
    """
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return typer.BadParameter  # pragma: no cover  (no ClickException above BadParameter)


def main() -> None:
    """Entry point: bad input becomes one line on stderr and exit code 2, a bug one line and exit code 1."""
    try:
        app(standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Abort:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _click_exception_type() as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``attnscale``: the help, exit 2
            exc.show()
            sys.exit(2)
        typer.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except Exception as exc:  # anything else is a bug
        _internal_error(exc)


def _internal_error(exc: BaseException) -> None:
    """Report an exception that is not about the input: a bug (exit 1; traceback with ATTNSCALE_DEBUG=1)."""
    if os.environ.get("ATTNSCALE_DEBUG", "") not in ("", "0"):
        import traceback

        traceback.print_exception(exc)
    message = " ".join(str(exc).split())
    typer.echo(
        f"internal error (a bug in attnscale, please report it): {type(exc).__name__}: {message} "
        "(set ATTNSCALE_DEBUG=1 for the traceback)",
        err=True,
    )
    sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()

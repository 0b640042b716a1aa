"""Errors a user can cause: the CLI prints them as one line, without a traceback."""
import difflib


class HarnessError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""

    exit_code = 2


def closest(name, choices):
    """The closest of ``choices`` to ``name``, or None when nothing is close."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def unknown(kind, name, choices, hint):
    """A HarnessError for an unknown ``kind`` called ``name``, suggesting the closest choice."""
    guess = closest(name, choices)
    suggestion = f"; did you mean '{guess}'?" if guess else ""
    return HarnessError(f"unknown {kind} '{name}'{suggestion} {hint}")


def one_line(exc: BaseException) -> str:
    """``Type: message``, first line only: how a plugin's or a model's failure is reported."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]

"""The one exception type that reaches the user as a single line."""

from __future__ import annotations


class OnewordError(Exception):
    """A problem with the user's input or files, shown as one line without a traceback.

    Raise it with every problem found, joined: the message names the file or option and what is wrong.
    """


def gather(problems: list[str]) -> None:
    """Raise one OnewordError listing every problem, or return when there are none."""
    if problems:
        raise OnewordError("; ".join(problems))


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    lines = str(error).splitlines()
    return lines[0] if lines and lines[0].strip() else type(error).__name__

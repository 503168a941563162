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

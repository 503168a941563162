"""A1111's prompt attention syntax: `(word)`, `[word]`, `(word:1.3)`, escapes and `BREAK`."""

from __future__ import annotations

import re

BREAK = ("BREAK", -1.0)
"""The entry `parse_prompt_attention` yields where the prompt says `BREAK`: the next text starts a new chunk."""

ROUND = 1.1
"""What `(word)` multiplies the weight by."""
SQUARE = 1 / 1.1
"""What `[word]` multiplies the weight by (A1111 multiplies by 1/1.1 rather than dividing by 1.1)."""

# One alternative per lexical item, tried in this order at each position (A1111's order):
_ITEM = re.compile(
    r"""
      (?P<escaped>\\[()\[\]\\])        # \( \) \[ \] \\ : the character itself
    | (?P<backslash>\\)                # any other backslash is dropped
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\)   # `:1.3)` closes a round bracket with that weight
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+ | :)      # plain text; a colon that is not a weight is plain text too
    """,
    re.X,
)
_BREAK_WORD = re.compile(r"\s*\bBREAK\b\s*")


class _Fragments:
    """Text fragments with their weights while the prompt is read; `BREAK` markers keep weight -1."""

    def __init__(self) -> None:
        self.items: list[list] = []  # [text, weight, is_break]
        self.round: list[int] = []  # index of the first fragment inside each open `(`
        self.square: list[int] = []

    def add_text(self, text: str) -> None:
        for i, part in enumerate(_BREAK_WORD.split(text)):
            if i > 0:
                self.items.append([BREAK[0], BREAK[1], True])
            self.items.append([part, 1.0, False])

    def scale_from(self, start: int, factor: float) -> None:
        for item in self.items[start:]:
            if not item[2]:
                item[1] *= factor

    def close_round(self, factor: float) -> bool:
        """Apply `factor` to the innermost open `(`; False when none is open."""
        if not self.round:
            return False
        self.scale_from(self.round.pop(), factor)
        return True

    def close_square(self) -> bool:
        """Apply 1/1.1 to the innermost open `[`; False when none is open."""
        if not self.square:
            return False
        self.scale_from(self.square.pop(), SQUARE)
        return True

    def close_all(self) -> None:
        """Close brackets left open at the end: every `(` first, then every `[` (A1111's order)."""
        for start in self.round:
            self.scale_from(start, ROUND)
        for start in self.square:
            self.scale_from(start, SQUARE)
        self.round.clear()
        self.square.clear()

    def merged(self) -> list[tuple[str, float]]:
        """Adjacent fragments of equal weight joined into one; markers are never joined."""
        out: list[list] = []
        for text, weight, is_break in self.items:
            if out and not is_break and not out[-1][2] and out[-1][1] == weight:
                out[-1][0] += text
            else:
                out.append([text, weight, is_break])
        return [(text, weight) for text, weight, _ in out] or [("", 1.0)]


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split a prompt into (text, weight) fragments as A1111 does; `BREAK` yields the entry `("BREAK", -1.0)`.

    `(x)` multiplies by 1.1, `[x]` by 1/1.1, `(x:w)` by w; brackets nest by multiplying; brackets left open are
    closed at the end; a `)` or `]` with nothing open is plain text. Two choices differ from A1111 where it
    misbehaves: a `BREAK` inside brackets still breaks (A1111 scales its -1 and then encodes the word "break"),
    and `(x:1.2.3)` reads `:1.2.3` as text with the `)` closing at 1.1 (A1111 raises an error).
    """
    fragments = _Fragments()
    for match in _ITEM.finditer(text):
        kind = match.lastgroup
        item = match.group(0)
        if kind == "escaped":
            fragments.items.append([item[1], 1.0, False])
        elif kind == "backslash":
            fragments.items.append(["", 1.0, False])
        elif kind == "open":
            (fragments.round if item == "(" else fragments.square).append(len(fragments.items))
        elif kind == "weight":
            if not fragments.close_round(float(match.group("weight"))):
                fragments.add_text(item)
        elif kind == "close":
            closed = fragments.close_round(ROUND) if item == ")" else fragments.close_square()
            if not closed:
                fragments.add_text(item)
        else:
            fragments.add_text(item)
    fragments.close_all()
    return fragments.merged()


def is_break(fragment: tuple[str, float]) -> bool:
    """Whether a fragment from `parse_prompt_attention` is the `BREAK` marker."""
    return fragment[0] == BREAK[0] and fragment[1] == BREAK[1]

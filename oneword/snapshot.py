"""What a checkpoint of any kind offers to whoever samples with it (previews, scorers, compare, the judge).

A snapshot says what it adds to the text side (token vectors: embeddings by word, spliced into prompts), what it
applies to the networks (modules with a strength, such as a hypernetwork on the UNet's attention) and the word a
prompt needs to call it up, if any. Code that samples with a checkpoint asks these, never which kind it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from oneword.embeddings.embedding import Embedding


class Snapshot(Protocol):
    """A checkpoint of a run: an embedding, a hypernetwork, or any registered kind's."""

    name: str
    step: int | None

    @property
    def trigger_word(self) -> str | None:
        """The word a prompt needs to call it up, or None when it acts on every prompt."""
        ...

    def token_vectors(self) -> dict[str, Embedding]:
        """The embeddings it adds to the text side, by the word that calls each up ({} for none)."""
        ...

    def network_modules(self) -> list[tuple[Any, float]]:
        """The modules it applies to the networks, each with its strength ([] for none)."""
        ...

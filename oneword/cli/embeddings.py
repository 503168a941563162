"""`oneword embeddings list` and `oneword create-embedding`."""

from __future__ import annotations

from oneword.cli import app  # noqa: F401

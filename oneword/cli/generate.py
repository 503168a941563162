"""`oneword generate` and `oneword compare`."""

from __future__ import annotations

from oneword.cli import app  # noqa: F401

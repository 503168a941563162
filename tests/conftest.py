"""Shared fixtures: tiny random models of each kind, built once per test session."""

from __future__ import annotations

import os

import pytest

from oneword.offline import go_offline

go_offline()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_models():
    """A function kind -> tiny BaseModel (seed 0), cached for the session; callers must not modify it."""
    from oneword.models.tiny import build_tiny

    cache = {}

    def get(kind: str = "sd1"):
        if kind not in cache:
            cache[kind] = build_tiny(kind, seed=0)
        return cache[kind]

    return get


@pytest.fixture
def tiny_sd1(tiny_models):
    """The tiny SD 1.x model."""
    return tiny_models("sd1")


def pytest_configure(config):
    """Let tests import the helpers beside them (`from cli_helpers import ...`)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))

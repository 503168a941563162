"""The UI's fixtures: a workspace with the toy world's star pictures or an empty one, a server on a free local port
for each, and headless Chromium (Debian's `chromium`, driven by Playwright without a browser download)."""

from __future__ import annotations

import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the UI tests need Gradio: pip install -e '.[test]'")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WAIT_MS = int(os.environ.get("ONEWORD_UI_WAIT_MS", "180000"))
"""The longest a test waits for something to appear (a slow machine is slow, not broken)."""


def chromium_executable() -> str | None:
    """`ONEWORD_CHROMIUM`, else the first Chromium on PATH."""
    given = os.environ.get("ONEWORD_CHROMIUM")
    if given:
        return given
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def _missing(reason: str) -> None:
    """No browser: a skip on a developer's machine, a failure in CI (where .ci/run installs chromium)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run; .ci/run installs Debian's chromium)")
    pytest.skip(f"{reason}: install Debian's `chromium` (or set ONEWORD_CHROMIUM) to run the browser tests")


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium for the whole session."""
    executable = chromium_executable()
    if executable is None:
        _missing("no chromium executable found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace holding the toy world's 12 star pictures in datasets/star."""
    from oneword.toy.concepts import get_concept, write_concept_examples
    from oneword.ui.paths import Workspace

    space = Workspace.at(tmp_path_factory.mktemp("workspace"))
    write_concept_examples(get_concept("star"), space.root / "datasets" / "star")
    return space


@pytest.fixture(scope="module")
def empty_workspace(tmp_path_factory):
    """A workspace with nothing in it, as a beginner's first one."""
    from oneword.ui.paths import Workspace

    return Workspace.at(tmp_path_factory.mktemp("empty-workspace"))


@contextmanager
def serving(workspace):
    """The UI served from this process on a free local port (Gradio's copies kept in the workspace); on leaving, a
    running training is stopped and waited for, and the server closed."""
    from oneword.ui.app import serve

    old = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(workspace.root / ".cache" / "gradio")
    started = serve(workspace, port=free_port(), block=False)
    try:
        yield started
    finally:
        started.jobs.stop()
        if started.jobs.current is not None:
            started.jobs.current.join(timeout=120)
        started.app.close()
        if old is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = old


@pytest.fixture(scope="module")
def server(workspace):
    """The UI on the star-pictures workspace."""
    with serving(workspace) as started:
        yield started


@pytest.fixture(scope="module")
def empty_server(empty_workspace):
    """The UI on the empty workspace."""
    with serving(empty_workspace) as started:
        yield started


@contextmanager
def opened(browser, url: str, width: int = 1400, height: int = 1000):
    """A fresh browser page on the UI at `url`, in a context of its own with a `width` x `height` viewport."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.get_by_role("tab", name="Train").wait_for()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser page on the UI."""
    with opened(browser, server.url) as page:
        yield page


def screenshot_folder(tmp_path: Path) -> Path:
    """Where the beginner's end-to-end test (test_beginner.py) leaves its screenshots: ONEWORD_UI_SCREENSHOTS (docs/ui
    to refresh the README's) or the test's temporary folder."""
    folder = Path(os.environ.get("ONEWORD_UI_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder

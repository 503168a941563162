"""Keep the Hugging Face libraries off the network: oneword only ever reads local files."""

from __future__ import annotations

import os

OFFLINE_SWITCHES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",  # `oneword ui`: no usage reports, no version check
}


def go_offline() -> None:
    """Set the libraries' offline switches for this process (called by the entry points, not on import)."""
    for key, value in OFFLINE_SWITCHES.items():
        os.environ[key] = value


QUIET_SWITCHES = {
    "TRANSFORMERS_VERBOSITY": "error",
    "DIFFUSERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def quiet_libraries() -> None:
    """Keep the libraries' own warnings and progress bars out of oneword's output (unless the user set them)."""
    for key, value in QUIET_SWITCHES.items():
        os.environ.setdefault(key, value)
    # The switches are read at import; a library imported already (a test process, a notebook) is told directly.
    import sys

    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    if "diffusers" in sys.modules:
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.set_verbosity_error()
        diffusers_logging.disable_progress_bar()

"""The root of the `oneword` command: the Typer app every command module adds itself to, its `--debug` switch,
and the defaults the commands share."""

from __future__ import annotations

import typer

from oneword.fielddocs import field_docs
from oneword.train.config import TrainConfig

app = typer.Typer(
    name="oneword",
    help="Teach a Stable Diffusion model a new word: embeddings that load in A1111, ComfyUI and diffusers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DEFAULT_MODEL = "toy"
"""What `--model` loads when not given: the toy-world model bundled in the package (64 px, SD 1.x layout)."""
MODEL_HELP = field_docs(TrainConfig)["model"]
"""What every command's `--model` says: the help of TrainConfig's field, so there is one text."""
DEFAULT_EMBEDDINGS_DIR = "embeddings"
"""The folder every command reads embeddings from (A1111's `embeddings/`)."""
DEFAULT_HYPERNETWORK_DIR = "hypernetworks"
"""The folder every command reads hypernetworks from (A1111's `models/hypernetworks/`)."""

DEFAULT_LORA_DIR = "lora"
"""The folder every command reads LoRAs from (A1111's `models/Lora`)."""
LORA_DIR_HELP = "LoRA folder, for <lora:NAME:WEIGHT> (files by stem, subfolders too)."

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    _state["debug"] = debug

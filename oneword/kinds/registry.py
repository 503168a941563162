"""The registry of kinds: every kind of small model a run can train, by name.

A kind is one module that declares everything kind-specific (oneword/kinds/embedding.py and hypernetwork.py are the
shipped ones); the loop, the command line and the UI ask the registry and name no kind. A kind registered at run
time (`register`) is trained like the shipped ones: `oneword train NAME --kind ITS_NAME`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch

    from oneword.models.base import BaseModel
    from oneword.train.config import TrainConfig
    from oneword.train.trainable import Trainable


class Kind(Protocol):
    """What a kind of small model declares: defaults, log-folder names, checks, and how it starts and is saved."""

    name: str
    """The `--kind` value."""
    defaults: Mapping[str, Any]
    """TrainConfig fields the kind decides where a config leaves them unset (None): `learn_rate`, `template`, and
    its own settings' (a LoRA's `rank`)."""
    # Optional: `model_defaults`, a mapping of --model names (`toy`) to the fields the kind decides otherwise for
    # that base model, over `defaults` (a LoRA's rates and batch on the toy model, whose layers are far narrower
    # than SD's). A kind that has none may leave it out.
    options: tuple[str, ...]
    """TrainConfig fields only this kind reads (a LoRA's `rank`): given for another kind they are refused. A kind
    that declares none may leave it out."""
    folder: str
    """The log folder's subfolder of checkpoints (A1111's `embeddings`, `hypernetworks`)."""
    csv_name: str
    """The log folder's loss CSV."""
    preview_label: str
    """The generation parameter that carries a preview's step (`Embedding step`)."""
    hidden_in_previews: bool
    """Whether each preview is also written with the checkpoint hidden inside (`image_embeddings/`)."""
    command: str | None
    """A command that trains this kind (`train-hypernetwork`), or None."""
    command_help: str
    """That command's help."""

    def problems(self, config: TrainConfig) -> list[str]:
        """What is wrong with the settings for this kind, each naming its option."""
        ...

    def trained_dir(self, config: TrainConfig) -> tuple[str, Path]:
        """The option and folder the trained file is read from, created in and written to."""
        ...

    def suffix(self, model: BaseModel) -> str:
        """The trained file's suffix for `model` (`.pt` or `.safetensors`)."""
        ...

    def create(self, config: TrainConfig, model: BaseModel, name: str) -> Any:
        """A new snapshot (step 0) for a name that has no file yet."""
        ...

    def read(self, path: Path, model: BaseModel) -> Any:
        """A saved file (a checkpoint or NAME.pt) as a snapshot, refused (OnewordError) when it does not fit `model`."""
        ...

    def trainable(self, snapshot: Any, config: TrainConfig, device: torch.device) -> Trainable:
        """What the loop trains, starting from `snapshot`."""
        ...

    def state_hash(self, snapshot: Any) -> str:
        """A short digest of a snapshot's weights (an optimizer state resumes only the weights it was saved with)."""
        ...

    # Optional: `continuing_problems(config, snapshot, path) -> list[str]`, the settings a run that continues the
    # file `path` (read as `snapshot`) would not use, each naming its option (a LoRA's --rank other than the file's):
    # the run is refused with them before anything is written.

    # Optional, for a kind whose files round its weights (a LoRA's fp16): its Trainable's `exact_weights(snapshot)`
    # gives them at full precision for the optimizer state, and the kind's
    # `with_exact_weights(snapshot, weights) -> snapshot` puts them back into a snapshot read from such a file, so
    # that `--resume` continues exactly. `state_hash` must then digest the weights as the file keeps them.


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Make `kind` trainable by its name (a later kind of the same name replaces it); returns it."""
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget the kind `name` (tests that register their own)."""
    _KINDS.pop(name, None)


def get(name: str) -> Kind:
    """The kind `name`; KeyError when none is registered."""
    return _KINDS[name]


def names() -> tuple[str, ...]:
    """Every registered kind's name, the shipped ones first."""
    return tuple(_KINDS)

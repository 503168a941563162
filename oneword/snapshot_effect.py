"""A checkpoint applied to the model as its prompt tag would apply it: a LoRA's layers on the text encoders and the
UNet, a hypernetwork on the UNet's attention, each at the strength the checkpoint gives (`network_modules()`).

`compare` draws a column with each checkpoint this way: with no tag in the prompt and no folder to find it in. Which
code applies a module is decided here, by the module's class, so that code drawing with a checkpoint names no kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from oneword.conditioning.tags import Effect
from oneword.errors import OnewordError
from oneword.hypernetworks.apply import hypernetworks_applied
from oneword.hypernetworks.hypernetwork import Hypernetwork
from oneword.lora.apply import loras_applied
from oneword.lora.network import Lora
from oneword.models.base import BaseModel
from oneword.snapshot import Snapshot


@dataclass
class CheckpointEffect(Effect):
    """The network modules of one checkpoint: `<lora:NAME:W>` or `<hypernet:NAME:W>` at the checkpoint's strengths."""

    snapshot: Snapshot
    notes: list[str] = field(default_factory=list)
    """What was left out (a LoRA's layers that do not fit the model), each line once."""

    def text_encoder(self, model: BaseModel) -> AbstractContextManager:
        """A LoRA's text-encoder layers (a hypernetwork has none)."""
        return self._applied(model, "te")

    def unet(self, model: BaseModel) -> AbstractContextManager:
        """A LoRA's UNet layers, a hypernetwork's modules."""
        return self._applied(model, "unet")

    @contextlib.contextmanager
    def _applied(self, model: BaseModel, part: str) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for module, strength in self.snapshot.network_modules():
                if isinstance(module, Lora):
                    notes = stack.enter_context(loras_applied(model, [(module, strength, strength)], (part,)))
                    self.notes += [note for note in notes if note not in self.notes]
                elif isinstance(module, Hypernetwork):
                    if part == "unet":
                        stack.enter_context(hypernetworks_applied(model.unet, [(module, strength)]))
                else:
                    raise OnewordError(f"{self.snapshot.name}: oneword cannot apply a {type(module).__name__}")
            yield

"""The hypernetwork kind: A1111's small networks on the UNet's cross-attention keys and values, applied to every
UNet call while the run trains them (A1111's `hypernetworks/` and `hypernetwork_loss.csv`)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from oneword.errors import OnewordError

if TYPE_CHECKING:  # the rest is imported where it is used: the command line reads this kind without torch
    import torch

    from oneword.conditioning.encode import Conditioning
    from oneword.hypernetworks.hypernetwork import Hypernetwork
    from oneword.models.base import BaseModel
    from oneword.train.config import TrainConfig
    from oneword.train.groups import ParamGroup

def hypernetwork_hash(hypernetwork: Hypernetwork) -> str:
    """The digest of every module's weights of a hypernetwork."""
    from oneword.train.trainable import tensors_hash

    return tensors_hash([(f"{w}.{i}.{k}", t) for w in hypernetwork.widths for i, module in
                         enumerate(hypernetwork.layers[w]) for k, t in module.state_dict().items()])


class HypernetworkTrainable:
    """The modules of one hypernetwork (float32), applied at strength 1 to the model's UNet for the run."""

    kind = "hypernetwork"
    weight_decay = 0.01
    """A1111 keeps torch's AdamW default for hypernetworks."""

    def __init__(self, hypernetwork: Hypernetwork, device: torch.device, cache_conditioning: bool = False) -> None:
        from oneword.conditioning.cache import ConditioningCache

        self.name = hypernetwork.name
        self.hypernetwork = hypernetwork.to(device)
        for p in self.hypernetwork.parameters():
            p.requires_grad_(True)
        self.cache_conditioning = cache_conditioning
        self._cache = ConditioningCache() if cache_conditioning else None

    def parameters(self) -> list[torch.Tensor]:
        """Every module's weights, K before V, widths in increasing order."""
        return self.hypernetwork.parameters()

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        """One group, `modules`, at the run's rate."""
        from oneword.train.groups import ParamGroup

        return [ParamGroup("modules", self.parameters(), learn_rate, self.weight_decay)]

    def conditioning(self, model: BaseModel, prompts: list[str], rows: list[int] | None = None) -> Conditioning:
        """The plain text conditioning (the hypernetwork acts inside the UNet); with `cache_conditioning`, each
        prompt's is computed once (per chunk count) and reused: it has no gradient and the text encoders are frozen."""
        from oneword.conditioning.encode import encode_prompts

        if self._cache is None:
            return encode_prompts(model, prompts, {}, grad=False, rows=rows)
        return self._cache.conditioning(model, prompts, rows)

    @contextlib.contextmanager
    def applied(self, model: BaseModel) -> Iterator[None]:
        """The hypernetwork on every attention layer of its widths, dropout on, for the run."""
        from oneword.hypernetworks.apply import hypernetworks_applied

        self.hypernetwork.train(True)
        try:
            with hypernetworks_applied(model.unet, [(self.hypernetwork, 1.0)]):
                yield
        finally:
            self.hypernetwork.train(False)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """Dropout off while sampling, back on after."""
        self.hypernetwork.train(False)
        try:
            yield
        finally:
            self.hypernetwork.train(True)

    def snapshot(self, step: int) -> Hypernetwork:
        """A CPU copy of the modules (in eval mode), stamped with `step`."""
        copied = copy.deepcopy(self.hypernetwork).to("cpu")
        for p in copied.parameters():
            p.requires_grad_(False)
        copied.train(False)
        copied.step = step
        return copied

    def save(self, snapshot: Hypernetwork, path: Path, model: BaseModel, name: str) -> None:
        """A1111 `.pt` (or `.safetensors`), recording the base model."""
        from oneword.hypernetworks.formats import save_hypernetwork

        snapshot.sd_checkpoint, snapshot.sd_checkpoint_name = model.short_hash, model.name
        snapshot.name = name
        save_hypernetwork(snapshot, path)

    def state_hash(self, snapshot: Hypernetwork) -> str:
        """The digest of every module's weights."""
        return hypernetwork_hash(snapshot)

    def load(self, hypernetwork: Hypernetwork) -> None:
        """Put another hypernetwork's weights (same structure) into the modules."""
        import torch

        with torch.no_grad():
            for mine, theirs in zip(self.hypernetwork.parameters(), hypernetwork.parameters()):
                mine.copy_(theirs.to(mine))


class HypernetworkKind:
    """A1111's hypernetwork training: rate 0.00001 (an embedding's turns it to noise), the hypernetwork template."""

    name = "hypernetwork"
    defaults: ClassVar[dict[str, str]] = {"learn_rate": "0.00001", "template": "hypernetwork"}
    options = ()
    folder = "hypernetworks"
    csv_name = "hypernetwork_loss.csv"
    preview_label = "Hypernetwork step"
    hidden_in_previews = False
    command = "train-hypernetwork"
    command_help = ("Train a hypernetwork (`train --kind hypernetwork`): writes LOG_DIR/YYYY-MM-DD/NAME/ and "
                    "HYPERNETWORK_DIR/NAME.pt.")

    def problems(self, config: TrainConfig) -> list[str]:
        """Nothing beyond the shared checks."""
        return []

    def trained_dir(self, config: TrainConfig) -> tuple[str, Path]:
        return "--hypernetwork-dir", Path(config.hypernetwork_dir)

    def suffix(self, model: BaseModel) -> str:
        return ".pt"

    def create(self, config: TrainConfig, model: BaseModel, name: str) -> Hypernetwork:
        """With create-hypernetwork's defaults."""
        from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork

        return create_hypernetwork(model, CreateHypernetworkConfig(name, hypernetwork_dir=config.hypernetwork_dir))

    def read(self, path: Path, model: BaseModel) -> Hypernetwork:
        from oneword.hypernetworks.apply import widths_of
        from oneword.hypernetworks.formats import load_hypernetwork

        hypernetwork = load_hypernetwork(path)
        used = widths_of(model.unet)
        if not set(hypernetwork.widths) & set(used):
            raise OnewordError(f"{path}: its modules ({', '.join(map(str, hypernetwork.widths))}) fit no attention "
                               f"width of {model.name} ({', '.join(map(str, used))})")
        return hypernetwork

    def trainable(self, snapshot: Hypernetwork, config: TrainConfig, device: torch.device) -> HypernetworkTrainable:
        return HypernetworkTrainable(snapshot, device, config.cache_conditioning)

    def state_hash(self, snapshot: Hypernetwork) -> str:
        return hypernetwork_hash(snapshot)


HYPERNETWORK = HypernetworkKind()

"""The pivotal kind: a word's vectors (Textual Inversion) and a LoRA trained together in one run, as diffusers'
advanced DreamBooth LoRA script and OneTrainer's additional embeddings do, saved as one kohya LoRA file with the
word bundled the way A1111 reads it (`lora/` in the log folder, `pivotal_loss.csv`, `LORA_DIR/NAME.safetensors`).

The LoRA's settings and defaults are the LoRA kind's and the vectors' start is the embedding kind's (--init-text,
--vectors); the vectors train at --vectors-lr for the first --ti-frac of the run (all of it by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneword.errors import OnewordError
from oneword.kinds.embedding import EMBEDDING
from oneword.kinds.lora import LORA
from oneword.train.schedule import schedule_problem

if TYPE_CHECKING:  # the rest is imported where it is used: the command line reads this kind without torch
    import torch

    from oneword.lora.network import Lora
    from oneword.models.base import BaseModel
    from oneword.pivotal.trainable import PivotalTrainable
    from oneword.train.config import TrainConfig

TI_FRAC = 1.0
"""The share of the run the vectors train for. diffusers' --train_text_encoder_ti_frac defaults to 0.5; on the toy
world the LoRA at the LoRA kind's rates cannot carry the concept alone once the vectors stop (the star: 94% at step
100 fell to 78% after they stopped at 150; trained throughout it ended at 94%: docs/benchmarks.md, "Embedding and
LoRA together")."""
VECTORS_LR = "0.01"
"""The vectors' rate: twice the embedding kind's, which the LoRA's text-encoder layers let the vectors take (the star
reached 90% at step 100 against 200 for Textual Inversion alone, docs/benchmarks.md)."""


class PivotalKind:
    """A word's vectors at --vectors-lr for the whole run (--ti-frac), and a LoRA at the LoRA kind's settings."""

    name = "pivotal"
    options = (*LORA.options, "vectors_lr", "ti_frac")
    """The LoRA's settings and the vectors' own: given for another kind, the last two are refused."""
    folder = "lora"
    csv_name = "pivotal_loss.csv"
    preview_label = "Pivotal step"
    hidden_in_previews = False
    command = None
    command_help = ""

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The LoRA kind's defaults (read when asked, so that a change there carries over), --vectors-lr and
        --ti-frac."""
        return {**LORA.defaults, "vectors_lr": VECTORS_LR, "ti_frac": TI_FRAC}

    def problems(self, config: TrainConfig) -> list[str]:
        """The LoRA's and the embedding's checks, --vectors-lr's schedule, --ti-frac in (0, 1]."""
        problems = LORA.settings_problems(config) + EMBEDDING.problems(config)
        if isinstance(config.vectors_lr, str):
            problems += [p for p in (schedule_problem(config.vectors_lr, config.max_steps, "--vectors-lr"),) if p]
        if isinstance(config.ti_frac, (int, float)) and not 0.0 < config.ti_frac <= 1.0:
            problems.append(f"--ti-frac must be above 0 and at most 1, but is {config.ti_frac}")
        return problems

    def trained_dir(self, config: TrainConfig) -> tuple[str, Path]:
        return "--lora-dir", Path(config.lora_dir)

    def suffix(self, model: BaseModel) -> str:
        return ".safetensors"

    def create(self, config: TrainConfig, model: BaseModel, name: str) -> Lora:
        """A LoRA that changes nothing yet (the LoRA kind's) with the word's new vectors (the embedding kind's, from
        --init-text) bundled; NAME is its trigger."""
        lora = LORA.create(config, model, name)
        return dataclasses.replace(lora, trigger=name, embeddings={name: EMBEDDING.create(config, model, name)})

    def read(self, path: Path, model: BaseModel) -> Lora:
        """A LoRA file that fits `model` (the LoRA kind's check) with one bundled embedding that fits it too."""
        from oneword.embeddings.embedding import EmbeddingMismatch

        lora = LORA.read_fitting(path, model)
        if len(lora.embeddings) != 1:
            words = ", ".join(lora.embeddings) or "none"
            raise OnewordError(f"{path}: a pivotal run continues a LoRA with one bundled word, this one has {words}")
        try:
            next(iter(lora.embeddings.values())).vectors_for(model)
        except EmbeddingMismatch as error:
            raise OnewordError(f"{path}: its bundled word does not fit {model.name}: {error}") from None
        return lora

    def trainable(self, snapshot: Lora, config: TrainConfig, device: torch.device) -> PivotalTrainable:
        from oneword.lora.trainable import PRECISIONS, LoraSettings
        from oneword.pivotal.trainable import PivotalTrainable, vectors_schedule

        settings = LoraSettings(config.learn_rate, config.text_encoder_lr, bool(config.train_text_encoder),
                                PRECISIONS[config.save_precision], config.cache_conditioning)
        return PivotalTrainable(snapshot, device, settings,
                                vectors_schedule(config.vectors_lr, config.ti_frac, config.max_steps))

    def state_hash(self, snapshot: Lora) -> str:
        from oneword.pivotal.trainable import pivotal_hash

        return pivotal_hash(snapshot)

    def continuing_problems(self, config: TrainConfig, snapshot: Lora, path: Path) -> list[str]:
        """The LoRA kind's: a --rank other than the file's."""
        return LORA.continuing_problems(config, snapshot, path)

    def with_exact_weights(self, snapshot: Lora, weights: dict[str, torch.Tensor]) -> Lora:
        """The snapshot with the LoRA's float32 layers of its run's optimizer state (the word kept as read)."""
        return LORA.with_exact_weights(snapshot, weights)


PIVOTAL = PivotalKind()

"""Preview images during training: one fixed prompt and seed for the whole run, always the current weights."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from oneword.conditioning.tags import TagLibrary
from oneword.embeddings.png import write_png_embedding
from oneword.generate.config import GenerateConfig
from oneword.generate.pnginfo import format_parameters, save_png
from oneword.models.base import BaseModel
from oneword.models.device import vae_beside_unet
from oneword.train.trainable import Snapshot, stamped


def draw_preview(
    model: BaseModel, snapshot: Snapshot, config: GenerateConfig, image_path: Path, embedding_path: Path | None,
    label: str = "Embedding step", tags: Sequence[TagLibrary] = (),
) -> list[Path]:
    """Write `images/NAME-STEP.png` (with generation parameters, the step as `label`) and, with `embedding_path`, the
    snapshot's token vectors hidden in the picture there (`image_embeddings/NAME-STEP.png`, A1111's).

    A hypernetwork is drawn as the run applies it (to every UNet call); `tags` are the files of the prompt tags
    the preview prompt uses (`<hypernet:NAME:W>`). The VAE visits the model's device for the
    decode and goes back where it was.
    """
    from oneword.generate.txt2img import generate  # diffusers' pipelines: loaded at the first preview, not before

    with vae_beside_unet(model):
        drawn = generate(model, dataclasses.replace(config, batch=1), snapshot.token_vectors(), *tags)[0]
    parameters = dataclasses.replace(drawn.parameters, extra=((label, str(snapshot.step)),))
    save_png(drawn.image, image_path, format_parameters(parameters))
    vectors = list(snapshot.token_vectors().values())
    if len(vectors) != 1 or embedding_path is None:
        return [image_path]
    # A1111 hides the step's checkpoint file in the picture: its word is NAME-STEP, with the model it was trained on
    hidden = stamped(vectors[0], model, f"{snapshot.name}-{snapshot.step}")
    write_png_embedding(hidden, embedding_path, drawn.image, model_name=model.name, model_hash=model.short_hash,
                        steps=snapshot.step)
    return [image_path, embedding_path]

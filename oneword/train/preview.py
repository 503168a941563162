"""Preview images during training: one fixed prompt and seed for the whole run, always the current vectors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.png import write_png_embedding
from oneword.generate.config import GenerateConfig
from oneword.generate.pnginfo import format_parameters, save_png
from oneword.generate.txt2img import generate
from oneword.models.base import BaseModel
from oneword.models.device import vae_beside_unet


def draw_preview(
    model: BaseModel, embedding: Embedding, config: GenerateConfig, image_path: Path, embedding_path: Path
) -> list[Path]:
    """Write `images/NAME-STEP.png` (with generation parameters) and `image_embeddings/NAME-STEP.png`.

    The VAE visits the model's device for the decode and goes back where it was.
    """
    with vae_beside_unet(model):
        drawn = generate(model, dataclasses.replace(config, batch=1), {embedding.name: embedding})[0]
    parameters = dataclasses.replace(drawn.parameters, extra=(("Embedding step", str(embedding.step)),))
    save_png(drawn.image, image_path, format_parameters(parameters))
    write_png_embedding(embedding, embedding_path, drawn.image, model_name=model.name, model_hash=model.short_hash,
                        steps=embedding.step)
    return [image_path, embedding_path]

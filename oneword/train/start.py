"""What a run starts from: the embedding or hypernetwork file it continues (or creates), checked against the model;
with `--resume`, the last complete state of its log folder when there is one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from oneword.embeddings.create import create_embedding
from oneword.embeddings.embedding import Embedding, EmbeddingMismatch
from oneword.embeddings.formats import load_embedding_file
from oneword.errors import OnewordError
from oneword.hypernetworks.hypernetwork import Hypernetwork
from oneword.models.base import BaseModel
from oneword.train.config import TrainConfig
from oneword.train.resume import SavedRun, check_same_model, latest_saved_run
from oneword.train.trainable import (
    EmbeddingTrainable,
    HypernetworkTrainable,
    Trainable,
    embedding_hash,
    hypernetwork_hash,
)


def embedding_suffix(model: BaseModel) -> str:
    """`.pt` as A1111 writes; SDXL `.safetensors` (its A1111 `.pt` holds the two tensors and no step)."""
    return ".safetensors" if model.is_sdxl else ".pt"


def existing_file(folder: Path, name: str, suffix: str = ".pt") -> Path:
    """An existing `NAME.pt` or `NAME.safetensors` in `folder`, else the new file's path."""
    for existing in (".pt", ".safetensors"):
        path = Path(folder) / f"{name}{existing}"
        if path.is_file():
            return path
    return Path(folder) / f"{name}{suffix}"


def _starting_embedding(config: TrainConfig, model: BaseModel, name: str) -> tuple[Embedding, Path]:
    path = existing_file(config.embeddings_dir, name, embedding_suffix(model))
    if not path.is_file():
        if config.resume:
            raise OnewordError(f"--resume: there is no embedding {path} to continue")
        return create_embedding(model, name, config.init_text, config.vectors), path
    embedding = load_embedding_file(path)
    try:
        embedding.vectors_for(model)
    except EmbeddingMismatch as error:
        raise OnewordError(f"{path}: trained for another model, it does not fit {model.name}: {error}") from None
    embedding.name = name
    if (embedding.step or 0) > 0 and not config.resume:
        raise OnewordError(
            f"{path} has been trained for {embedding.step} steps already: pass --resume to continue it, "
            "or choose another name"
        )
    return embedding, path


def _starting_hypernetwork(config: TrainConfig, model: BaseModel, name: str) -> tuple[Hypernetwork, Path]:
    from oneword.hypernetworks.apply import widths_of
    from oneword.hypernetworks.create import CreateHypernetworkConfig, create_hypernetwork
    from oneword.hypernetworks.formats import load_hypernetwork

    path = existing_file(config.hypernetwork_dir, name)
    if not path.is_file():
        if config.resume:
            raise OnewordError(f"--resume: there is no hypernetwork {path} to continue")
        return create_hypernetwork(model, CreateHypernetworkConfig(name, hypernetwork_dir=config.hypernetwork_dir)), path
    hypernetwork = load_hypernetwork(path)
    used = widths_of(model.unet)
    if not set(hypernetwork.widths) & set(used):
        raise OnewordError(f"{path}: its modules ({', '.join(map(str, hypernetwork.widths))}) fit no attention width "
                           f"of {model.name} ({', '.join(map(str, used))})")
    hypernetwork.name = name
    if hypernetwork.step > 0 and not config.resume:
        raise OnewordError(f"{path} has been trained for {hypernetwork.step} steps already: pass --resume to continue "
                           "it, or choose another name")
    return hypernetwork, path


@dataclass
class Start:
    """What a run trains, the file it leaves (NAME.pt), the step it starts from, and the saved state it continues."""

    trainable: Trainable
    path: Path
    step: int
    saved: SavedRun | None = None


def starting_point(config: TrainConfig, model: BaseModel, name: str, device: torch.device) -> Start:
    """What the run trains, the file it continues and leaves, and the step it starts from."""
    hyper = config.kind == "hypernetwork"
    folder = config.hypernetwork_dir if hyper else config.embeddings_dir
    path = existing_file(folder, name, ".pt" if hyper else embedding_suffix(model))
    saved = _saved_run(config, model, name) if config.resume else None
    if saved is not None:
        check_same_model(saved, model)
        snapshot, suffix = saved.snapshot, saved.folder.suffix
        snapshot.name = name
        path = path if path.suffix == suffix else path.with_suffix(suffix)
        trainable = (HypernetworkTrainable(snapshot, device, config.cache_conditioning) if hyper
                     else EmbeddingTrainable(snapshot, device))
        return Start(trainable, path, saved.step, saved)
    if hyper:
        hypernetwork, path = _starting_hypernetwork(config, model, name)
        start = Start(HypernetworkTrainable(hypernetwork, device, config.cache_conditioning), path, hypernetwork.step)
    else:
        embedding, path = _starting_embedding(config, model, name)
        start = Start(EmbeddingTrainable(embedding, device), path, embedding.step or 0)
    if not config.resume:
        _refuse_to_overwrite_a_run(config, model, name)
    return start


def _saved_run(config: TrainConfig, model: BaseModel, name: str) -> SavedRun | None:
    if config.kind == "hypernetwork":
        from oneword.hypernetworks.formats import load_hypernetwork

        return latest_saved_run(config.log_dir, name, "hypernetwork", load_hypernetwork,
                                hypernetwork_hash)

    def load(path: Path) -> Embedding:
        embedding = load_embedding_file(path)
        try:
            embedding.vectors_for(model)
        except EmbeddingMismatch as error:
            raise OnewordError(f"{path}: trained for another model, it does not fit {model.name}: {error}") from None
        return embedding

    return latest_saved_run(config.log_dir, name, "embedding", load, embedding_hash)


def _refuse_to_overwrite_a_run(config: TrainConfig, model: BaseModel, name: str) -> None:
    """A new run of NAME must not write over today's log folder of an earlier run that `--resume` continues."""
    import datetime as dt

    saved = _saved_run(config, model, name)
    if saved is not None and saved.folder.root.parent.name == dt.date.today().isoformat():
        raise OnewordError(f"{saved.folder.root} holds a run of {name} saved at step {saved.step}: pass --resume to "
                           "continue it, or move that folder away to start again")


def read_snapshot(path: Path, kind: str) -> Embedding | Hypernetwork:
    """A run's saved file (a checkpoint or NAME.pt) of the kind `embedding` or `hypernetwork`."""
    if kind == "hypernetwork":
        from oneword.hypernetworks.formats import load_hypernetwork

        return load_hypernetwork(path)
    return load_embedding_file(path)

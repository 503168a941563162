"""Create a new embedding from an initialization text, as A1111's "Create embedding" does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oneword.embeddings.embedding import SINGLE_KEY, Embedding
from oneword.embeddings.formats import save_embedding
from oneword.errors import OnewordError, gather
from oneword.outputs import exists_problem, name_problem, new_file_problem

if TYPE_CHECKING:
    from oneword.models.base import BaseModel, TextEncoder

MAX_VECTORS = 75
"""A prompt chunk holds 75 tokens, so one word can stand for at most 75 vectors."""
FORMATS = ("pt", "safetensors")


@dataclass
class CreateEmbeddingConfig:
    """What `oneword create-embedding` is asked to do."""

    name: str
    """The prompt word and the file stem: letters, digits, `_`, `-` and `.` only."""
    init_text: str = "*"
    """Text whose token vectors start the embedding; empty for zeros."""
    vectors: int = 1
    """Vectors per token, 1..75."""
    embeddings_dir: Path = Path("embeddings")
    """Folder the file is written to."""
    overwrite: bool = False
    """Replace an existing file of the same name."""
    format: str = "pt"
    """`pt` (A1111's pickle dict) or `safetensors`."""

    @property
    def path(self) -> Path:
        """The file to write: EMBEDDINGS_DIR/NAME.FORMAT."""
        return Path(self.embeddings_dir) / f"{self.name}.{self.format}"


def name_problems(name: str) -> list[str]:
    """Why a name cannot be an embedding name (empty when it can)."""
    return [p for p in (name_problem("NAME", name),) if p]


def vectors_problems(n_vectors: int) -> list[str]:
    """Why a vector count is out of range (empty when it is fine)."""
    if not 1 <= n_vectors <= MAX_VECTORS:
        return [f"--vectors: {n_vectors} is out of range; an embedding has 1 to {MAX_VECTORS} vectors"]
    return []


def check_create(config: CreateEmbeddingConfig) -> None:
    """Raise one OnewordError with every problem of the config, the existing file included (before any model loads)."""
    problems = name_problems(config.name) + vectors_problems(config.vectors)
    if config.format not in FORMATS:
        problems.append(f"--format: {config.format!r} is not one of {', '.join(FORMATS)}")
    if not problems:
        problems += [p for p in (new_file_problem(config.embeddings_dir, config.path.name,
                                                  overwrite=config.overwrite),) if p]
    gather(problems)


def init_vectors(encoder: TextEncoder, init_text: str, n_vectors: int) -> torch.Tensor:
    """(n_vectors, width) rows of the encoder's token table for the init text; zeros when it has no tokens.

    As in A1111, the text is tokenized (no BOS/EOS) and cut to its first n_vectors tokens, then vector i copies
    token i * len // n_vectors, so "a b" with 4 vectors gives a, a, b, b.
    """
    table = encoder.model.get_input_embeddings().weight  # (vocab, width)
    ids = encoder.tokenizer(init_text, add_special_tokens=False)["input_ids"][:n_vectors] if init_text else []
    vectors = torch.zeros(n_vectors, table.shape[1], dtype=torch.float32)
    for i in range(n_vectors if ids else 0):
        vectors[i] = table[ids[i * len(ids) // n_vectors]].detach().to(device="cpu", dtype=torch.float32)
    return vectors


def create_embedding(model: BaseModel, name: str, init_text: str = "*", n_vectors: int = 1) -> Embedding:
    """A new embedding (step 0) for `model`: one vector set per text encoder, each from its own token table."""
    gather(name_problems(name) + vectors_problems(n_vectors))
    if len(model.encoders) == 1:
        vectors = {SINGLE_KEY: init_vectors(model.encoders[0], init_text, n_vectors)}
    else:
        vectors = {encoder.spec.key: init_vectors(encoder, init_text, n_vectors) for encoder in model.encoders}
    return Embedding(name=name, vectors=vectors, step=0)


def known_token_warning(model: BaseModel, name: str) -> str | None:
    """A warning when the name is already one token of the model's vocabulary (its old meaning gets hidden)."""
    tokenizer = model.encoders[0].tokenizer
    ids = tokenizer(name, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        return None
    token = tokenizer.convert_ids_to_tokens(ids[0]).removesuffix("</w>")
    return (
        f"warning: {name!r} is already a word the model knows (token {ids[0]} {token!r}); "
        "in prompts the embedding will take its place. A rarer name keeps both."
    )


def create_embedding_file(model: BaseModel, config: CreateEmbeddingConfig) -> tuple[Path, Embedding]:
    """Create the embedding of `config` and write it (refusing an existing file unless `overwrite`)."""
    check_create(config)
    embedding = create_embedding(model, config.name, config.init_text, config.vectors)
    path = config.path
    try:
        save_embedding(embedding, path, overwrite=config.overwrite)
    except FileExistsError:  # written by another process since the check
        raise OnewordError(exists_problem(path)) from None
    embedding.source = path
    return path, embedding


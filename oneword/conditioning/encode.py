"""A prompt to UNet conditioning as A1111 makes it: 75-token chunks, weights, embeddings, each text encoder."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from transformers import CLIPTokenizer

from oneword.conditioning.syntax import is_break, parse_prompt_attention
from oneword.conditioning.tokens import EmbeddingVocabulary, extended_tokens, token_ids
from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError
from oneword.models.base import BaseModel, TextEncoder

CHUNK_TOKENS = 75
"""Prompt tokens per chunk; with BOS and EOS a chunk fills CLIP's 77 positions."""
COMMA_BACKTRACK = 20
"""A1111's `comma_padding_backtrack` default: a full chunk breaks after a comma this many tokens back or fewer."""


@dataclass
class Conditioning:
    """What the UNet is conditioned on for one prompt."""

    context: torch.Tensor
    """(prompts, 77 * n_chunks, context_width); SDXL: clip_l and clip_g outputs side by side (768 + 1280)."""
    pooled: torch.Tensor | None
    """SDXL: (prompts, 1280), clip_g's projected vector at the EOS of the first chunk; None for SD 1.x/2.x."""


@dataclass
class PromptChunk:
    """Up to 75 prompt tokens with their weights; embedding vectors appear as placeholder ids >= vocab size."""

    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


class _Chunker:
    """Fills 75-token chunks the way A1111's `tokenize_line` does."""

    def __init__(self, comma: int) -> None:
        self.comma = comma
        self.chunks: list[PromptChunk] = []
        self.current = PromptChunk()
        self.last_comma = -1  # index in the current chunk of its last comma, -1 for none

    def close(self) -> None:
        self.chunks.append(self.current)
        self.current = PromptChunk()
        self.last_comma = -1

    def before_token(self, token: int) -> None:
        """Make room for one more token: a full chunk is closed, after its last comma if that is near its end."""
        chunk = self.current
        if token == self.comma:
            self.last_comma = len(chunk.ids)
        elif len(chunk.ids) == CHUNK_TOKENS and self.last_comma != -1 and (
            CHUNK_TOKENS - self.last_comma <= COMMA_BACKTRACK
        ):
            cut = self.last_comma + 1
            carried = PromptChunk(chunk.ids[cut:], chunk.weights[cut:])
            del chunk.ids[cut:], chunk.weights[cut:]
            self.close()
            self.current = carried
        if len(self.current.ids) == CHUNK_TOKENS:
            self.close()

    def add(self, ids: list[int], weight: float) -> None:
        self.current.ids.extend(ids)
        self.current.weights.extend([weight] * len(ids))


def prompt_chunks(model: BaseModel, prompt: str, vocabulary: EmbeddingVocabulary) -> list[PromptChunk]:
    """The prompt's weighted tokens split into chunks of at most 75 (an empty prompt gives one empty chunk).

    A full chunk is broken after its last comma when that comma is within the last 20 tokens; `BREAK` closes
    the chunk; an embedding is never split: when its vectors do not fit, the chunk is closed first.
    """
    # Every SD kind's encoders share one BPE vocabulary; they differ only in the pad id.
    tokenizer = model.encoders[0].tokenizer
    chunker = _Chunker(comma=tokenizer.convert_tokens_to_ids(",</w>"))
    for fragment in parse_prompt_attention(prompt):
        if is_break(fragment):
            chunker.close()
            continue
        text, weight = fragment
        ids = token_ids(tokenizer, text)
        position = 0
        while position < len(ids):
            chunker.before_token(ids[position])
            found = vocabulary.match(ids, position)
            if found is None:
                chunker.add([ids[position]], weight)
                position += 1
                continue
            word, length = found
            placeholders = vocabulary.placeholders(word)
            if len(chunker.current.ids) + len(placeholders) > CHUNK_TOKENS:
                chunker.close()
            chunker.add(placeholders, weight)
            position += length
    if chunker.current.ids or not chunker.chunks:
        chunker.close()
    return chunker.chunks


def chunk_token_ids(chunks: list[PromptChunk], tokenizer: CLIPTokenizer) -> torch.Tensor:
    """(n_chunks, 77) ids: BOS, the chunk's tokens, EOS, then the tokenizer's pad id up to 77.

    CLIP ViT-L pads with EOS itself; OpenCLIP encoders pad with `!` (id 0) after the EOS, as A1111 and
    diffusers do.
    """
    rows = []
    for chunk in chunks:
        row = [tokenizer.bos_token_id, *chunk.ids, tokenizer.eos_token_id]
        rows.append(row + [tokenizer.pad_token_id] * (CHUNK_TOKENS + 2 - len(row)))
    return torch.tensor(rows, dtype=torch.long)


def chunk_weights(chunks: list[PromptChunk]) -> torch.Tensor:
    """(n_chunks, 77) weights: 1.0 at BOS, EOS and padding."""
    rows = []
    for chunk in chunks:
        row = [1.0, *chunk.weights]
        rows.append(row + [1.0] * (CHUNK_TOKENS + 2 - len(row)))
    return torch.tensor(rows, dtype=torch.float32)


def apply_weights(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's emphasis: z * weights, then rescaled so each chunk's mean is the unweighted one.

    z: (n_chunks, 77, width); weights: (n_chunks, 77). Chunks whose weights are all 1 are returned as they are
    (A1111's arithmetic leaves them unchanged too, unless their mean is 0 and it divides 0 by 0). The means are
    taken in float32, which keeps half-precision encoders from overflowing or dividing by a rounded-off zero.
    A chunk whose weighted mean is (nearly) zero, under 1e-4 of its mean magnitude, keeps the plain product:
    A1111 would divide by it and draw NaN or a blown-out image; real encoders' means are far from zero.
    """
    weighted = (weights != 1.0).any(dim=1).to(z.device)[:, None, None]  # (n_chunks, 1, 1)
    if not bool(weighted.any()):
        return z
    weights = weights.to(device=z.device, dtype=torch.float32).unsqueeze(-1)  # (n_chunks, 77, 1)
    scaled = z.float() * weights
    # Ratio exactly 1 for unweighted chunks, without computing 0/0 there (its NaN would reach the gradients).
    original_mean = torch.where(weighted, z.float().mean(dim=(1, 2), keepdim=True), 1.0)
    new_mean = scaled.mean(dim=(1, 2), keepdim=True)
    degenerate = new_mean.abs() <= 1e-4 * scaled.abs().mean(dim=(1, 2), keepdim=True)
    original_mean = torch.where(degenerate, 1.0, original_mean)
    new_mean = torch.where(weighted & ~degenerate, new_mean, 1.0)
    return (scaled * (original_mean / new_mean)).to(z.dtype)


@dataclass
class _EncoderOutput:
    hidden: torch.Tensor  # (rows, 77, width), before weighting
    pooled: torch.Tensor | None  # (prompts, projection_dim) at each prompt's first chunk; projection encoders only


def _run_encoder(encoder: TextEncoder, ids: torch.Tensor, table: torch.Tensor, n_chunks: int) -> _EncoderOutput:
    """Run one encoder on (prompts * n_chunks, 77) ids, each prompt's chunks in consecutive rows."""
    model = encoder.model
    ids = ids.to(model.device)
    penultimate = encoder.spec.layer == "penultimate"
    with extended_tokens(model, table):
        out = model(input_ids=ids, output_hidden_states=penultimate)
    # `last`: already through the final layer norm; `penultimate`: hidden_states[-2], no norm (SDXL).
    hidden = out.hidden_states[-2] if penultimate else out.last_hidden_state
    pooled = None
    projection = getattr(model, "text_projection", None)
    if projection is not None:
        # The final-normed last layer at the first EOS. transformers picks argmax(ids) when the config's
        # eos_token_id is the legacy 2, which would land on a placeholder id; A1111 takes the EOS.
        first = ids[::n_chunks]  # (prompts, 77)
        eos = (first == encoder.tokenizer.eos_token_id).int().argmax(dim=1)  # (prompts,)
        last = out.last_hidden_state[::n_chunks]
        pooled = projection(last[torch.arange(len(first), device=last.device), eos])
    return _EncoderOutput(hidden=hidden, pooled=pooled)


def _encode_chunks(
    model: BaseModel, chunks: list[PromptChunk], vocabulary: EmbeddingVocabulary, grad: bool, n_prompts: int = 1
) -> Conditioning:
    """Encode `n_prompts` prompts of equally many chunks each, given one after another in `chunks`."""
    tables = vocabulary.tables()
    weights = chunk_weights(chunks)
    n_chunks = len(chunks) // n_prompts
    contexts = []
    pooled = None
    with contextlib.nullcontext() if grad else torch.no_grad():
        for encoder, table in zip(model.encoders, tables):
            out = _run_encoder(encoder, chunk_token_ids(chunks, encoder.tokenizer), table, n_chunks)
            z = apply_weights(out.hidden, weights)
            contexts.append(z.reshape(n_prompts, -1, z.shape[-1]))  # (prompts, 77 * n_chunks, width)
            if model.is_sdxl:
                pooled = out.pooled  # the last encoder (clip_g) gives SDXL's pooled vector
    return Conditioning(context=torch.cat(contexts, dim=-1), pooled=pooled)


def _padded(chunks: list[PromptChunk], n_chunks: int | None, prompt: str) -> list[PromptChunk]:
    if n_chunks is None:
        return chunks
    if len(chunks) > n_chunks:
        raise OnewordError(f"prompt {prompt[:60]!r} needs {len(chunks)} chunks of 75 tokens; n_chunks is {n_chunks}")
    return chunks + [PromptChunk() for _ in range(n_chunks - len(chunks))]


def encode_prompt(
    model: BaseModel,
    prompt: str,
    embeddings: Mapping[str, Embedding] | None = None,
    *,
    n_chunks: int | None = None,
    grad: bool = False,
) -> Conditioning:
    """The conditioning of one prompt, with `embeddings` (prompt word -> Embedding) in it, as A1111 encodes it.

    `n_chunks` pads with empty chunks up to that many. With `grad=True` the encoders run with autograd on, so
    gradients reach embedding vectors that require them (the encoders' own weights stay frozen).
    """
    vocabulary = EmbeddingVocabulary(model, embeddings)
    chunks = _padded(prompt_chunks(model, prompt, vocabulary), n_chunks, prompt)
    return _encode_chunks(model, chunks, vocabulary, grad)


def encode_pair(
    model: BaseModel,
    prompt: str,
    negative: str,
    embeddings: Mapping[str, Embedding] | None = None,
    *,
    grad: bool = False,
) -> tuple[Conditioning, Conditioning]:
    """Conditioning for a prompt and its negative, the shorter padded with empty chunks to the same length.

    SDXL: an empty negative prompt gives zeros (context and pooled), as A1111 and diffusers do.
    """
    vocabulary = EmbeddingVocabulary(model, embeddings)
    positive_chunks = prompt_chunks(model, prompt, vocabulary)
    negative_chunks = prompt_chunks(model, negative, vocabulary)
    n_chunks = max(len(positive_chunks), len(negative_chunks))
    cond = _encode_chunks(model, _padded(positive_chunks, n_chunks, prompt), vocabulary, grad)
    if model.is_sdxl and negative == "":
        uncond = Conditioning(context=torch.zeros_like(cond.context), pooled=torch.zeros_like(cond.pooled))
    else:
        uncond = _encode_chunks(model, _padded(negative_chunks, n_chunks, negative), vocabulary, grad)
    return cond, uncond


def encode_prompts(
    model: BaseModel,
    prompts: list[str],
    embeddings: Mapping[str, Embedding] | None = None,
    *,
    grad: bool = False,
    rows: list[int] | None = None,
) -> Conditioning:
    """The conditioning of several prompts in one pass of each encoder: context (len(prompts), 77 * n, width).

    Every prompt is padded with empty chunks to the longest one's count; each row equals `encode_prompt` of that
    prompt padded the same way. Training uses it to condition a whole batch at once. With `rows`, only those
    prompts are encoded (context (len(rows), 77 * n, width)), still padded as the whole list would be: a process
    of a data-parallel run encodes its share of a batch.
    """
    if not prompts:
        raise ValueError("encode_prompts needs at least one prompt")
    vocabulary = EmbeddingVocabulary(model, embeddings)
    per_prompt = [prompt_chunks(model, prompt, vocabulary) for prompt in prompts]
    n_chunks = max(len(chunks) for chunks in per_prompt)
    chosen = range(len(prompts)) if rows is None else rows
    chunks = [c for r in chosen for c in _padded(per_prompt[r], n_chunks, prompts[r])]
    return _encode_chunks(model, chunks, vocabulary, grad, n_prompts=len(chosen))


def embeddings_used(model: BaseModel, prompts: list[str], embeddings: Mapping[str, Embedding] | None) -> list[str]:
    """The words of `embeddings` that the prompts use, as the encoder finds them, in order of first use (each
    prompt in turn)."""
    vocabulary = EmbeddingVocabulary(model, embeddings)
    for prompt in prompts:
        prompt_chunks(model, prompt, vocabulary)
    return vocabulary.used

"""A copy of the toy model whose text encoder passes on words it never learned: does a LoRA's trigger then bind?

The bundled toy model's text encoder learned only the words of its captions. Any other token keeps its random
initial row, and the trained layers pass none of them on: "a photo of sks" conditions the UNet almost exactly as "a
photo of" does (1 - cosine 0.0001, against 0.15 for "circle"). On Stable Diffusion every token of CLIP's vocabulary
was trained. This script builds a variant (it never changes the bundled model): the text encoder is trained alone
for `--steps`, the UNet, VAE and judge kept as they are, on the recipe's captions (oneword/toy/pretrain.py), with
"object" replaced in a share `--rate` of the captions that have it by a word drawn from the tokenizer's other
whole words (about 33,000, each seen once or twice), and these losses:

- the diffusion loss through the frozen UNet (a replaced word stands for some thing, as "object" does);
- the word read back: a linear probe, thrown away afterwards, must recover the word's row from the text encoder's
  output at the positions after it (1 - cosine, weight `--identity`), so that the word changes the conditioning;
- the rest kept: on captions without such a word, the output stays what the bundled encoder gives (mean squared
  difference over the output's mean square, weight `--keep`), so that the named words keep their meaning;
- with `--same`, the word meaning nothing: the frozen UNet's prediction for a caption with the word held to its
  prediction for the same caption with "object" through the bundled encoder (weight `--same`), so that the word is
  visible to a LoRA but changes little of what the base model draws, as a rare token on SD.

It prints how far "a photo of WORD" lies from "a photo of" (1 - cosine over the whole sequence) for a few words
before and after, and writes the variant as a toy model folder (`--model FOLDER` for benchmarks/lora_quality.py
and benchmarks/lora_trials.py, `oneword toy report --model FOLDER` for its word rates).

    OMP_NUM_THREADS=2 python benchmarks/toy_words.py --out toy-words     # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
from torch import nn

WORDS = ("star", "cross", "crescent", "sks", "ohwx", "lion", "circle", "object")
"""Words whose distance is printed: the concepts' names, two made-up trigger words, a word, the named shapes' word
and the hidden shapes' word."""


def caption_token_ids(tokenizer) -> set[int]:
    """Every token id the toy world's captions use (their words and the special tokens)."""
    from oneword.toy.world import BACKGROUNDS, COLOURS, POSITIONS, PREFIXES, SHAPES, SIZES

    words = [*PREFIXES, *SHAPES, "object", "a", "an", "on", "background", *COLOURS, *BACKGROUNDS, *SIZES, *POSITIONS]
    ids = {i for text in words for i in tokenizer(text + ",", add_special_tokens=False).input_ids}
    return ids | set(tokenizer.all_special_ids)


def unknown_words(tokenizer) -> torch.Tensor:
    """Ids of the tokenizer's whole words (two or more ASCII letters) that no caption of the toy world uses."""
    used = caption_token_ids(tokenizer)
    return torch.tensor(sorted(i for token, i in tokenizer.get_vocab().items()
                               if token.endswith("</w>") and len(token) > 5 and token[:-4].isascii()
                               and token[:-4].isalpha() and i not in used))


def replace_object(ids: torch.Tensor, object_id: int, pool: torch.Tensor, rate: float,
                   rng: random.Random) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Token ids (B, 77) with "object", in a share `rate` of the rows that have it, replaced by a word drawn from
    `pool`; and (row, position, word id) of every replacement."""
    ids = ids.clone()
    placed = []
    for row in range(len(ids)):
        at = (ids[row] == object_id).nonzero().flatten()
        if len(at) and rng.random() < rate:
            word = int(pool[rng.randrange(len(pool))])
            ids[row][at] = word
            placed.append((row, int(at[0]), word))
    return ids, placed


def distance(encoder, prompt: str, other: str) -> float:
    """1 - cosine between the text encoder's outputs (B, 77, width) for two prompts, over the whole sequence."""
    ids = encoder.tokenizer([prompt, other], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        out = encoder.model(ids).last_hidden_state.flatten(1)
    return 1 - nn.functional.cosine_similarity(out[:1], out[1:]).item()


def teach_words(model, latents: torch.Tensor, scenes: list, args, log=print) -> None:
    """Train `model`'s text encoder in place (EMA weights kept), as the module's docstring says."""
    from diffusers import DDPMScheduler

    from oneword.diffusion import add_noise, alpha_bar, signal_to_noise
    from oneword.toy.pretrain import PretrainConfig, update_ema
    from oneword.toy.world import HIDDEN_SHAPES, caption

    recipe = PretrainConfig()
    encoder, unet = model.encoders[0], model.unet
    text, tokenizer = encoder.model, encoder.tokenizer
    (object_id,) = tokenizer("object", add_special_tokens=False).input_ids
    pool = unknown_words(tokenizer)
    alphas = DDPMScheduler.from_config(model.scheduler_config).alphas_cumprod
    torch.manual_seed(args.seed)
    unet.requires_grad_(False).eval()
    teacher = copy.deepcopy(text).eval().requires_grad_(False)
    text.requires_grad_(True).train()
    params = list(text.parameters())
    probe = nn.Linear(text.config.hidden_size, text.config.hidden_size)
    optimizer = torch.optim.AdamW([*params, *probe.parameters()], lr=args.lr, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    table = text.get_input_embeddings().weight
    rng = random.Random(args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 2)
    hidden = torch.tensor([s.shape in HIDDEN_SHAPES for s in scenes])
    share = recipe.hidden_share * (1 - recipe.private_rate)
    share /= share + 1 - recipe.hidden_share  # hidden scenes among the recipe's batches without a private token
    weights = torch.where(hidden, share / hidden.sum(), (1 - share) / (~hidden).sum())
    start = time.time()
    for step in range(1, args.steps + 1):
        lr = args.lr * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.multinomial(weights, args.batch, replacement=True, generator=gen)
        captions = ["" if rng.random() < recipe.caption_dropout else
                    caption(scenes[i], rng, generic_rate=recipe.generic_rate) for i in index.tolist()]
        x0 = latents[index]
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, len(alphas), (args.batch,), generator=gen)
        a = alpha_bar(alphas, t)
        said = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ids, placed = replace_object(said, object_id, pool, args.rate, rng)
        context = text(ids).last_hidden_state  # (B, 77, width)
        noisy = add_noise(x0, noise, a)
        pred = unet(noisy, t, context).sample
        per_sample = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        snr = signal_to_noise(a.flatten())
        loss = diffusion = (per_sample * snr.clamp(max=recipe.min_snr_gamma) / snr).mean()
        identity = keep = torch.zeros(())
        if placed:
            read = probe(torch.stack([context[row, at + 1 :].mean(0) for row, at, _ in placed]))
            words = table[[word for _, _, word in placed]].detach()
            identity = (1 - nn.functional.cosine_similarity(read, words, dim=-1)).mean()
        plain = sorted(set(range(len(ids))) - {row for row, _, _ in placed})
        if plain:
            with torch.no_grad():
                target = teacher(ids[plain]).last_hidden_state
            keep = (context[plain] - target).pow(2).mean() / target.pow(2).mean()
        same = torch.zeros(())
        if placed and args.same:
            rows = [row for row, _, _ in placed]
            with torch.no_grad():
                said_pred = unet(noisy[rows], t[rows], teacher(said[rows]).last_hidden_state).sample
            same = (pred[rows] - said_pred).pow(2).mean() / said_pred.pow(2).mean()
        loss = diffusion + args.identity * identity + args.keep * keep + args.same * same
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        update_ema(ema, params, step, recipe.ema_decay)
        if step % 100 == 0:
            log(f"step {step}/{args.steps}: diffusion loss {diffusion.item():.4f}, word read back "
                f"{1 - identity.item():.3f} (cosine), other captions moved {keep.item():.2e}, the word's effect "
                f"{same.item():.2e}, {step / (time.time() - start):.2f} steps/s")
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    text.eval().requires_grad_(False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the variant (replaced if it exists)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rate", type=float, default=0.5, help="share of the captions with 'object' given a word")
    parser.add_argument("--identity", type=float, default=1.0, help="weight of the word read back")
    parser.add_argument("--keep", type=float, default=100.0, help="weight of the other captions kept")
    parser.add_argument("--same", type=float, default=0.0,
                        help="weight of the word meaning nothing: the frozen UNet's prediction held to the one for the "
                             "caption with 'object'")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    from oneword.models.folder import save_diffusers_folder
    from oneword.offline import go_offline, quiet_libraries
    from oneword.toy.bundle import bundled_toy_path, load_toy
    from oneword.toy.data import encode_latents, render_dataset
    from oneword.toy.pretrain import PretrainConfig

    go_offline()
    quiet_libraries()
    model, _ = load_toy()
    for module in model.modules():
        module.float()
    recipe = PretrainConfig()
    start = time.time()
    images, scenes = render_dataset(recipe.n_images, recipe.seed)  # the recipe's scenes, through the bundled VAE
    latents = encode_latents(model.vae, images)
    print(f"{len(images)} scenes rendered and encoded in {time.time() - start:.0f} s; "
          f"{len(unknown_words(model.encoders[0].tokenizer))} unknown words", flush=True)
    encoder = model.encoders[0]
    before = {w: distance(encoder, f"a photo of {w}", "a photo of") for w in WORDS}
    teach_words(model, latents, scenes, args, log=lambda line: print(line, flush=True))
    after = {w: distance(encoder, f"a photo of {w}", "a photo of") for w in WORDS}
    print("\n| word | bundled: 1 - cosine vs 'a photo of' | variant |")
    print("|---|---:|---:|")
    for w in WORDS:
        print(f"| {w} | {before[w]:.5f} | {after[w]:.5f} |")
    for module in model.modules():
        module.half()
    shutil.rmtree(args.out, ignore_errors=True)
    save_diffusers_folder(model, args.out)
    for name in ("judge.safetensors", "toy.json"):
        shutil.copy(bundled_toy_path() / name, args.out / name)
    print(f"\nwrote {args.out} in {(time.time() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where does a toy LoRA's object go? Trials of LoRA designs on one hidden object, judged per checkpoint.

Each trial trains `oneword train NAME --kind lora` on the concept's 12 pictures (as benchmarks/lora_quality.py
does, `--set FIELD=VALUE` changing the kind's defaults) in one of these designs:

- plain: the LoRA kind as it is;
- kv: the UNet's LoRA on the cross-attention's key and value projections only (attn2.to_k, attn2.to_v: what
  Custom Diffusion trains), the text encoder's as the targets say;
- reg-class / reg-empty: DreamBooth's prior preservation, kohya's regularisation pictures: as many pictures as
  the concept has, drawn by the base model from the class prompt ("a photo of an object, CAPTION", reg-class) or
  from the empty prompt (reg-empty), trained with that prompt as it is (no template, no NAME) beside the concept's.

Per checkpoint the judge reads `--samples` samples of "a photo of NAME" (judged as the concept) and as many of the
empty prompt (how often the base's unconditional prediction, which classifier-free guidance subtracts, now draws
the concept too). The reference, in the same process: the base model alone on both prompts. The trial also prints
how far the text encoder's output for "a photo of NAME" lies from "a photo of" and from the empty prompt (1 -
cosine), for the base model and with the last checkpoint: whether the UNet can tell the word is there at all.
`--trigger WORD` trains and judges with another word than the concept's name.

    OMP_NUM_THREADS=1 python benchmarks/lora_trials.py --design kv --set learn_rate=0.001 --set text_encoder_lr=0.001
    OMP_NUM_THREADS=1 python benchmarks/lora_trials.py --design plain --set batch_size=8 --set learn_rate=0.003 ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lora_quality import checkpoint_files, lora_applied, overrides

DESIGNS = ("plain", "kv", "reg-class", "reg-empty")
REG = "REG:"
"""A regularisation picture's caption starts with this: its prompt is the rest, as it is."""


@contextlib.contextmanager
def design_in_place(design: str):
    """The trial's changes to oneword while a run trains: kv narrows the UNet's attention targets; reg-* fills a
    regularisation picture's prompt from its caption alone."""
    from oneword.lora import names
    from oneword.train import step

    attention, fill = names._ATTENTION, step.fill_template
    if design == "kv":
        names._ATTENTION = re.compile(r"\.attn2\.(to_k|to_v)$")

    def fill_reg(line, name, filewords, rng, **kw):
        return filewords[len(REG):].strip() if filewords.startswith(REG) else fill(line, name, filewords, rng, **kw)

    if design.startswith("reg-"):
        step.fill_template = fill_reg
    try:
        yield
    finally:
        names._ATTENTION, step.fill_template = attention, fill


def write_data(concept, design: str, seed: int, folder: Path, model) -> Path:
    """The concept's pictures, and for reg-* as many regularisation pictures drawn by `model`."""
    from oneword.models.device import vae_beside_unet
    from oneword.toy.concepts import write_concept_examples
    from oneword.toy.report import ReportConfig, draw

    paths = write_concept_examples(concept, folder, seed=seed)
    if design.startswith("reg-"):
        one = ReportConfig(samples=1, seed=0)
        with vae_beside_unet(model):
            for i, path in enumerate(paths):
                caption = path.with_suffix(".txt").read_text().strip()
                prompt = "" if design == "reg-empty" else f"a photo of an object, {caption}"
                draw(model, prompt, 1, one, 90_000 + 31 * i + 1000 * seed)[0].save(folder / f"reg{i:02d}.png")
                (folder / f"reg{i:02d}.txt").write_text(REG + prompt + "\n")
    return folder


def rates(model, judge, concept, rc, word, lora=None) -> dict[str, float]:
    """"a photo of WORD" and the empty prompt, judged as the concept, with `lora` applied (None: the model alone)."""
    from oneword.models.device import vae_beside_unet
    from oneword.toy.report import concept_rate

    with vae_beside_unet(model), (lora_applied(model, lora) if lora is not None else contextlib.nullcontext()):
        return {prompt or "empty": concept_rate(model, judge, concept, prompt, rc, rc.seed)[0]
                for prompt in (f"a photo of {word}", "")}


def visibility(model, word: str, lora=None) -> dict[str, float]:
    """How far the text encoder's output for "a photo of WORD" is from the same prompt without the word and from
    the empty prompt (1 - cosine of the whole sequences): a word the toy never learned barely moves it, so the UNet
    sees almost the same conditioning with and without it; with `lora` applied, whether its text-encoder layers have
    made the word visible."""
    import torch

    encoder = model.encoders[0]

    def out(prompt: str) -> torch.Tensor:
        ids = encoder.tokenizer(prompt, padding="max_length", max_length=encoder.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            return encoder.model(ids).last_hidden_state.flatten()

    with lora_applied(model, lora) if lora is not None else contextlib.nullcontext():
        with_word = out(f"a photo of {word}")
        return {other or "empty": round(1 - torch.nn.functional.cosine_similarity(with_word, out(other), 0).item(), 5)
                for other in ("a photo of", "")}


def trial(args) -> dict:
    from oneword.lora.read import read_lora
    from oneword.toy.bundle import load_toy
    from oneword.toy.concepts import CONCEPTS
    from oneword.toy.report import ReportConfig
    from oneword.train.config import TrainConfig
    from oneword.train.loop import train

    concept = CONCEPTS[args.concept]
    rc = ReportConfig(samples=args.samples, seed=args.sample_seed)
    fields = overrides(args.set)
    if args.design == "kv":
        fields.setdefault("targets", "attn")  # no feed-forward layers: attn2's key and value only
    word = args.trigger or concept.name
    model, judge = load_toy(args.model)
    base = rates(model, judge, concept, rc, word)
    seen = {"base": visibility(model, word)}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_data(concept, args.design, args.seed, Path(tmp) / "data", model)
        config = TrainConfig(name=word, kind="lora", data=data, model=args.model, max_steps=args.steps,
                             save_every=args.every, preview_every=0, log_dir=Path(tmp) / "log",
                             lora_dir=Path(tmp) / "lora", seed=args.seed, **fields)
        start = time.perf_counter()
        with design_in_place(args.design):
            finished = train(config, load_toy(args.model)[0])
        seconds = round(time.perf_counter() - start, 1)
        model, judge = load_toy(args.model)
        files = checkpoint_files(finished)
        per_step = {step: rates(model, judge, concept, rc, word, read_lora(path)) for step, path in files.items()}
        layers = sorted(read_lora(files[max(files)]).layers)
        seen["last"] = visibility(model, word, read_lora(files[max(files)]))
    return {"layers": {"unet": sum(k.startswith("lora_unet_") for k in layers),
                       "text encoder": sum(k.startswith("lora_te") for k in layers)},
            "concept": concept.name, "trigger": word, "seed": args.seed, "design": args.design, "set": args.set,
            "train_seconds": seconds, "base": base, "per_step": per_step, "visibility": seen}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", choices=DESIGNS, default="plain")
    parser.add_argument("--concept", default="star")
    parser.add_argument("--trigger", help="the LoRA's name and trigger word (default: the concept's name)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--samples", type=int, default=64, help="judged samples per prompt and checkpoint")
    parser.add_argument("--sample-seed", type=int, default=5000)
    parser.add_argument("--model", default="toy", help="the toy model: toy (bundled) or a folder")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a TrainConfig change")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    r = trial(args)
    print(json.dumps(r))
    word = f"a photo of {r['trigger']}"
    print(f"\n{args.design} {' '.join(args.set)} ({r['train_seconds']} s, {r['layers']} layers): '{word}' / "
          f"empty prompt, judged as the {r['concept']}; base model {r['base'][word]:.0%} / {r['base']['empty']:.0%}")
    print(" | ".join(f"step {s}: {v[word]:.0%} / {v['empty']:.0%}" for s, v in r["per_step"].items()))
    print("the word's distance from 'a photo of' / the empty prompt in the text encoder's output (1 - cosine): "
          + "; ".join(f"{k} {v['a photo of']:.5f} / {v['empty']:.5f}" for k, v in r["visibility"].items()))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

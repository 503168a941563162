"""Every setting of a training run, filled alike by the command line, a TOML file (`--config`) or a UI."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oneword import kinds
from oneword.errors import OnewordError, gather
from oneword.outputs import folder_problem, name_problem
from oneword.train.schedule import schedule_problem

LATENT_SAMPLING = ("once", "deterministic", "random")
STOPS = ("max", "auto")
CLIP_MODES = ("none", "value", "norm")
SCORERS = ("auto", "none", "features", "clip", "judge")
MAX_SEED = 2**32 - 1
"""Largest training seed: each step seeds PyTorch with seed * 1000003 + step, which must stay under 2**64."""
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", Path: "a path"}


UNSET = {"batch_size": 1}
"""What a field left unset takes when neither the kind nor its settings for the model decide it."""
PREVIEW_EVERY = 500
"""A1111's preview interval, for a run to --max-steps given no --preview-every."""


@dataclass
class TrainConfig:
    """A1111's Train tab, with its names and defaults where it has them."""

    name: str = ""
    """The embedding's name (the prompt word), the hypernetwork's or the LoRA's, the file stem either way: letters,
    digits, `_`, `-` and `.` only, not starting with `-` nor starting or ending with `.`. One that does not exist is
    created (an embedding from --init-text, a hypernetwork with
    create-hypernetwork's defaults, a LoRA that changes nothing yet)."""
    kind: str = "embedding"
    """What is trained: a registered kind, embedding, hypernetwork (`oneword train-hypernetwork`), lora (`oneword
    train-lora`) or pivotal (the word's vectors and a LoRA together, in one LoRA file); it picks the defaults of --learn-rate and --template (A1111's: 0.005 and subject_filewords, 0.00001
    and hypernetwork; a LoRA's as kohya users start: 0.0001 and subject_filewords) and a LoRA's settings."""
    data: Path = Path()
    """Folder of training images, each with an optional `.txt` caption beside it."""
    model: str = "toy"
    """Base model: a diffusers folder, a .safetensors/.ckpt file, `toy` (bundled) or a tiny random model (tiny-sd1,
    tiny-sd2, tiny-sd2-v, tiny-sdxl)."""
    prediction_type: str | None = None
    """What the UNet predicts, epsilon or v_prediction, overriding what the model implies (SD 2.x files whose
    weights cannot tell the 512 px epsilon model from the 768 px v-prediction one). Unset: the model's own."""
    init_text: str = "*"
    """Initialization text when the embedding does not exist yet ('' for zeros)."""
    vectors: int = 1
    """Vectors per token when the embedding does not exist yet (1 to 75)."""
    rank: int | None = None
    """LoRA: the rank of each layer's change (kohya's network_dim). Unset: the kind's."""
    alpha: float | None = None
    """LoRA: each layer's change is scaled by alpha / rank (kohya's network_alpha). Unset: the kind's."""
    targets: str | None = None
    """LoRA: the layers trained: attn (the attention projections), attn-mlp (every layer of the transformer blocks
    and the text encoder's MLP too, kohya's default) or conv (also the ResNet blocks' layers, LoCon). Unset: the kind's."""
    conv_rank: int | None = None
    """LoRA with --targets conv: the rank of the 3x3 convolutions (kohya's conv_dim). Unset: --rank."""
    conv_alpha: float | None = None
    """LoRA with --targets conv: the alpha of the 3x3 convolutions (kohya's conv_alpha). Unset: --alpha."""
    train_text_encoder: bool | None = None
    """LoRA: train layers of the text encoder(s) too, at --text-encoder-lr. Unset: the kind's."""
    text_encoder_lr: str | None = None
    """LoRA: the text encoder's learning rate or schedule, like --learn-rate's. Unset: the kind's."""
    save_precision: str | None = None
    """LoRA: the precision of the written files, fp16 (kohya's default) or fp32. Unset: the kind's."""
    vectors_lr: str | None = None
    """Pivotal: the word's vectors' learning rate or schedule, like --learn-rate's (which the LoRA's UNet layers
    take). Unset: the kind's."""
    ti_frac: float | None = None
    """Pivotal: the share of --max-steps the vectors train for (diffusers' train_text_encoder_ti_frac); after it
    they are held still and the LoRA goes on. Unset: the kind's."""
    learn_rate: str | None = None
    """Learning rate or schedule, e.g. "0.005:100, 1e-3:1000, 1e-5"; training ends when it runs out. Unset:
    the kind's rate."""
    clip_grad: str = "none"
    """Gradient clipping: none, value or norm."""
    clip_grad_value: str = "0.1"
    """Clip value or norm, as a number or a schedule string like the learning rate's."""
    batch_size: int | None = None
    """Images per batch (under `accelerate launch`: the global batch, shared among the processes). Unset: 1, or the
    kind's for the model (a LoRA on the toy model: 8)."""
    grad_accum: int = 1
    """Batches whose gradients are summed before each optimizer step."""
    width: int | None = None
    """Training width in pixels, a multiple of 8; None uses the model's native size (512 for SD 1.x)."""
    height: int | None = None
    """Training height in pixels, a multiple of 8; None uses the model's native size."""
    keep_size: bool = False
    """Do not resize images (sizes rounded down to multiples of 8; batches grouped by size)."""
    max_steps: int = 100000
    """Steps to train (a learning-rate schedule that ends sooner ends the run there)."""
    save_every: int = 500
    """Write a copy of the embedding or hypernetwork every N steps (0: never)."""
    preview_every: int | None = None
    """Draw a preview image every N steps (0: never). Unset: 500; with --stop auto, every checkpoint's interval (the
    smaller of --save-every and --validate-every), so that a run stopping early still has previews."""
    template: str | None = None
    """Prompt template: a shipped name (subject, subject_filewords, style, style_filewords, hypernetwork, none) or a
    file. Unset: the kind's template."""
    shuffle_tags: bool = False
    """Shuffle the comma-separated tags of each caption."""
    tag_dropout: float = 0.0
    """Drop each caption tag with this probability."""
    caption_dropout: float = 0.0
    """Train this share of prompts as the empty prompt (kohya's caption dropout): a hypernetwork acts on the empty
    prompt's prediction too, which classifier-free guidance subtracts, and learns it from the pictures as well.
    Hypernetworks only: an empty prompt holds none of an embedding's vectors."""
    latent_sampling: str = "once"
    """once (one posterior sample, cached), deterministic (posterior mean) or random (new sample each time)."""
    alpha_weight: bool = False
    """Use PNG transparency as a per-pixel loss weight."""
    seed: int = 0
    """Seed of the data order, noise, timesteps and template choices: the same seed gives the same run on a CPU."""
    log_dir: Path = Path("textual_inversion")
    """Runs go to LOG_DIR/YYYY-MM-DD/NAME/."""
    embeddings_dir: Path = Path("embeddings")
    """Where the embedding is read from, created in, and where the final one is written."""
    hypernetwork_dir: Path = Path("hypernetworks")
    """The same for a hypernetwork (one missing there is created with create-hypernetwork's defaults)."""
    lora_dir: Path = Path("lora")
    """The same for a LoRA (A1111's models/Lora); `<lora:NAME:W>` in the preview prompt finds its files there."""
    preview_prompt: str = ""
    """Preview prompt; empty uses the template's first line with the first image's caption."""
    preview_negative: str = ""
    """Negative prompt of the previews."""
    preview_seed: int = 0
    """Seed of every preview (the same noise each time, so previews differ only by the vectors)."""
    preview_steps: int = 20
    """Sampling steps of each preview."""
    preview_cfg: float = 7.0
    """Guidance scale of the previews."""
    preview_sampler: str = "euler_a"
    """Sampler of the previews: euler_a, euler, ddim, dpmpp_2m or dpmpp_2m_karras."""
    csv_every: int = 50
    """Write a loss row (the mean since the last row) every N steps."""
    validate_every: int = 50
    """Measure the loss on a fixed validation batch every N steps (0: never); it goes in the CSV's `val_loss`."""
    validation_size: int = 64
    """Samples in the validation batch (the images in turn, timesteps spread over the whole range); 8 samples track
    judged quality far worse than 64 on the toy world (docs/benchmarks.md)."""
    stop: str = "max"
    """max: train to --max-steps (or the schedule's end); auto: stop once the stop signal has plateaued."""
    stop_signal: str = "auto"
    """What --stop auto watches and what picks the best checkpoint: val_loss, a score's name, or auto (the first
    scorer's score if there is one, else val_loss)."""
    stop_patience: int = 3
    """--stop auto: measurements in a row without an improvement before the run stops."""
    stop_min_delta: float = 0.01
    """--stop auto: the smallest relative improvement (of the signal over its best; a score is smoothed first) that
    counts."""
    score: str = "auto"
    """Checkpoint scorer: auto (clip with --clip, else none), none, features, clip, or judge:CONCEPT (toy models)."""
    clip: Path | None = None
    """A local CLIP model folder (transformers or open_clip layout) for the clip scorer (--score auto uses it)."""
    score_samples: int = 8
    """Samples drawn per checkpoint by a scorer."""
    gradient_checkpointing: bool = False
    """Recompute UNet activations in the backward pass: less memory, about a third more time."""
    half_precision: bool = True
    """Frozen weights in bf16 (fp16 where bf16 is missing) on GPUs; off: float32. The CPU always uses float32."""
    channels_last: bool = True
    """The UNet in channels-last memory layout, which convolutions run faster in (oneDNN on CPUs, tensor cores on
    GPUs)."""
    flash_attention: bool = True
    """Scaled-dot-product attention (PyTorch's flash and memory-efficient kernels); off: the classic attention that
    materialises the attention matrix."""
    compile: bool = False
    """torch.compile the UNet, meant for long GPU runs (not yet measured there); the first step waits for the
    compilation (minutes). On a CPU the toy model compiles for about 6 minutes and then runs no faster."""
    fused_optimizer: bool = True
    """AdamW's fused kernel on the trainable tensors (CUDA and CPU) instead of one operation per tensor."""
    cache_conditioning: bool = True
    """Hypernetworks: each prompt's text conditioning is computed once and reused (it has no gradient)."""
    resume: bool = False
    """Continue an embedding that has steps, with the optimizer state saved beside it."""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    """Settings a caller records in the settings JSON without oneword reading them."""

    def __post_init__(self) -> None:
        # the kind's defaults (oneword.kinds) wherever a config is built; an unknown kind is reported by problems()
        known = self.kind if isinstance(self.kind, str) and self.kind in kinds.names() else kinds.names()[0]
        kind = kinds.get(known)
        for_model = getattr(kind, "model_defaults", {}).get(self.model, {}) if isinstance(self.model, str) else {}
        for name, value in {**UNSET, **kind.defaults, **for_model}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.preview_every is None:
            self.preview_every = self._preview_interval()

    def _preview_interval(self) -> int:
        """--preview-every left unset: under --stop auto the checkpoints' interval (a checkpoint is kept at every
        --save-every step and every validation), else A1111's 500."""
        if self.stop != "auto":
            return PREVIEW_EVERY
        every = [n for n in (self.save_every, self.validate_every) if type(n) is int and n > 0]  # bad types: problems()
        return min(every, default=PREVIEW_EVERY)

    def problems(self) -> list[str]:
        """Everything wrong with the settings, each naming its option."""
        wrong_types = [f"{option_name(name)} must be {why}" for name, why in type_problems(vars(self)).items()]
        if wrong_types:
            return wrong_types  # the checks below compare numbers and read text
        problems = []
        problems += [p for p in (name_problem("NAME", self.name),) if p]
        for option, value, low in (
            ("--batch-size", self.batch_size, 1), ("--grad-accum", self.grad_accum, 1),
            ("--max-steps", self.max_steps, 1), ("--save-every", self.save_every, 0),
            ("--preview-every", self.preview_every, 0), ("--csv-every", self.csv_every, 1),
            ("--preview-steps", self.preview_steps, 1), ("--validate-every", self.validate_every, 0),
            ("--validation-size", self.validation_size, 1), ("--stop-patience", self.stop_patience, 1),
            ("--score-samples", self.score_samples, 1),
        ):
            if value < low:
                problems.append(f"{option} must be at least {low}, but is {value}")
        for option, value in (("--width", self.width), ("--height", self.height)):
            if value is not None and (value < 8 or value % 8):
                problems.append(f"{option} must be a positive multiple of 8, but is {value}")
        if not 0.0 <= self.tag_dropout < 1.0:
            problems.append(f"--tag-dropout must be in [0, 1), but is {self.tag_dropout}")
        if not 0.0 <= self.caption_dropout < 1.0:
            problems.append(f"--caption-dropout must be in [0, 1), but is {self.caption_dropout}")
        if self.kind in kinds.names():
            problems += kinds.get(self.kind).problems(self) + self._options_of_other_kinds()
        else:
            problems.append(f"kind must be one of {', '.join(kinds.names())}, not {self.kind!r}")
        problems += self._prediction_problems()
        if self.latent_sampling not in LATENT_SAMPLING:
            problems.append(f"--latent-sampling must be one of {', '.join(LATENT_SAMPLING)}, not {self.latent_sampling!r}")
        if self.clip_grad not in CLIP_MODES:
            problems.append(f"--clip-grad must be one of {', '.join(CLIP_MODES)}, not {self.clip_grad!r}")
        if self.stop not in STOPS:
            problems.append(f"--stop must be one of {', '.join(STOPS)}, not {self.stop!r}")
        if self.stop_min_delta < 0:
            problems.append(f"--stop-min-delta must not be negative, but is {self.stop_min_delta}")
        problems += self._scoring_problems()
        for option, seed in (("--seed", self.seed), ("--preview-seed", self.preview_seed)):
            if not 0 <= seed <= MAX_SEED:
                problems.append(f"{option} must be between 0 and {MAX_SEED}, but is {seed}")
        problems += self._folder_problems()
        for option, text in (("--learn-rate", self.learn_rate), ("--clip-grad-value", self.clip_grad_value)):
            if option == "--clip-grad-value" and self.clip_grad == "none":
                continue
            problems += [p for p in (schedule_problem(text, self.max_steps, option),) if p]
        return problems

    def _options_of_other_kinds(self) -> list[str]:
        """A setting only another kind reads, given for this one (a kind's `options`)."""
        own = set(getattr(kinds.get(self.kind), "options", ()))
        first: dict[str, str] = {}  # an option several kinds read (pivotal shares the LoRA's) names the first
        for other in kinds.names():
            for name in getattr(kinds.get(other), "options", ()):
                first.setdefault(name, other)
        return [f"{option_name(name)} is for --kind {other}" for name, other in first.items()
                if name not in own and getattr(self, name) is not None]

    def _prediction_problems(self) -> list[str]:
        from oneword.models.load import PREDICTION_TYPES

        if self.prediction_type is None or self.prediction_type in PREDICTION_TYPES:
            return []
        return [f"--prediction-type must be one of {', '.join(PREDICTION_TYPES)}, not {self.prediction_type!r}"]

    def _scoring_problems(self) -> list[str]:
        problems = []
        kind = self.score.split(":", 1)[0]
        if kind not in SCORERS:
            problems.append(f"--score must be one of {', '.join(SCORERS)} (judge as judge:CONCEPT), not {self.score!r}")
        if kind == "clip" and self.clip is None:
            problems.append("--score clip needs --clip PATH, a local CLIP model folder")
        if kind == "judge" and ":" not in self.score:
            problems.append("--score judge needs the toy concept, e.g. judge:star")
        if self.clip is not None and not Path(self.clip).is_dir():
            problems.append(f"--clip {self.clip}: no such folder")
        if self.stop == "auto" and self.stop_signal == "val_loss" and not self.validate_every:
            problems.append("--stop auto on val_loss needs --validate-every above 0")
        if self.stop == "auto" and self.stop_signal not in ("auto", "val_loss") and not self.save_every:
            problems.append(f"--stop auto on {self.stop_signal} needs --save-every above 0 (scores are measured there)")
        return problems

    def _folder_problems(self) -> list[str]:
        # found before training starts, not at the first save
        trained = [kinds.get(self.kind).trained_dir(self)] if self.kind in kinds.names() else []
        return [p for p in (folder_problem("--log-dir", self.log_dir), *(folder_problem(*t) for t in trained)) if p]

    def check(self) -> None:
        """Raise one OnewordError listing every problem."""
        gather(self.problems())

    def settings(self) -> dict[str, Any]:
        """The settings as JSON-ready values (paths as strings)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


def option_name(field_name: str) -> str:
    """The command-line spelling of a TrainConfig field: `max_steps` -> `--max-steps`, `name` -> `NAME`."""
    return "NAME" if field_name == "name" else "--" + field_name.replace("_", "-")


def type_problems(values: dict[str, Any]) -> dict[str, str]:
    """Field name -> what its value should be, for the values of `values` that do not fit TrainConfig's types."""
    hints = typing.get_type_hints(TrainConfig)
    problems = {}
    for name, value in values.items():
        if name == "extra" or name not in hints:
            continue
        allowed = [t for t in typing.get_args(hints[name]) or (hints[name],) if t is not type(None)]
        if value is None and len(allowed) < len(typing.get_args(hints[name])):
            continue
        kind = allowed[0]
        fits = {
            bool: isinstance(value, bool),
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
            Path: isinstance(value, (str, os.PathLike)),
        }[kind]
        if not fits:
            problems[name] = f"{_TYPE_WORDS[kind]}, not {value!r}"
    return problems


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file: keys are TrainConfig's field names (dashes allowed), at the top or in a [train]
    table; unknown keys or tables and values of the wrong type are errors naming them."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise OnewordError(f"--config {path}: no such file") from error
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise OnewordError(f"--config {path}: not a readable TOML file ({error})") from error
    problems = []
    if isinstance(data.get("train"), dict):
        problems += [f"unknown table [{key}]" if isinstance(value, dict) else f"setting {key!r} outside the [train] "
                     "table" for key, value in data.items() if key != "train"]
        data = data["train"]
    names = {f.name for f in dataclasses.fields(TrainConfig) if f.name != "extra"}
    settings = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in names:
            problems.append(f"unknown table [{key}]" if isinstance(value, dict) else f"unknown setting {key!r}")
        else:
            settings[name] = value
    problems += [f"{key} must be {why}" for key, why in type_problems(settings).items()]
    if problems:
        raise OnewordError(f"--config {path}: " + "; ".join(problems))
    hints = typing.get_type_hints(TrainConfig)
    return {name: Path(value) if Path in typing.get_args(hints[name]) + (hints[name],) else value
            for name, value in settings.items()}

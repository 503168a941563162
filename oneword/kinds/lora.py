"""The LoRA kind: kohya's LoRA (and LoCon with `--targets conv`), low-rank changes of the UNet's and the text
encoders' layers, trained through forward hooks and written as kohya writes them (`lora/` in the log folder,
`lora_loss.csv`, the final `LORA_DIR/NAME.safetensors`)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from oneword.errors import OnewordError, gather
from oneword.models.bundled import TOY_NAME
from oneword.train.schedule import schedule_problem

if TYPE_CHECKING:  # the rest is imported where it is used: the command line reads this kind without torch
    import torch

    from oneword.lora.names import Place
    from oneword.lora.network import Lora, LoraLayer
    from oneword.lora.trainable import LoraTrainable
    from oneword.models.base import BaseModel
    from oneword.train.config import TrainConfig

DOWN, UP = ".lora_down.weight", ".lora_up.weight"


def expected_shapes(place: Place, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The down and up shapes a layer of `rank` has on `place` (kohya's layout)."""
    import torch

    module = place.module
    if isinstance(module, torch.nn.Conv2d):
        return (rank, module.in_channels, *module.kernel_size), (module.out_channels, rank, 1, 1)
    return (rank, module.in_features), (module.out_features, rank)


def fit_problems(lora: Lora, where: dict[str, Place]) -> list[str]:
    """The layers of `lora` that name no layer of the model or have other shapes than it needs."""
    from oneword.lora.network import LoraLayer

    problems = []
    for key, layer in lora.layers.items():
        if type(layer) is not LoraLayer:  # a LyCORIS layer, or one a reader could not use (with its reason)
            problems.append(f"{key}: {getattr(layer, 'reason', None) or f'a {type(layer).__name__}'}, not a "
                            "LoRA/LoCon layer training can continue")
            continue
        if key not in where:
            problems.append(f"{key} is no layer of the model")
            continue
        down, up = expected_shapes(where[key], layer.rank)
        if tuple(layer.down.shape) != down or tuple(layer.up.shape) != up:
            problems.append(f"{key} has down {list(layer.down.shape)} and up {list(layer.up.shape)}, the model's "
                            f"layer needs {list(down)} and {list(up)}")
    return problems


def layer_width(place: Place) -> int:
    """The largest rank a change of this layer can have: its narrower side (a 3x3 convolution's input counts each
    of its 9 taps)."""
    down, up = expected_shapes(place, 1)
    return min(math.prod(down[1:]), up[0])


def rank_problems(config: TrainConfig, found: dict[str, Place]) -> list[str]:
    """--rank (--conv-rank for the 3x3 convolutions) above the width of the narrowest layer it applies to: a change
    of rank r to a layer of that width has rank at most the width, so the rest only costs memory."""
    narrowest: dict[str, tuple[int, int, str]] = {}
    for key, place in found.items():
        option, rank = ("--conv-rank", config.conv_rank) if place.is_3x3 and config.conv_rank else ("--rank",
                                                                                                  config.rank)
        width = layer_width(place)
        if option not in narrowest or width < narrowest[option][1]:
            narrowest[option] = (rank, width, key)
    return [f"{option} {rank}: above the width of the narrowest layer it trains ({width}, {key}): give at most "
            f"{width}" for option, (rank, width, key) in narrowest.items() if rank > width]


def _is_3x3(layer: LoraLayer) -> bool:
    return layer.down.dim() == 4 and tuple(layer.down.shape[2:]) != (1, 1)


def _word_options(config: TrainConfig, kind: str) -> list[str]:
    """--vectors and --init-text given (not their defaults) for a kind that adds no word's vectors."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    return [f"{option} {getattr(config, field)!r}: a {kind} adds no word's vectors (--vectors and --init-text are "
            "for --kind embedding or pivotal)"
            for field, option in (("vectors", "--vectors"), ("init_text", "--init-text"))
            if getattr(config, field) != defaults[field]]


def tag_frequency(folder: Path) -> dict[str, dict[str, int]]:
    """kohya's `ss_tag_frequency`: how often each comma-separated tag occurs in the captions, by folder name (A1111's
    LoRA page lists a file's training tags from it); {} when the folder has no images (refused elsewhere)."""
    from oneword.prep.images import source_files
    from oneword.train.dataset import IMAGE_SUFFIXES, caption_of

    folder = Path(folder)
    if not folder.is_dir():
        return {}
    counts: dict[str, int] = {}
    for path in source_files(folder, IMAGE_SUFFIXES):
        for tag in (t.strip() for t in caption_of(path).split(",")):
            if tag:
                counts[tag] = counts.get(tag, 0) + 1
    return {folder.name: counts} if counts else {}


class LoraKind:
    """kohya's LoRA, with the settings users start from: `defaults` is the one place they are decided."""

    name = "lora"
    defaults: ClassVar[dict[str, Any]] = {
        "learn_rate": "0.0001", "template": "subject_filewords", "rank": 16, "alpha": 8.0, "targets": "attn-mlp",
        "train_text_encoder": True, "text_encoder_lr": "0.00005", "save_precision": "fp16",
    }
    model_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        TOY_NAME: {"learn_rate": "0.003", "text_encoder_lr": "0.003", "batch_size": 8},
    }
    """On the toy model (layers 32-64 wide where SD's are 320-1,280) kohya's rates hardly move a LoRA in 1,000 steps
    (the outline style 13-14%); 30 times the rates at 8 times the batch draw it 83-90% of the time after 500 steps,
    and an object 66-97% after 300 (docs/benchmarks.md)."""
    options = ("rank", "alpha", "targets", "conv_rank", "conv_alpha", "train_text_encoder", "text_encoder_lr",
               "save_precision")
    """The settings only a LoRA reads: given for another kind they are refused."""
    folder = "lora"
    csv_name = "lora_loss.csv"
    preview_label = "LoRA step"
    hidden_in_previews = False
    command = "train-lora"
    command_help = "Train a LoRA (`train --kind lora`): writes LOG_DIR/YYYY-MM-DD/NAME/ and LORA_DIR/NAME.safetensors."

    def problems(self, config: TrainConfig) -> list[str]:
        """The LoRA's settings (`settings_problems`), and no --vectors or --init-text: a LoRA adds no word."""
        return self.settings_problems(config) + _word_options(config, self.name)

    def settings_problems(self, config: TrainConfig) -> list[str]:
        """Ranks at least 1, finite alphas above 0, a known --targets, conv settings only with conv, the rates'
        schedules, no --text-encoder-lr of its own without the text encoder."""
        from oneword.lora.names import TARGETS
        from oneword.lora.trainable import PRECISIONS

        problems = []
        for option, value in (("--rank", config.rank), ("--conv-rank", config.conv_rank)):
            if value is not None and value < 1:
                problems.append(f"{option} must be at least 1, but is {value}")
        for option, value in (("--alpha", config.alpha), ("--conv-alpha", config.conv_alpha)):
            if value is not None and not value > 0:
                problems.append(f"{option} must be above 0, but is {value}")
            elif value is not None and not math.isfinite(value):  # every step's change would be infinite: NaN
                problems.append(f"{option} must be a finite number above 0, but is {value}")
        if config.targets not in TARGETS:
            problems.append(f"--targets must be one of {', '.join(TARGETS)}, not {config.targets!r}")
        elif config.targets != "conv":
            problems += [f"{option} is for --targets conv (the 3x3 convolutions)" for option, value in
                         (("--conv-rank", config.conv_rank), ("--conv-alpha", config.conv_alpha)) if value is not None]
        if config.save_precision not in PRECISIONS:
            problems.append(f"--save-precision must be one of {', '.join(PRECISIONS)}, not {config.save_precision!r}")
        if config.train_text_encoder and isinstance(config.text_encoder_lr, str):
            problems += [p for p in (schedule_problem(config.text_encoder_lr, config.max_steps, "--text-encoder-lr"),)
                         if p]
        elif not config.train_text_encoder and config.text_encoder_lr not in self._defaults("text_encoder_lr"):
            problems.append(f"--text-encoder-lr {config.text_encoder_lr}: the text encoder is not trained "
                            "(--no-train-text-encoder)")
        return problems

    def _defaults(self, field: str) -> list[Any]:
        """What `field` is when not given, on any model: a value other than these was given (a form shows a
        default, which may be another model's when the model was changed after)."""
        return [self.defaults.get(field), *(d[field] for d in self.model_defaults.values() if field in d)]

    def continuing_problems(self, config: TrainConfig, snapshot: Lora, path: Path) -> list[str]:
        """A --rank given (not the default) other than that of the file training continues, which keeps its own."""
        ranks = sorted({layer.rank for layer in snapshot.layers.values() if not _is_3x3(layer)})
        if config.rank in self._defaults("rank") or not ranks or ranks == [config.rank]:
            return []
        shown = ", ".join(map(str, ranks))
        return [f"--rank {config.rank}: {path} has rank {shown}, and training continues it with its own: leave "
                "--rank out, or choose another NAME for a new LoRA"]

    def trained_dir(self, config: TrainConfig) -> tuple[str, Path]:
        return "--lora-dir", Path(config.lora_dir)

    def suffix(self, model: BaseModel) -> str:
        return ".safetensors"

    def create(self, config: TrainConfig, model: BaseModel, name: str) -> Lora:
        """A LoRA that changes nothing yet on --targets' layers (the text encoders' with --train-text-encoder),
        seeded by --seed; its trigger is NAME when the template's prompts hold `[name]`."""
        import torch

        from oneword.lora.names import places
        from oneword.lora.network import Lora
        from oneword.lora.trainable import new_layer
        from oneword.train.templates import read_template

        generator = torch.Generator().manual_seed(config.seed)
        found = places(model, config.targets, text_encoder=config.train_text_encoder)
        gather(rank_problems(config, found))  # before any layer is made: a huge rank would fill the memory
        layers: dict[str, LoraLayer] = {}
        for key, place in found.items():
            if place.is_3x3:
                rank = config.conv_rank or config.rank
                alpha = config.conv_alpha if config.conv_alpha is not None else config.alpha
            else:
                rank, alpha = config.rank, config.alpha
            layers[key] = new_layer(place, rank, alpha, generator)
        trigger = name if any("[name]" in line for line in read_template(config.template)) else None
        return Lora(name, layers, step=0, trigger=trigger)

    def read(self, path: Path, model: BaseModel) -> Lora:
        """A kohya LoRA/LoCon file that fits `model` (`read_fitting`) and bundles no word: training it as a LoRA would
        write it again without the word (a pivotal run's file continues with --kind pivotal)."""
        lora = self.read_fitting(path, model)
        if lora.embeddings:
            words = ", ".join(lora.embeddings)
            raise OnewordError(f"{path}: bundles the word {words} (a pivotal run's file), which a lora run would "
                               "drop: continue it with --kind pivotal, or choose another NAME")
        return lora

    def read_fitting(self, path: Path, model: BaseModel) -> Lora:
        """A kohya LoRA/LoCon file whose every layer is a layer of `model`, of the shapes it needs."""
        from oneword.lora.names import places
        from oneword.lora.read import read_lora

        lora, where = read_lora(path), places(model)
        problems = fit_problems(lora, where) if lora.layers else ["it holds no LoRA layer"]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise OnewordError(f"{path}: does not fit {model.name}: {problems[0]}{more}")
        # in the model's module order, as a new LoRA's: the optimizer state of a run pairs its tensors by position
        return dataclasses.replace(lora, layers={key: lora.layers[key] for key in where if key in lora.layers})

    def trainable(self, snapshot: Lora, config: TrainConfig, device: torch.device) -> LoraTrainable:
        from oneword.lora.trainable import PRECISIONS, LoraSettings, LoraTrainable

        settings = LoraSettings(config.learn_rate, config.text_encoder_lr, bool(config.train_text_encoder),
                                PRECISIONS[config.save_precision], config.cache_conditioning,
                                tag_frequency(config.data))
        return LoraTrainable(snapshot, device, settings)

    def state_hash(self, snapshot: Lora) -> str:
        from oneword.lora.trainable import lora_hash

        return lora_hash(snapshot)

    def with_exact_weights(self, snapshot: Lora, weights: dict[str, torch.Tensor]) -> Lora:
        """The snapshot with the float32 down and up tensors of its run's optimizer state, where they fit."""
        from oneword.lora.network import LoraLayer

        layers = {}
        for key, layer in snapshot.layers.items():
            down, up = weights.get(key + DOWN), weights.get(key + UP)
            fits = down is not None and up is not None and down.shape == layer.down.shape and up.shape == layer.up.shape
            layers[key] = LoraLayer(down.float(), up.float(), layer.alpha) if fits else layer
        return dataclasses.replace(snapshot, layers=layers)


LORA = LoraKind()

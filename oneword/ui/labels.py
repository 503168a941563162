"""What the web UI calls a form field: its human label (one table for every tab), the command line's spelling that
its help names, and the UI's wording of messages that tell a command-line user which option to pass."""

from __future__ import annotations

import re

LABELS = {
    # what to train
    "name": "Name", "kind": "Kind", "data": "Dataset folder", "model": "Model",
    "prediction_type": "Prediction type", "init_text": "Initialization text", "vectors": "Vectors per token",
    "resume": "Resume",
    # optimizer
    "learn_rate": "Learning rate", "clip_grad": "Gradient clipping", "clip_grad_value": "Clipping value",
    "batch_size": "Batch size", "grad_accum": "Gradient accumulation steps", "seed": "Seed",
    # images and captions
    "width": "Width", "height": "Height", "keep_size": "Do not resize images", "template": "Prompt template",
    "shuffle_tags": "Shuffle tags", "tag_dropout": "Tag dropout", "caption_dropout": "Caption dropout",
    "latent_sampling": "Latent sampling", "alpha_weight": "PNG alpha as loss weight",
    # LoRA and pivotal tuning
    "rank": "LoRA rank", "alpha": "LoRA alpha", "targets": "LoRA targets", "conv_rank": "Convolution rank",
    "conv_alpha": "Convolution alpha", "train_text_encoder": "Train the text encoder",
    "text_encoder_lr": "Text encoder learning rate", "save_precision": "Save precision",
    "vectors_lr": "Vectors' learning rate", "ti_frac": "Vectors' share of the steps",
    # steps and files
    "max_steps": "Max steps", "save_every": "Save every (steps)", "preview_every": "Preview every (steps)",
    "csv_every": "Loss row every (steps)", "log_dir": "Log folder", "embeddings_dir": "Embeddings folder",
    "hypernetwork_dir": "Hypernetworks folder", "lora_dir": "LoRA folder",
    # previews
    "preview_prompt": "Preview prompt", "preview_negative": "Preview negative prompt", "preview_seed": "Preview seed",
    "preview_steps": "Preview sampling steps", "preview_cfg": "Preview CFG scale", "preview_sampler": "Preview sampler",
    # validation, scores and stopping
    "validate_every": "Validate every (steps)", "validation_size": "Validation samples", "stop": "When to stop",
    "stop_signal": "Stop signal", "stop_patience": "Stop patience (measurements)",
    "stop_min_delta": "Least improvement", "score": "Checkpoint score", "clip": "CLIP model folder",
    "score_samples": "Samples per score",
    # speed and memory
    "half_precision": "Half precision", "channels_last": "Channels-last layout",
    "flash_attention": "Flash attention", "fused_optimizer": "Fused optimizer", "compile": "Compile the UNet",
    "cache_conditioning": "Cache text conditioning", "gradient_checkpointing": "Gradient checkpointing",
    "device": "Device",
    # preprocess and check
    "src": "Source folder", "dst": "Destination folder", "crop": "Crop", "flip": "Create flipped copies",
    "split": "Split oversized pictures", "split_threshold": "Split threshold", "overlap": "Split overlap",
    "caption_action": "Existing captions", "focal_debug": "Focal debug pictures", "overwrite": "Overwrite",
    "workers": "Workers", "focal_face": "Focal: face weight", "focal_entropy": "Focal: detail weight",
    "focal_edges": "Focal: corners weight", "tagger": "Tagger folder", "general_threshold": "Tagger: general threshold",
    "character_threshold": "Tagger: character threshold", "exclude_tags": "Tagger: tags never written",
    # generate and compare
    "prompt": "Prompt", "negative": "Negative prompt", "steps": "Sampling steps", "cfg": "CFG scale",
    "sampler": "Sampler", "batch": "Images", "out": "Output folder", "word": "Word",
    # create
    "format": "File format", "modules": "Modules", "layer_structure": "Layer structure",
    "activation": "Activation function", "weight_init": "Weight initialization", "layer_norm": "Layer normalization",
    "use_dropout": "Use dropout", "dropout_structure": "Dropout structure",
}
"""Every form field's label, by config field name: the same field reads the same on every tab."""
ARGUMENTS = {"name": "NAME", "src": "SRC", "dst": "DST"}
"""Fields the command line takes as positional arguments, not options."""
SWITCH_VERBS = ("pass", "use")
"""How a message tells a command-line user to turn a switch on (`pass --overwrite`): on the form, "tick" it (the
library says "pass" or "use" only of a switch; a value is "set" or "given")."""
_FLAG = re.compile(r"(?<![\w-])--(?P<flag>[a-z][a-z0-9-]*)")
_SUBJECT_BEFORE = ("; ", ": ", "- ", "** ")
"""What precedes a flag that a message is about ("--max-steps must be..."), which stays as the help names it."""


def label(name: str) -> str:
    """The label of the field `name`: the table's, else its words."""
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def flag(name: str) -> str:
    """How the command line spells the field `name`: `learn_rate` -> `--learn-rate`, `src` -> `SRC`."""
    return ARGUMENTS.get(name) or "--" + name.replace("_", "-")


def for_form(text: str) -> str:
    """A message as the form says it: an option the message tells the user to give is named by its control (`pass
    --overwrite` -> `tick Overwrite`, `set --validate-every` -> `set Validate every (steps)`); an option it is about
    ("--max-steps must be...") keeps its command-line spelling, which each field's help names."""
    def known(match: re.Match, wording: str) -> str:
        name = match.group("flag").replace("-", "_")
        return wording.format(label(name)) if name in LABELS else match.group(0)

    def mentioned(match: re.Match) -> str:
        before = text[:match.start()]
        if not before.strip() or any(before.endswith(s) for s in _SUBJECT_BEFORE):
            return match.group(0)
        valued = re.match(r" [\w.:-]+\)", text[match.end():])  # "(--stop auto)": the control and its value
        return known(match, "{}:" if valued else "{}")

    verbs = "|".join(SWITCH_VERBS)
    text = re.sub(rf"\b(?:{verbs}) {_FLAG.pattern}", lambda m: known(m, "tick {}"), text)
    text = re.sub(rf"\bcontinue with {_FLAG.pattern}", lambda m: known(m, "continue with {} ticked"), text)
    return _FLAG.sub(mentioned, text)

"""`load_base`: one entry point for every base model a user can point oneword at."""

from __future__ import annotations

from pathlib import Path

from oneword.errors import OnewordError
from oneword.models.base import BaseModel
from oneword.models.bundled import TOY_NAME, bundled_toy_path
from oneword.offline import go_offline
from oneword.timing import timed

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
PREDICTION_TYPES = ("epsilon", "v_prediction")


def load_base(path: str | Path, prediction_type: str | None = None) -> BaseModel:
    """Load a base model from a diffusers folder, a single checkpoint file, or a built-in name (`toy`, `tiny-sd1`, ...).

    `prediction_type` overrides what the file implies (`epsilon` or `v_prediction`), for SD 2.x files whose
    keys cannot tell the 512 epsilon model from the 768 v-prediction one.
    """
    with timed("model load"):
        return _load(path, prediction_type)


def _load(path: str | Path, prediction_type: str | None) -> BaseModel:
    go_offline()
    if prediction_type is not None and prediction_type not in PREDICTION_TYPES:
        raise OnewordError(
            f"--prediction-type: {prediction_type!r} is not one of {', '.join(PREDICTION_TYPES)}"
        )
    from oneword.models.tiny import TINY_NAMES, build_tiny

    if str(path) in TINY_NAMES:
        model = build_tiny(TINY_NAMES[str(path)])
        if prediction_type:
            model.scheduler_config["prediction_type"] = prediction_type
        return model
    if str(path) == TOY_NAME:
        path = bundled_toy_path()
        if not (path / "model_index.json").is_file():
            raise OnewordError("--model toy: the bundled toy model is missing from this installation")
    path = Path(path)
    if not path.exists():
        raise OnewordError(f"--model {path}: no such file or folder")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise OnewordError(f"--model {path}: a folder must be a diffusers model with model_index.json")
        from oneword.models.folder import load_diffusers_folder

        return load_diffusers_folder(path, prediction_type)
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise OnewordError(
            f"--model {path}: not a model file (expected {', '.join(SINGLE_FILE_SUFFIXES)} or a diffusers folder)"
        )
    from oneword.models.single_file import load_single_file

    return load_single_file(path, prediction_type)

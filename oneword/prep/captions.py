"""Captions for prepared pictures: the file name, an existing `.txt`, or a WD14-style tagger run with onnxruntime."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from oneword.errors import OnewordError
from oneword.train.templates import caption_from_name

CAPTION_ACTIONS = ("ignore", "copy", "prepend", "append")
"""What to do with a `.txt` that a source picture already has (A1111's names): ignore it, copy it instead of the
new caption, put it before the new caption, or after it."""
GENERAL, CHARACTER = 0, 4
"""Tag categories of `selected_tags.csv` (9 is the rating, never written)."""


def existing_caption(path: Path) -> str | None:
    """The text of `path`'s `.txt` sidecar, stripped, or None when there is none."""
    sidecar = path.with_suffix(".txt")
    return sidecar.read_text(encoding="utf-8", errors="replace").strip() if sidecar.is_file() else None


def combine(action: str, existing: str | None, new: str) -> str:
    """The caption to write: `new` combined with an existing caption as `action` says."""
    if not existing or action == "ignore":
        return new
    if action == "copy":
        return existing
    parts = [existing, new] if action == "prepend" else [new, existing]
    return ", ".join(p for p in parts if p)


@dataclass
class TaggerSettings:
    """A WD14-style tagger: a folder with `model.onnx` and `selected_tags.csv`."""

    folder: Path
    """WD14-style tagger folder (model.onnx + selected_tags.csv)."""
    general_threshold: float = 0.35
    """Tagger: least confidence of a general tag."""
    character_threshold: float = 0.85
    """Tagger: least confidence of a character tag."""
    exclude: list[str] = field(default_factory=list)
    """Tagger: tags never written, comma-separated on the command line and in the UI (compared without
    underscores, case-insensitive)."""


class Tagger:
    """A WD14-style image tagger: square BGR 0-255 input in NHWC, one probability per tag of the CSV."""

    def __init__(self, settings: TaggerSettings) -> None:
        model, tags = settings.folder / "model.onnx", settings.folder / "selected_tags.csv"
        for needed in (model, tags):
            if not needed.is_file():
                raise OnewordError(f"--tagger {settings.folder}: no {needed.name} in it")
        try:
            import onnxruntime
        except ImportError:
            raise OnewordError("--tagger needs onnxruntime: pip install 'oneword[tagger]'") from None
        self.settings = settings
        with tags.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if not rows or not {"name", "category"} <= set(rows[0]):
            raise OnewordError(f"--tagger {tags}: expected the columns name and category")
        self.names = [row["name"] for row in rows]
        self.categories = [int(row["category"]) for row in rows]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one process per core runs its own session
        try:
            self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001  (onnxruntime raises its own types for a bad file)
            raise OnewordError(f"--tagger {model}: not a usable ONNX model ({error})") from None
        shape = self.session.get_inputs()[0].shape  # (batch, height, width, 3)
        self.size = int(shape[1]) if isinstance(shape[1], int) else 448
        outputs = self.session.get_outputs()[0].shape
        if isinstance(outputs[-1], int) and outputs[-1] != len(self.names):
            raise OnewordError(f"--tagger {settings.folder}: the model has {outputs[-1]} outputs but "
                               f"selected_tags.csv lists {len(self.names)} tags")
        self.excluded = {t.replace("_", " ").strip().lower() for t in settings.exclude}

    def probabilities(self, image: Image.Image) -> np.ndarray:
        """One probability per tag."""
        rgb = image.convert("RGBA")
        side = max(rgb.size)
        square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        square.alpha_composite(rgb, ((side - rgb.width) // 2, (side - rgb.height) // 2))
        pixels = np.asarray(square.convert("RGB").resize((self.size, self.size), Image.Resampling.BICUBIC),
                            dtype=np.float32)[:, :, ::-1]  # BGR, as the WD14 models were trained
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: np.ascontiguousarray(pixels[None])})[0][0]

    def tags(self, image: Image.Image) -> list[str]:
        """Character tags over their threshold, then general ones, each by confidence; underscores become spaces."""
        probs = self.probabilities(image)
        chosen = []
        for category, threshold in ((CHARACTER, self.settings.character_threshold),
                                    (GENERAL, self.settings.general_threshold)):
            found = [(p, self.names[i]) for i, p in enumerate(probs)
                     if self.categories[i] == category and p >= threshold]
            chosen += [name for _, name in sorted(found, key=lambda t: -t[0])]
        words = [n.replace("_", " ") if len(n) > 3 else n for n in chosen]  # keep kaomoji like ^_^
        return [w for w in words if w.lower() not in self.excluded]

    def caption(self, image: Image.Image) -> str:
        return ", ".join(self.tags(image))


def name_caption(path: Path) -> str:
    """The caption a file name gives (A1111's rule: the stem without a leading `digits-` index)."""
    return caption_from_name(path)

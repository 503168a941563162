"""Generate's tab while it draws and after: a progress line per denoising step, the note for a prompt word that
looks like a missing embedding, and the embeddings used in the infotext."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace
from oneword.ui.tabs import generate


def _values(specs, **changes) -> list:
    """The form's values as a fresh page sends them, with `changes`."""
    out = []
    for spec in specs:
        value = changes.get(spec.name, spec.default)
        out.append("" if value is None else value.as_posix() if isinstance(value, Path) else value)
    return out


def test_generate_tells_each_step_notes_a_near_miss_and_lists_the_embedding_used(tmp_path):
    space = Workspace.at(tmp_path)
    embedding = space.root / "embeddings" / "zqstar.pt"
    save_embedding(Embedding("zqstar", {"*": torch.full((1, 64), 0.01)}), embedding)
    for day in ("2026-01-01", "2026-01-02"):  # a run whose NAME.pt is not in the embeddings folder
        save_embedding(Embedding("zqmoon-5", {"*": torch.zeros(1, 64)}),
                       space.root / "textual_inversion" / day / "zqmoon" / "embeddings" / "zqmoon-5.pt")
    told = []
    specs = generate.generate_specs()
    values = _values(specs, prompt="a zqstar beside a zqstr", negative="zqmoon", model="tiny-sd1", steps=3, batch=2, seed=5,
                     width=64, height=64)
    note, images, parameters = generate.generate(space, ModelCache(), specs, values,
                                                  lambda fraction, desc, unit: told.append((fraction, desc, unit)))
    assert len(images) == 2
    assert told == [((k, 3), f"drawing 2 images, step {k}/3", "steps") for k in (1, 2, 3)]
    assert note == ("note: the prompt's word 'zqstr' is no embedding; did you mean 'zqstar'?\n\n"
                    "note: the prompt's word 'zqmoon' names the training run textual_inversion/2026-01-02/zqmoon, "
                    "but no embedding of that name is in the embeddings folder\n\n"
                    "wrote outputs/txt2img/00000-5.png, outputs/txt2img/00001-6.png")
    short = hashlib.sha256(embedding.read_bytes()).hexdigest()[:12]
    assert parameters.count(f'TI hashes: "zqstar: {short}"') == 2


def test_one_image_is_told_as_one():
    from oneword.generate.progress import Drawing

    assert generate.drawing_line(Drawing(1, 12, 20)) == "drawing 1 image, step 12/20"

"""Where Compare writes its grid: `compare/RUN-SEED.png` beside the txt2img folder, through `path_inside`: never
through a link planted there, never over an earlier grid (the next free `RUN-SEED-N.png`)."""

from __future__ import annotations

from oneword.embeddings.create import create_embedding
from oneword.embeddings.formats import save_embedding
from oneword.models.tiny import build_tiny
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace
from oneword.ui.tabs import generate


def test_a_grid_never_replaces_an_earlier_one_nor_writes_through_a_link(tmp_path):
    space = Workspace.at(tmp_path / "ws")
    model = build_tiny("sd1", seed=0)
    checkpoints = space.root / "textual_inversion" / "2026-12-07" / "zq" / "embeddings"
    checkpoints.mkdir(parents=True)
    for step in (2, 4):
        embedding = create_embedding(model, "zq", init_text="ball" if step == 2 else "cat")
        embedding.step = step
        save_embedding(embedding, checkpoints / f"zq-{step}.pt")
    picture = space.root / "datasets" / "0.png"
    picture.parent.mkdir()
    picture.write_bytes(b"a training picture")
    grids = space.root / "outputs" / "compare"
    grids.mkdir(parents=True)
    (grids / "zq-3.png").symlink_to(picture)  # a link inside the workspace, where the grid would go
    specs = generate.generate_specs()
    values = [dict(prompt="a zq", model="tiny-sd1", steps=1, seed=3, out="outputs/txt2img").get(s.name, s.default)
              for s in specs]
    models = ModelCache()
    first, path, _ = generate.compare(space, models, specs, values, "textual_inversion/2026-12-07/zq", "zq")
    assert first == "wrote outputs/compare/zq-3-2.png"
    assert picture.read_bytes() == b"a training picture" and (grids / "zq-3.png").is_symlink()
    grid = (grids / "zq-3-2.png").read_bytes()
    again, _, _ = generate.compare(space, models, specs, values, "textual_inversion/2026-12-07/zq", "zq")
    assert again == "wrote outputs/compare/zq-3-3.png"
    assert (grids / "zq-3-2.png").read_bytes() == grid
    assert sorted(p.name for p in grids.iterdir()) == ["zq-3-2.png", "zq-3-3.png", "zq-3.png"]

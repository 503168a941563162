"""The workspace rule: every path field of every tab refuses a path that leads outside the workspace (`..`, an
absolute path elsewhere, a link out), with a message naming the field, before anything is loaded or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneword.errors import OnewordError
from oneword.ui.jobs import Jobs
from oneword.ui.labels import flag
from oneword.ui.models import ModelCache
from oneword.ui.paths import Workspace
from oneword.ui.tabs import create, generate, prepare, runs, train


@pytest.fixture
def space(tmp_path):
    """A workspace with a link inside it that points outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    (root / "inside").mkdir()
    (root / "link-out").symlink_to(outside, target_is_directory=True)
    return Workspace.at(root)


ESCAPES = ["../outside", "inside/../../outside", "/etc", "link-out", "link-out/data"]


def _refused(space: Workspace, label: str, given: str) -> str:
    return f"**error:** {label}: {given} is outside the workspace {space.root} (refused)"


def _values(specs, **changes) -> list:
    """The form's values as a fresh page sends them, with `changes`."""
    out = []
    for spec in specs:
        value = changes.get(spec.name, spec.default)
        if isinstance(value, Path):
            value = value.as_posix()
        out.append("" if value is None else value)
    return out


@pytest.mark.parametrize("given", ESCAPES)
def test_resolve_refuses_every_way_out(space, given):
    with pytest.raises(OnewordError) as error:
        space.resolve("--data", given)
    assert str(error.value) == f"--data: {given} is outside the workspace {space.root} (refused)"


def test_resolve_keeps_paths_inside(space):
    assert space.resolve("--data", "inside") == space.root / "inside"
    assert space.resolve("--data", str(space.root / "inside" / "new")) == space.root / "inside" / "new"
    assert space.resolve("--data", "inside/../inside") == space.root / "inside"
    assert space.resolve("--clip", "", optional=True) is None
    assert space.model("--model", "toy") == "toy" and space.template("--template", "style") == "style"
    with pytest.raises(OnewordError, match=r"^--data: empty; give a path inside the workspace"):
        space.resolve("--data", " ")


def test_a_link_loop_is_refused_in_one_line(space):
    (space.root / "loop").symlink_to(space.root / "loop")
    for given in ("loop", "loop/data"):
        with pytest.raises(OnewordError) as error:
            space.resolve("--data", given)
        assert str(error.value) == f"--data: {given} is a link loop (a link that leads back to itself)"


def test_scanned_folders_do_not_follow_links_out_of_the_workspace(space):
    import torch

    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding
    from oneword.hypernetworks.create import new_hypernetwork
    from oneword.hypernetworks.formats import save_hypernetwork
    from oneword.hypernetworks.hypernetwork import HypernetworkSettings

    outside = space.root.parent / "outside"
    save_embedding(Embedding("secret", {"*": torch.ones(1, 64)}), outside / "secret.pt")
    save_hypernetwork(new_hypernetwork("far", [64], HypernetworkSettings(), seed=0), outside / "far.pt")
    save_embedding(Embedding("mine", {"*": torch.ones(1, 64)}), space.root / "embeddings" / "mine.pt")
    (space.root / "embeddings" / "secret.pt").symlink_to(outside / "secret.pt")
    (space.root / "embeddings" / "out").symlink_to(outside, target_is_directory=True)
    (space.root / "hypernetworks").mkdir()
    (space.root / "hypernetworks" / "far.pt").symlink_to(outside / "far.pt")
    (space.root / "lora").mkdir()
    (space.root / "lora" / "far.safetensors").symlink_to(outside / "far.pt")
    assert generate.available(space, "embeddings", "hypernetworks") == ("embeddings: `mine` — hypernetworks: none — "
                                                                        "LoRAs: none")
    specs = generate.generate_specs()
    values = _values(specs, prompt="secret <hypernet:far>", model="tiny-sd1", steps=1, width=64, height=64)
    assert generate.generate(space, ModelCache(), specs, values)[0] == (
        f"**error:** <hypernet:far>: {space.root / 'hypernetworks' / 'far.pt'}: leads outside the workspace")


TRAIN_FIELDS = [*train.PATH_FIELDS, "model", "template"]


@pytest.mark.parametrize("field", TRAIN_FIELDS)
@pytest.mark.parametrize("given", ["../outside", "link-out"])
def test_every_train_path_field_refuses(space, field, given):
    jobs = Jobs(load=lambda model: pytest.fail("nothing may load"))
    from PIL import Image

    Image.new("RGB", (64, 64)).save(space.root / "inside" / "a.png")  # a data folder Start accepts
    specs = train.train_specs()
    values = _values(specs, **{"name": "zq", "data": "inside", field: given})
    assert train.start(space, jobs, specs, "cpu", values) == _refused(space, flag(field), given)
    assert jobs.current is None


@pytest.mark.parametrize("field", ["src", "dst", "tagger"])
def test_every_prepare_path_field_refuses(space, field):
    specs = prepare.prepare_specs()
    values = _values(specs, **{"src": "inside", "dst": "inside/out", field: "../outside"})
    message, table, thumbs = prepare.run(space, specs, values, "")
    assert (message, table, thumbs) == (_refused(space, flag(field), "../outside"), None, [])
    assert not (space.root.parent / "outside" / "out").exists()


def test_check_refuses_a_folder_outside(space):
    assert prepare.check(space, "/etc", "", 512, None)[0] == _refused(space, "DST", "/etc")


@pytest.mark.parametrize("link", ["file", "folder"])
def test_picture_folders_with_links_out_are_refused_before_reading(space, link):
    from PIL import Image

    outside = space.root.parent / "outside"
    Image.new("RGB", (64, 64)).save(outside / "private.png")
    pictures = space.root / "inside" / "pics"
    pictures.mkdir()
    Image.new("RGB", (64, 64)).save(pictures / "mine.png")
    if link == "file":
        (pictures / "stolen.png").symlink_to(outside / "private.png")
    else:
        (pictures / "sub").symlink_to(outside, target_is_directory=True)
    (pictures / "loop").symlink_to(pictures, target_is_directory=True)  # a link back inside is walked once
    shown = "inside/pics/stolen.png" if link == "file" else "inside/pics/sub"
    refusal = f"link outside the workspace {space.root} (refused)"

    specs = prepare.prepare_specs()
    values = _values(specs, src="inside/pics", dst="inside/out")
    message, table, thumbs = prepare.run(space, specs, values, "")
    assert (message, table, thumbs) == (f"**error:** SRC: {shown} {refusal}", None, [])
    assert not (space.root / "inside" / "out").exists()
    assert prepare.check(space, "inside/pics", "", 64, None)[0] == f"**error:** DST: {shown} {refusal}"
    jobs = Jobs(load=lambda model: pytest.fail("nothing may load"))
    specs = train.train_specs()
    values = _values(specs, name="zq", data="inside/pics")
    assert train.start(space, jobs, specs, "cpu", values) == f"**error:** --data: {shown} {refusal}"
    assert jobs.current is None


def test_picture_folders_with_links_inside_the_workspace_are_accepted(space):
    from PIL import Image

    Image.new("RGB", (64, 64)).save(space.root / "inside" / "a.png")
    pictures = space.root / "pics"
    pictures.mkdir()
    (pictures / "a.png").symlink_to(space.root / "inside" / "a.png")
    (pictures / "gone.png").symlink_to(space.root.parent / "outside" / "gone.png")  # dangling: reads nothing
    space.pictures("--src", pictures)


@pytest.mark.parametrize(("kind", "field"), [("embedding", "embeddings_dir"), ("embedding", "model"),
                                           ("hypernetwork", "hypernetwork_dir"), ("hypernetwork", "model")])
def test_create_refuses(space, kind, field):
    specs = getattr(create, f"{kind}_specs")()
    values = _values(specs, **{"name": "zq", field: "../outside"})
    label = "--" + field.replace("_", "-")
    made = getattr(create, f"create_{kind}")(space, ModelCache(), specs, values)
    assert made == _refused(space, label, "../outside")


@pytest.mark.parametrize("field", ["embeddings_dir", "hypernetwork_dir", "lora_dir", "out", "model"])
def test_generate_and_compare_refuse(space, field):
    specs = generate.generate_specs()
    values = _values(specs, **{"prompt": "a star", field: "../outside"})
    expected = _refused(space, "--" + field.replace("_", "-"), "../outside")
    assert generate.generate(space, ModelCache(), specs, values)[0] == expected
    if field != "hypernetwork_dir":
        assert generate.compare(space, ModelCache(), specs, values, "inside", "zq")[0] == expected
    ok = _values(specs, prompt="a star")
    assert generate.compare(space, ModelCache(), specs, ok, "link-out", "zq")[0] == _refused(space, "run", "link-out")


def test_available_and_runs_refuse(space):
    assert generate.available(space, "../outside", "hypernetworks") == _refused(space, "--embeddings-dir", "../outside")
    assert generate.available(space, "embeddings", "/etc") == _refused(space, "--hypernetwork-dir", "/etc")
    assert generate.available(space, "embeddings", "hypernetworks", "/etc") == _refused(space, "--lora-dir", "/etc")
    assert runs.open_run(space, "../outside")[0] == _refused(space, "run", "../outside")


def _run_with_a_checkpoint(space: Workspace) -> str:
    import torch

    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding

    run = "textual_inversion/2026-01-01/zq"
    embedding = Embedding(name="zq", vectors={"*": torch.zeros(1, 64)}, step=2)
    save_embedding(embedding, space.root / run / "embeddings" / "zq-2.pt")
    return run


def test_compare_keeps_its_grid_inside_the_workspace(space):
    specs = generate.generate_specs()
    run = _run_with_a_checkpoint(space)
    values = _values(specs, prompt="a zq", model="tiny-sd1", steps=1, seed=3, out=".")
    refused = generate.compare(space, ModelCache(), specs, values, run, "zq")
    assert refused[0] == (f"**error:** --out .: Compare writes its grids beside that folder, in "
                          f"{space.root.parent / 'compare'}, outside the workspace {space.root} (refused); give a "
                          "folder inside it, e.g. outputs/txt2img")
    assert not (space.root.parent / "compare").exists()
    values = _values(specs, prompt="a zq", model="tiny-sd1", steps=1, seed=3, out="outputs/txt2img")
    assert generate.compare(space, ModelCache(), specs, values, run, "zq")[0] == "wrote outputs/compare/zq-3.png"

"""A prompt tag type registered from outside the library: `oneword generate` draws with it through the registry,
its text-encoder part around prompt encoding and its UNet part around sampling, the tag out of the prompt text."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_in_process
from PIL import Image

from oneword.conditioning.tags import Effect, Tag
from oneword.errors import OnewordError
from oneword.extra_networks import register, unregister
from oneword.generate import txt2img

ENCODING = {"active": False}
"""Whether a gain's text-encoder part is applied right now."""


@dataclass
class Gains:
    """The `gains/NAME.txt` files, each holding a factor."""

    folder: Path
    tag = "gain"
    factors: dict[str, float] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.factors)


@dataclass
class GainEffect(Effect):
    """Scales the UNet's output by 1 + weight x factor: weight 0 is the neutral value."""

    gain: float

    @contextlib.contextmanager
    def text_encoder(self, model) -> Iterator[None]:
        ENCODING["active"] = True
        try:
            yield
        finally:
            ENCODING["active"] = False

    @contextlib.contextmanager
    def unet(self, model) -> Iterator[None]:
        def scaled(module, args, output):
            return (output[0] * (1 + self.gain), *output[1:])  # the pipeline asks for a tuple

        handle = model.unet.register_forward_hook(scaled)
        try:
            yield
        finally:
            handle.remove()


@dataclass(frozen=True)
class GainTag:
    """`<gain:NAME:W>`."""

    name: str = "gain"
    option: str = "--gain-dir"
    folder: str = "gains"

    def scan(self, folder: Path, within: Path | None = None) -> Gains:
        paths = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        return Gains(folder, factors={p.stem: float(p.read_text()) for p in paths})

    def check(self, tag: Tag) -> None:
        tag.weight(1)

    def activate(self, tags: Sequence[Tag], library: Gains | None) -> GainEffect:
        missing = [t.name for t in tags if library is None or t.name not in library.factors]
        if missing:
            raise OnewordError(f"<gain:{missing[0]}>: no such gain")
        return GainEffect(sum(t.weight(1) * library.factors[t.name] for t in tags))


@pytest.fixture
def gain_tags(tmp_path, monkeypatch):
    """The `gain` type registered, `gains/unit.txt` in the working folder, and every encoded prompt recorded."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gains").mkdir()
    (tmp_path / "gains" / "unit.txt").write_text("1")
    encoded = []
    original = txt2img.encode_pair

    def recording(model, prompt, negative, embeddings):
        encoded.append((prompt, ENCODING["active"]))
        return original(model, prompt, negative, embeddings)

    monkeypatch.setattr(txt2img, "encode_pair", recording)
    register(GainTag())
    yield encoded
    unregister("gain")


def _draw(monkeypatch, capsys, label: str, prompt: str) -> tuple[Image.Image, str]:
    code, out, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--seed", "7", "--steps",
                                    "2", "--out", label, "--prompt", prompt)
    assert code == 0, err
    return Image.open(out.strip()), err


def test_a_tag_type_registered_outside_the_library_draws_through_the_generate_command(gain_tags, monkeypatch,
                                                                                      capsys):
    plain, _ = _draw(monkeypatch, capsys, "plain", "a red ball")
    zero, _ = _draw(monkeypatch, capsys, "zero", "a red ball <gain:unit:0>")
    half, _ = _draw(monkeypatch, capsys, "half", "a red ball <gain:unit:0.5>")
    assert np.array_equal(np.asarray(plain), np.asarray(zero))  # the neutral weight is no tag, bit for bit
    assert not np.array_equal(np.asarray(plain), np.asarray(half))
    assert half.text["parameters"].startswith("a red ball <gain:unit:0.5>\n")  # the prompt as typed
    # the tags are out of the text that is encoded, and the text-encoder part is applied while it is
    assert gain_tags == [("a red ball", False), ("a red ball ", True), ("a red ball ", True)]


def test_the_new_type_refuses_as_the_library_s_own_do(gain_tags, monkeypatch, capsys):
    code, _, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--steps", "1",
                                  "--prompt", "a red ball <gain:unit:much>")
    assert code == 1 and err.strip().splitlines() == [
        "error: prompt tag <gain:unit:much>: the strength 'much' is not a number"]
    assert gain_tags == []  # refused before anything was drawn
    code, _, err = run_in_process(monkeypatch, capsys, "generate", "--model", "tiny-sd1", "--steps", "1",
                                  "--prompt", "a red ball <gain:nope:1>")
    assert code == 1 and err.strip().splitlines() == ["error: <gain:nope>: no such gain"]


def test_a_tag_of_an_unknown_type_is_left_out_with_a_note(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    plain, _ = _draw(monkeypatch, capsys, "plain", "a red ball")
    style, err = _draw(monkeypatch, capsys, "style", "a red ball<style:face:0.7>")
    assert np.array_equal(np.asarray(plain), np.asarray(style))  # as A1111 does without the type
    assert err.strip().splitlines() == [
        "note: prompt tag <style:face:0.7>: unknown tag type 'style' (known: hypernet, lora); left out"]


def test_compare_draws_the_prompt_s_hypernetwork_in_every_column(tmp_path, monkeypatch, capsys):
    import torch

    from oneword.embeddings.embedding import Embedding
    from oneword.embeddings.formats import save_embedding
    from oneword.hypernetworks.formats import save_hypernetwork
    from oneword.hypernetworks.hypernetwork import HypernetworkSettings, new_hypernetwork

    monkeypatch.chdir(tmp_path)
    hn = new_hypernetwork("hx", [32, 64], HypernetworkSettings(activation_func="relu"), seed=2)
    with torch.no_grad():
        for p in hn.parameters():  # far from zero: a fresh one barely changes anything
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.2)
    save_hypernetwork(hn, tmp_path / "hn" / "hx.pt")
    save_embedding(Embedding("w-5", {"*": torch.ones(1, 64)}, step=5), tmp_path / "w-5.pt")
    grids = {}
    for label, tag in (("plain", ""), ("zero", " <hypernet:hx:0>"), ("one", " <hypernet:hx:1>")):
        code, _, err = run_in_process(monkeypatch, capsys, "compare", "w-5.pt", "--word", "w", "--prompt",
                                      f"a photo of w{tag}", "--model", "tiny-sd1", "--seed", "3", "--steps", "2",
                                      "--hypernetwork-dir", "hn", "--out", f"{label}.png")
        assert code == 0, err
        grids[label] = np.asarray(Image.open(tmp_path / f"{label}.png").convert("RGB"))
    assert np.array_equal(grids["plain"], grids["zero"])
    columns = [grids["one"][24:, c * 64:(c + 1) * 64] for c in range(2)]
    assert not np.array_equal(grids["plain"][24:, :64], columns[0])  # the hypernetwork without the embedding
    assert not np.array_equal(grids["plain"][24:, 64:], columns[1])  # and with it


def test_the_web_ui_s_generate_tab_draws_the_new_type_from_the_workspace(gain_tags, tmp_path):
    from oneword.ui.models import ModelCache
    from oneword.ui.paths import Workspace
    from oneword.ui.tabs import generate

    space, models, specs = Workspace.at(tmp_path), ModelCache(), generate.generate_specs()
    drawn = {}
    for label, prompt in (("plain", "a red ball"), ("zero", "a red ball <gain:unit:0>"),
                          ("half", "a red ball <gain:unit:0.5> <style:face:1>")):
        form = {"prompt": prompt, "model": "tiny-sd1", "steps": 2, "seed": 7, "out": label}
        values = [form.get(s.name, s.default) for s in specs]  # as a fresh page sends them
        values = [v.as_posix() if isinstance(v, Path) else "" if v is None else v for v in values]
        note, paths, _ = generate.generate(space, models, specs, values)
        drawn[label] = (note, np.asarray(Image.open(paths[0])))
    assert drawn["plain"][0] == "wrote plain/00000-7.png"
    assert np.array_equal(drawn["plain"][1], drawn["zero"][1]) and not np.array_equal(drawn["plain"][1],
                                                                                      drawn["half"][1])
    assert drawn["half"][0] == ("note: prompt tag <style:face:1>: unknown tag type 'style' (known: gain, hypernet, "
                                "lora); left out\n\nwrote half/00000-7.png")

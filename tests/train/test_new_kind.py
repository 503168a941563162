"""A kind defined here alone, registered at run time, trains through the real `oneword train --kind NAME` like the
shipped kinds: its own log folder names and CSV, validation loss, Ctrl-C save, resume equal to an uninterrupted run,
`--stop auto` and the best checkpoint. Nothing outside this file knows of it.

The kind, `gain`: one new token vector for the word (as an embedding's) and a scalar gain on the UNet's output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from cli_helpers import run_in_process
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from train_helpers import write_images

from oneword import kinds
from oneword.conditioning.encode import encode_prompts
from oneword.embeddings.create import create_embedding
from oneword.embeddings.embedding import Embedding
from oneword.errors import OnewordError
from oneword.files import atomic_write
from oneword.train import events
from oneword.train.groups import ParamGroup
from oneword.train.trainable import tensors_hash


@dataclasses.dataclass
class GainSnapshot:
    """A checkpoint of the kind: the word's vectors (by encoder key) and the gain."""

    name: str
    step: int
    vectors: dict[str, torch.Tensor]
    gain: torch.Tensor

    @property
    def trigger_word(self) -> str:
        return self.name

    def token_vectors(self) -> dict[str, Embedding]:
        return {self.name: Embedding(self.name, self.vectors, self.step)}

    def network_modules(self) -> list:
        return []  # the gain is applied by the run itself


class GainTrainable:
    kind = "gain"

    def __init__(self, snapshot: GainSnapshot, device: torch.device) -> None:
        self.name = snapshot.name
        self.vectors = {k: torch.nn.Parameter(v.detach().to(device, torch.float32).clone())
                        for k, v in snapshot.vectors.items()}
        self.gain = torch.nn.Parameter(snapshot.gain.detach().to(device, torch.float32).clone())

    def parameters(self) -> list[torch.Tensor]:
        return [*self.vectors.values(), self.gain]

    def groups(self, learn_rate: str) -> list[ParamGroup]:
        return [ParamGroup("vector", list(self.vectors.values()), learn_rate),
                ParamGroup("gain", [self.gain], learn_rate)]

    def conditioning(self, model, prompts, rows=None):
        live = Embedding(self.name, dict(self.vectors))
        return encode_prompts(model, prompts, {self.name: live}, grad=True, rows=rows)

    @contextlib.contextmanager
    def applied(self, model):
        def scaled(module, args, output):
            if isinstance(output, tuple):
                return (output[0] * self.gain.to(output[0].dtype), *output[1:])
            return type(output)(sample=output.sample * self.gain.to(output.sample.dtype))

        handle = model.unet.register_forward_hook(scaled)
        try:
            yield
        finally:
            handle.remove()

    def sampling(self):
        return contextlib.nullcontext()

    def snapshot(self, step: int) -> GainSnapshot:
        return GainSnapshot(self.name, step, {k: v.detach().cpu().clone() for k, v in self.vectors.items()},
                            self.gain.detach().cpu().clone())

    def save(self, snapshot: GainSnapshot, path: Path, model, name: str) -> None:
        GAIN.write(snapshot, path, name)

    def state_hash(self, snapshot: GainSnapshot) -> str:
        return GAIN.state_hash(snapshot)


class GainKind:
    name = "gain"
    defaults = {"learn_rate": "0.01", "template": "subject"}  # noqa: RUF012
    folder = "gains"
    csv_name = "gain_loss.csv"
    preview_label = "Gain step"
    hidden_in_previews = False
    command = None
    command_help = ""

    def problems(self, config):
        return ["--vectors: a gain has one vector"] if config.vectors != 1 else []

    def trained_dir(self, config):
        return "--embeddings-dir", Path(config.embeddings_dir)

    def suffix(self, model):
        return ".safetensors"

    def create(self, config, model, name):
        start = create_embedding(model, name, config.init_text, 1)
        return GainSnapshot(name, 0, start.vectors, torch.ones(()))

    def read(self, path, model):
        try:
            tensors = load_file(str(path))
            meta = json.loads(path.with_suffix(".json").read_text())
        except (OSError, SafetensorError, ValueError) as error:
            raise OnewordError(f"{path}: not a gain file ({error})") from None
        vectors = {k.removeprefix("vector."): t for k, t in tensors.items() if k.startswith("vector.")}
        return GainSnapshot(meta["name"], meta["step"], vectors, tensors["gain"])

    def write(self, snapshot, path, name):
        tensors = {**{f"vector.{k}": v.contiguous() for k, v in snapshot.vectors.items()}, "gain": snapshot.gain}
        meta = json.dumps({"name": name, "step": snapshot.step})
        atomic_write(path.with_suffix(".json"), lambda f: f.write(meta.encode()))
        scratch = path.with_name(path.name + ".new")
        save_file(tensors, str(scratch))
        os.replace(scratch, path)

    def trainable(self, snapshot, config, device):
        return GainTrainable(snapshot, device)

    def state_hash(self, snapshot):
        return tensors_hash([*sorted(snapshot.vectors.items()), ("gain", snapshot.gain)])


GAIN = GainKind()


@pytest.fixture
def gain_kind():
    kinds.register(GAIN)
    yield GAIN
    kinds.unregister(GAIN.name)


def _args(tmp_path: Path, *more: str) -> list[str]:
    data = tmp_path.parent / "data"
    if not data.exists():
        write_images(data)
    return ["train", "g1", "--kind", "gain", "--data", str(data), "--model", "tiny-sd1", "--init-text", "ball",
            "--log-dir", str(tmp_path / "log"), "--embeddings-dir", str(tmp_path / "emb"), "--batch-size", "2",
            "--csv-every", "2", "--validate-every", "4", "--validation-size", "4", "--preview-steps", "2",
            "--device", "cpu", *more]


def _root(tmp_path: Path) -> Path:
    (root,) = (tmp_path / "log").glob("*/g1")
    return root


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _ctrl_c_at(step: int, monkeypatch):
    from oneword.cli import train as cli_train

    shown = cli_train.ProgressView

    class Interrupting(shown):
        def __call__(self, event):
            super().__call__(event)
            if isinstance(event, events.Progress) and event.step == step:
                os.kill(os.getpid(), 2)  # Ctrl-C

    monkeypatch.setattr(cli_train, "ProgressView", Interrupting)
    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)


def test_a_kind_registered_at_run_time_trains_through_the_cli(tmp_path, monkeypatch, capsys, gain_kind):
    whole = tmp_path / "whole"
    code, out, err = run_in_process(monkeypatch, capsys, *_args(whole, "--max-steps", "8", "--save-every", "4",
                                                                 "--preview-every", "4"))
    assert code == 0, err
    root = _root(whole)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix != ".json") == [
        "checkpoints.csv", "gain_loss.csv", "gains", "gains/g1-4.safetensors", "gains/g1-8.safetensors",
        "gains/g1-8.safetensors.optim", "images", "images/g1-4.png", "images/g1-8.png", "loss.png", "previews.png"]
    rows = (root / "gain_loss.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,epoch_step,loss,learn_rate,learn_rate_gain,val_loss"
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6", "8"]
    assert [bool(r.split(",")[-1]) for r in rows[1:]] == [False, True, False, True]  # validation loss at 4 and 8
    assert [r.split(",")[4:6] for r in rows[1:]] == [["0.01", "0.01"]] * 4  # the kind's default rate, both groups
    assert "Gain step: 4" in Image.open(root / "images" / "g1-4.png").info["parameters"]
    final = _weights(whole / "emb" / "g1.safetensors")
    assert not torch.equal(final["gain"], torch.ones(()))  # the gain on the UNet's output was trained
    assert torch.equal(final["gain"], _weights(root / "gains" / "g1-8.safetensors")["gain"])

    cut = tmp_path / "cut"  # the same run, Ctrl-C at step 6, then --resume
    _ctrl_c_at(6, monkeypatch)
    code, out, err = run_in_process(monkeypatch, capsys, *_args(cut, "--max-steps", "8", "--save-every", "4",
                                                                 "--preview-every", "0"))
    assert f"stopped at step 6: saved {_root(cut) / 'gains' / 'g1-6.safetensors'}" in out
    assert (_root(cut) / "gains" / "g1-6.safetensors.optim").is_file()
    monkeypatch.undo()
    code, out, err = run_in_process(monkeypatch, capsys, *_args(cut, "--max-steps", "8", "--save-every", "4",
                                                                 "--preview-every", "0", "--resume"))
    assert code == 0, err
    resumed = _weights(_root(cut) / "gains" / "g1-8.safetensors")
    whole8 = _weights(root / "gains" / "g1-8.safetensors")
    assert resumed.keys() == whole8.keys() and all(torch.equal(resumed[k], whole8[k]) for k in whole8)
    losses = (_root(cut) / "gain_loss.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in losses[1:]] == ["2", "4", "6", "8"]


def test_a_registered_kind_stops_on_a_plateau_and_keeps_its_best_checkpoint(tmp_path, monkeypatch, capsys,
                                                                             gain_kind):
    code, out, err = run_in_process(monkeypatch, capsys, *_args(
        tmp_path / "auto", "--max-steps", "200", "--save-every", "2", "--validate-every", "2", "--preview-every", "0",
        "--stop", "auto", "--stop-patience", "1", "--stop-min-delta", "0.5", "--learn-rate", "0.05"))
    assert code == 0, err
    root = _root(tmp_path / "auto")
    summary = [row.split(",") for row in (root / "checkpoints.csv").read_text().splitlines()[1:]]
    best = [int(row[0]) for row in summary if row[-1] == "*"]
    last = int(summary[-1][0])
    assert last < 200 and len(best) == 1  # stopped on the plateau, one checkpoint marked best
    assert f"step {last}" in out
    kept = _weights(tmp_path / "auto" / "emb" / "g1.safetensors")
    chosen = _weights(root / "gains" / f"g1-{best[0]}.safetensors")
    assert all(torch.equal(kept[k], chosen[k]) for k in chosen)
    assert json.loads((tmp_path / "auto" / "emb" / "g1.json").read_text())["step"] == best[0]


def test_an_unregistered_kind_is_refused_naming_the_registered_ones(tmp_path, monkeypatch, capsys):
    code, _, err = run_in_process(monkeypatch, capsys, *_args(tmp_path / "none", "--max-steps", "2"))
    assert code != 0
    assert "kind must be one of embedding, hypernetwork, lora, pivotal, not 'gain'" in err


def test_the_train_tab_offers_a_kind_registered_before_it_is_built(gain_kind):
    from oneword.ui.tabs.train import form_defaults, train_specs

    (kind,) = [spec for spec in train_specs() if spec.name == "kind"]
    assert kind.choices == ("embedding", "hypernetwork", "lora", "pivotal", "gain")
    assert (form_defaults("gain")["learn_rate"], form_defaults("gain")["template"]) == ("0.01", "subject")

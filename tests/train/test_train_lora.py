"""Training a LoRA through the one training loop: kohya's file and metadata, its layers by --targets, a new LoRA
that changes nothing, resume equal to an uninterrupted run, Ctrl-C, --stop auto, and its options refused elsewhere."""

from __future__ import annotations

import contextlib
import json
import os

import pytest
import torch
from cli_helpers import run_in_process
from safetensors import safe_open
from train_helpers import settings

from oneword import kinds
from oneword.conditioning.encode import encode_prompts
from oneword.errors import OnewordError
from oneword.lora.names import places
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.write import save_lora
from oneword.models.tiny import build_tiny
from oneword.safeload import load_pickle
from oneword.train import events
from oneword.train.config import TrainConfig
from oneword.train.loop import train

LORA = kinds.get("lora")


@pytest.fixture
def model():
    return build_tiny("sd1", seed=0)


def lora_settings(tmp_path, **changes) -> TrainConfig:
    return settings(tmp_path, **{"kind": "lora", "lora_dir": tmp_path / "lora", "learn_rate": "0.01",
                                 "text_encoder_lr": "0.005", **changes})


def _tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.startswith("settings-"))


def _file(path):
    with safe_open(str(path), framework="pt") as f:
        return {key: f.get_tensor(key) for key in f.keys()}, f.metadata()  # noqa: SIM118


def _outputs(model, trainable=None):
    """The text encoder's and the UNet's outputs for one prompt and latent, with the trainable applied if given."""
    generator = torch.Generator().manual_seed(3)
    latent = torch.randn(1, model.unet.config.in_channels, 8, 8, generator=generator)
    with torch.no_grad(), (trainable.applied(model) if trainable else contextlib.nullcontext()):
        context = encode_prompts(model, ["a red ball"], {}).context
        out = model.unet(latent, torch.tensor([500]), encoder_hidden_states=context).sample
    return context, out


def test_a_run_through_the_cli_writes_the_log_tree_and_a_kohya_lora(tmp_path, monkeypatch, capsys):
    settings(tmp_path)  # writes tmp_path/data
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in_process(monkeypatch, capsys, "train-lora", "zqx", "--data", "data", "--model", "tiny-sd1",
                                    "--max-steps", "4", "--save-every", "2", "--preview-every", "2", "--csv-every", "2",
                                    "--preview-steps", "2", "--validate-every", "2", "--validation-size", "2",
                                    "--device", "cpu")
    assert code == 0, err
    assert "trained 4 steps: saved lora/zqx.safetensors" in out
    (root,) = (tmp_path / "textual_inversion").glob("*/zqx")
    assert _tree(root) == [
        "checkpoints.csv", "images", "images/zqx-2.png", "images/zqx-4.png", "lora", "lora/zqx-2.safetensors",
        "lora/zqx-4.safetensors", "lora/zqx-4.safetensors.optim", "lora_loss.csv", "loss.png", "previews.png"]
    rows = (root / "lora_loss.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,epoch_step,loss,learn_rate,learn_rate_text_encoder,val_loss"
    assert rows[1].split(",")[4:6] == ["0.0001", "5e-05"]
    saved = json.loads(next(root.glob("settings-*.json")).read_text())
    assert {k: saved[k] for k in ("kind", "learn_rate", "template", "rank", "alpha", "targets", "train_text_encoder",
                                  "text_encoder_lr", "save_precision")} == {
        "kind": "lora", "learn_rate": "0.0001", "template": "subject_filewords", "rank": 16, "alpha": 8.0,
        "targets": "attn-mlp", "train_text_encoder": True, "text_encoder_lr": "0.00005", "save_precision": "fp16"}
    assert sorted(p.name for p in (tmp_path / "lora").iterdir()) == ["zqx.safetensors", "zqx.safetensors.optim"]
    tensors, metadata = _file(tmp_path / "lora" / "zqx.safetensors")
    wanted = places(build_tiny("sd1", seed=0), "attn-mlp")
    assert {k.rsplit(".", 2)[0] if k.endswith("weight") else k.rsplit(".", 1)[0] for k in tensors} == set(wanted)
    assert any(k.startswith("lora_te_") for k in wanted) and any(k.startswith("lora_unet_") for k in wanted)
    assert all(t.dtype == torch.float16 for t in tensors.values())
    assert {k: metadata[k] for k in ("ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_steps",
                                     "ss_output_name", "ss_unet_lr", "ss_text_encoder_lr", "modelspec.architecture",
                                     "modelspec.trigger_phrase")} == {
        "ss_network_module": "networks.lora", "ss_network_dim": "16", "ss_network_alpha": "8.0", "ss_steps": "4",
        "ss_output_name": "zqx", "ss_unet_lr": "0.0001", "ss_text_encoder_lr": "0.00005",
        "modelspec.architecture": "stable-diffusion-v1/lora", "modelspec.trigger_phrase": "zqx"}
    assert json.loads(metadata["ss_tag_frequency"]) == {"data": {"a red ball": 3, "a blue ball": 1, "on grass": 1}}
    assert _file(root / "lora" / "zqx-2.safetensors")[1]["ss_output_name"] == "zqx-2"  # the word NAME-STEP, as A1111


def test_on_the_toy_model_a_lora_defaults_to_the_rates_and_batch_measured_there_and_keeps_what_is_given():
    toy, sd = TrainConfig(kind="lora", model="toy"), TrainConfig(kind="lora", model="models/sd15.safetensors")
    assert (toy.learn_rate, toy.text_encoder_lr, toy.batch_size) == ("0.003", "0.003", 8)
    assert (sd.learn_rate, sd.text_encoder_lr, sd.batch_size) == ("0.0001", "0.00005", 1)
    given = TrainConfig(kind="lora", model="toy", batch_size=1, learn_rate="0.0001", text_encoder_lr="0.0002")
    assert (given.learn_rate, given.text_encoder_lr, given.batch_size) == ("0.0001", "0.0002", 1)
    assert toy.rank == sd.rank == 16 and toy.targets == sd.targets == "attn-mlp"  # only the rates and the batch
    for kind in ("embedding", "hypernetwork", "pivotal"):  # the other kinds are as they were on every model
        assert TrainConfig(kind=kind, model="toy").batch_size == 1
        assert TrainConfig(kind=kind, model="toy").learn_rate == TrainConfig(kind=kind, model="tiny-sd1").learn_rate


def test_a_new_lora_changes_nothing_and_training_changes_both_networks(tmp_path, model):
    config = lora_settings(tmp_path, max_steps=4, save_every=0)
    base_context, base_out = _outputs(model)
    new = LORA.trainable(LORA.create(config, model, "zqx"), config, torch.device("cpu"))
    context, out = _outputs(model, new)
    assert torch.equal(context, base_context) and torch.equal(out, base_out)
    unet_before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    finished = train(config, model)
    assert all(torch.equal(v, unet_before[k]) for k, v in model.unet.state_dict().items())  # the base stays frozen
    networks = [model.unet, *(encoder.model for encoder in model.encoders)]
    assert not any(m._forward_hooks for net in networks for m in net.modules())  # the hooks are gone after the run
    base_context, base_out = _outputs(model)  # the run left the UNet channels-last: the same maths, other rounding
    trained = LORA.trainable(LORA.read(finished.embedding_path, model), config, torch.device("cpu"))
    context, out = _outputs(model, trained)
    assert not torch.equal(context, base_context) and not torch.equal(out, base_out)


@pytest.mark.parametrize("targets", ["attn", "attn-mlp", "conv"])
def test_targets_pick_kohyas_layers(tmp_path, model, targets):
    config = lora_settings(tmp_path, targets=targets, rank=4, alpha=2.0,
                           **({"conv_rank": 2, "conv_alpha": 1.0} if targets == "conv" else {}))
    lora = LORA.create(config, model, "zqx")
    where = places(model, targets)
    assert list(lora.layers) == list(where)
    names = " ".join(lora.layers)
    assert ("ff_net_0_proj" in names) == (targets != "attn") and ("mlp_fc1" in names) == (targets != "attn")
    assert ("resnets_0_conv1" in names) == (targets == "conv")
    for key, layer in lora.layers.items():
        module = where[key].module
        assert torch.count_nonzero(layer.up) == 0 and torch.count_nonzero(layer.down) > 0
        if where[key].is_3x3:
            assert list(layer.down.shape) == [2, module.in_channels, 3, 3]
            assert list(layer.up.shape) == [module.out_channels, 2, 1, 1] and layer.alpha == 1.0
        elif isinstance(module, torch.nn.Linear):
            assert list(layer.down.shape) == [4, module.in_features] and layer.alpha == 2.0
    assert any(p.is_3x3 for p in where.values()) == (targets == "conv")


def test_kohyas_init_is_kaiming_uniform(tmp_path, model):
    lora = LORA.create(lora_settings(tmp_path, rank=32), model, "zqx")  # the widest rank the tiny layers take
    key = next(k for k in lora.layers if k.endswith("attn1_to_q"))
    down = lora.layers[key].down  # torch's Linear init: uniform in +-1/sqrt(fan_in)
    bound = 1 / down.shape[1] ** 0.5
    assert float(down.abs().max()) <= bound and float(down.abs().max()) > 0.9 * bound


def test_without_the_text_encoder_only_the_unet_is_trained_and_prompts_are_encoded_once(tmp_path, model):
    calls = []
    model.encoders[0].model.register_forward_hook(lambda *_: calls.append(1))
    finished = train(lora_settings(tmp_path, max_steps=3, save_every=0, train_text_encoder=False, text_encoder_lr=None,
                                   template="none", batch_size=1, validate_every=0), model)
    assert len(calls) == 1  # the `none` template's one prompt, its conditioning cached
    tensors, metadata = _file(finished.embedding_path)
    assert tensors and all(k.startswith("lora_unet_") for k in tensors)
    assert "ss_text_encoder_lr" not in metadata and "modelspec.trigger_phrase" not in metadata  # no [name]
    assert (finished.log_folder / "lora_loss.csv").read_text().splitlines()[0] == (
        "step,epoch,epoch_step,loss,learn_rate,val_loss")


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    whole = train(lora_settings(tmp_path / "a", max_steps=8, save_every=4), build_tiny("sd1", seed=0))
    train(lora_settings(tmp_path / "b", max_steps=4, save_every=4), build_tiny("sd1", seed=0))
    resumed = train(lora_settings(tmp_path / "b", max_steps=8, save_every=4, resume=True), build_tiny("sd1", seed=0))
    assert (resumed.step, resumed.log_folder.name) == (8, "zqx")
    a, b = (_file(run.log_folder / "lora" / "zqx-8.safetensors")[0] for run in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    states = [load_pickle(run.log_folder / "lora" / "zqx-8.safetensors.optim") for run in (whole, resumed)]
    moments = [[s["exp_avg"] for s in state["optimizer_state_dict"]["state"].values()] for state in states]
    assert all(torch.equal(x, y) for x, y in zip(*moments, strict=True))  # float32 moments: bit for bit
    exact = [state["exact_weights"] for state in states]
    assert all(torch.equal(exact[0][k], exact[1][k]) for k in exact[0])


def test_resume_from_the_lora_file_alone_continues_from_its_float32_weights(tmp_path):
    import shutil

    whole = train(lora_settings(tmp_path / "a", max_steps=8, save_every=4, validate_every=0), build_tiny("sd1", seed=0))
    first = train(lora_settings(tmp_path / "b", max_steps=4, save_every=4, validate_every=0), build_tiny("sd1", seed=0))
    shutil.rmtree(tmp_path / "b" / "log")  # LORA_DIR/NAME.safetensors and its .optim are all that is left
    resumed = train(lora_settings(tmp_path / "b", max_steps=8, save_every=4, validate_every=0, resume=True),
                    build_tiny("sd1", seed=0))
    assert resumed.step == 8 and first.embedding_path == resumed.embedding_path
    a, b = (_file(run.embedding_path)[0] for run in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_saves_the_lora(tmp_path, monkeypatch, capsys):
    from oneword.cli import train as cli_train

    shown = cli_train.ProgressView

    class Interrupting(shown):
        def __call__(self, event):
            super().__call__(event)
            if isinstance(event, events.Progress) and event.step == 3:
                os.kill(os.getpid(), 2)  # Ctrl-C

    monkeypatch.setattr(cli_train, "ProgressView", Interrupting)
    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)
    settings(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_in_process(monkeypatch, capsys, "train", "zqx", "--kind", "lora", "--data", "data",
                                    "--model", "tiny-sd1", "--max-steps", "20", "--save-every", "10", "--device", "cpu")
    assert code == 0, err
    (root,) = (tmp_path / "textual_inversion").glob("*/zqx")
    assert sorted(p.name for p in (root / "lora").iterdir()) == ["zqx-3.safetensors", "zqx-3.safetensors.optim"]
    assert _file(tmp_path / "lora" / "zqx.safetensors")[1]["ss_steps"] == "3"


def test_stop_auto_ends_a_lora_run_on_its_plateau(tmp_path, model):
    config = lora_settings(tmp_path, max_steps=200, save_every=0, validate_every=2, validation_size=2, stop="auto",
                           stop_patience=1, stop_min_delta=0.5)
    finished = train(config, model)
    assert finished.reason == "plateau" and finished.step < 200
    assert finished.embedding_path.is_file()


def test_lora_options_are_refused_for_another_kind_in_one_line(tmp_path, monkeypatch, capsys):
    settings(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_in_process(monkeypatch, capsys, "train", "zqx", "--data", "data", "--model", "tiny-sd1",
                                    "--rank", "4")
    assert (code, err) == (1, "error: --rank is for --kind lora\n")
    config = settings(tmp_path, kind="hypernetwork", train_text_encoder=False, text_encoder_lr="1e-5")
    assert [p for p in config.problems() if "lora" in p] == ["--train-text-encoder is for --kind lora",
                                                             "--text-encoder-lr is for --kind lora"]


def test_lora_settings_out_of_range_are_refused_naming_each(tmp_path):
    config = lora_settings(tmp_path, rank=0, alpha=0.0, targets="attn", conv_rank=4, save_precision="bf16",
                           text_encoder_lr="fast")
    assert config.problems() == [
        "--rank must be at least 1, but is 0", "--alpha must be above 0, but is 0.0",
        "--conv-rank is for --targets conv (the 3x3 convolutions)",
        "--save-precision must be one of fp16, fp32, not 'bf16'",
        "--text-encoder-lr 'fast': entry 1 'fast': 'fast' is not a number"]
    assert lora_settings(tmp_path, targets="all").problems() == [
        "--targets must be one of attn, attn-mlp, conv, not 'all'"]


def test_a_file_that_does_not_fit_the_model_is_refused_naming_it(tmp_path, model):
    lora = LORA.create(lora_settings(tmp_path, targets="attn"), model, "zqx")
    key = next(iter(lora.layers))
    wrong = Lora("zqx", {key: LoraLayer(torch.zeros(4, 7), torch.zeros(3, 4), 4.0),
                         "lora_unet_nowhere": LoraLayer(torch.zeros(4, 7), torch.zeros(3, 4), 4.0)})
    path = tmp_path / "wrong.safetensors"
    save_lora(wrong, path, {})
    with pytest.raises(OnewordError) as error:
        LORA.read(path, model)
    message = str(error.value)
    assert message.startswith(f"{path}: does not fit tiny-sd1: ") and "(and 1 more)" in message
    save_lora(lora, path, {})
    assert LORA.read(path, model).layers.keys() == lora.layers.keys()


def test_a_half_precision_model_trains_the_float32_layers(tmp_path, model):
    """On GPUs the frozen model is in bf16: the hooks cast the layers to it, the gradients reach the float32 leaves."""
    config = lora_settings(tmp_path, targets="attn")
    model.to(torch.device("cpu"), torch.bfloat16)
    trainable = LORA.trainable(LORA.create(config, model, "zqx"), config, torch.device("cpu"))
    with torch.no_grad():
        for layer in trainable.layers.values():
            layer.up.normal_()  # a LoRA that acts, so that the down tensors get gradients too
    latent = torch.randn(1, model.unet.config.in_channels, 8, 8, dtype=torch.bfloat16)
    with trainable.applied(model):
        cond = trainable.conditioning(model, ["a red ball"])
        out = model.unet(latent, torch.tensor([500]), encoder_hidden_states=cond.context).sample
        assert out.dtype == torch.bfloat16
        out.float().pow(2).mean().backward()
    params = trainable.parameters()
    assert {p.dtype for p in params} == {torch.float32}
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and bool(p.grad.abs().sum() > 0) for p in params)


def test_a_lycoris_file_or_a_layer_of_another_kind_is_not_continued(tmp_path, model):
    from safetensors.torch import save_file

    from oneword.kinds.lora import fit_problems

    key = next(iter(places(model, "attn")))
    path = tmp_path / "loha.safetensors"
    save_file({f"{key}.{part}": torch.ones(4, 4) for part in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")},
              str(path))
    with pytest.raises(OnewordError, match=f"^{path}: "):
        LORA.read(path, model)

    class Loha:
        pass

    lora = Lora("zqx", {key: Loha()})
    assert fit_problems(lora, places(model)) == [f"{key}: a Loha, not a LoRA/LoCon layer training can continue"]


def _files(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_rank_other_than_the_continued_files_is_refused_before_anything_is_written(tmp_path, model):
    train(lora_settings(tmp_path, rank=4, max_steps=2, save_every=2, validate_every=0), model, device="cpu")
    before = _files(tmp_path)
    with pytest.raises(OnewordError) as error:
        train(lora_settings(tmp_path, rank=8, max_steps=4, save_every=2, validate_every=0, resume=True), model,
              device="cpu")
    (checkpoint,) = (tmp_path / "log").glob("*/zqx/lora/zqx-2.safetensors")
    assert str(error.value) == (f"--rank 8: {checkpoint} has rank 4, and training continues it with its own: leave "
                                "--rank out, or choose another NAME for a new LoRA")
    assert _files(tmp_path) == before
    resumed = train(lora_settings(tmp_path, max_steps=4, save_every=2, validate_every=0, resume=True), model,
                    device="cpu")  # --rank left out (the default 16): the file's 4 goes on
    assert resumed.reason == "done" and {layer.rank for layer in LORA.read(resumed.embedding_path, model).layers
                                         .values()} == {4}


def test_a_lora_run_does_not_continue_a_pivotal_runs_file(tmp_path, model):
    pivotal = dict(kind="pivotal", vectors_lr="0.05", max_steps=2, save_every=2, validate_every=0)
    train(lora_settings(tmp_path, **pivotal), model, device="cpu")
    before = _files(tmp_path)
    with pytest.raises(OnewordError) as error:
        train(lora_settings(tmp_path, max_steps=4, save_every=2, validate_every=0, resume=True), model, device="cpu")
    assert str(error.value) == (f"{tmp_path / 'lora' / 'zqx.safetensors'}: bundles the word zqx (a pivotal run's "
                                "file), which a lora run would drop: continue it with --kind pivotal, or choose "
                                "another NAME")
    assert _files(tmp_path) == before

"""Single-file checkpoints in the original layout: save a model, load it back, compare every tensor."""

from __future__ import annotations

import socket

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import oneword
from oneword.models.export import save_single_file
from oneword.models.folder import save_diffusers_folder

KINDS = ["sd1", "sd2", "sd2-v", "sdxl"]
SAMPLING_FIELDS = ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "prediction_type",
                   "steps_offset", "timestep_spacing")


def weights(model) -> dict[str, torch.Tensor]:
    """Every tensor of a model, named by part."""
    parts = {"unet": model.unet, "vae": model.vae, **{e.spec.key: e.model for e in model.encoders}}
    return {f"{part}/{k}": t for part, module in parts.items() for k, t in module.state_dict().items()}


def assert_same_weights(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    differ = [k for k in wa if wa[k].dtype != wb[k].dtype or not torch.equal(wa[k], wb[k])]
    assert differ == []


def text_configs(model) -> list[dict]:
    fields = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "max_position_embeddings", "projection_dim", "hidden_act")
    return [{f: getattr(e.model.config, f) for f in fields} for e in model.encoders]


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_every_weight(tiny_models, tmp_path, kind, suffix):
    source = tiny_models(kind)
    path = tmp_path / f"model{suffix}"  # a name that says nothing: sd2-v needs its prediction type
    save_single_file(source, path)
    override = "v_prediction" if kind == "sd2-v" and suffix == ".ckpt" else None
    loaded = oneword.load_base(path, prediction_type=override)

    assert (loaded.kind, loaded.prediction_type, loaded.name) == (kind, source.prediction_type, "model")
    assert loaded.source == path
    assert_same_weights(loaded, source)
    assert not any(t.is_meta for t in weights(loaded).values())
    assert all(t.data_ptr() % 64 == 0 for t in weights(loaded).values() if t.numel())  # aligned like any tensor
    assert text_configs(loaded) == text_configs(source)
    unet_fields = ("block_out_channels", "layers_per_block", "down_block_types", "up_block_types",
                   "cross_attention_dim", "attention_head_dim", "transformer_layers_per_block",
                   "use_linear_projection", "addition_time_embed_dim", "projection_class_embeddings_input_dim",
                   "in_channels", "out_channels", "upcast_attention")
    assert {f: loaded.unet.config[f] for f in unet_fields} == {f: source.unet.config[f] for f in unet_fields}
    vae_fields = ("block_out_channels", "layers_per_block", "latent_channels", "scaling_factor")
    assert {f: loaded.vae.config[f] for f in vae_fields} == {f: source.vae.config[f] for f in vae_fields}
    if suffix == ".safetensors":  # the ModelSpec resolution carries the default image size
        assert loaded.unet.config.sample_size == source.unet.config.sample_size == 8
        assert loaded.vae.config.sample_size == 64
    assert not any(p.requires_grad for p in loaded.unet.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_single_file_matches_its_diffusers_folder(tiny_models, tmp_path, kind):
    source = tiny_models(kind)
    save_diffusers_folder(source, tmp_path / "folder")
    save_single_file(source, tmp_path / "model.safetensors")
    from_folder = oneword.load_base(tmp_path / "folder")
    from_file = oneword.load_base(tmp_path / "model.safetensors")

    assert from_file.kind == from_folder.kind == kind
    assert_same_weights(from_file, from_folder)
    assert ({f: from_file.scheduler_config[f] for f in SAMPLING_FIELDS}
            == {f: from_folder.scheduler_config[f] for f in SAMPLING_FIELDS})


@pytest.mark.parametrize("kind", ["sd1", "sd2-v", "sdxl"])
def test_single_files_draw_the_same_image_as_the_model_and_its_folder(tiny_models, tmp_path, kind):
    # SDXL: both encoders, the pooled vector and the size conditioning all take part (weights: tested above)
    import numpy as np

    from oneword.generate.config import GenerateConfig
    from oneword.generate.txt2img import generate

    source = tiny_models(kind)
    save_diffusers_folder(source, tmp_path / "folder")
    save_single_file(source, tmp_path / "model-v.safetensors")
    save_single_file(source, tmp_path / "model-v.ckpt")
    # a .ckpt cannot say its native size (the tiny models draw at 64, the kind's default is larger): set it
    config = GenerateConfig(prompt="a photo of a cat", negative="blurry", seed=5, steps=2, sampler="euler",
                            width=64, height=64)
    drawn = {
        name: np.asarray(generate(model, config)[0].image).astype(int)
        for name, model in [("source", source),
                            ("safetensors", oneword.load_base(tmp_path / "model-v.safetensors")),
                            ("ckpt", oneword.load_base(tmp_path / "model-v.ckpt")),
                            ("folder", oneword.load_base(tmp_path / "folder"))]
    }
    assert drawn["source"].shape == (64, 64, 3) and drawn["source"].std() > 0  # a real picture, not a flat fill
    for name in ("safetensors", "ckpt", "folder"):
        assert np.array_equal(drawn[name], drawn["source"]), name


def test_fp16_file_stays_fp16(tiny_models, tmp_path):
    source = tiny_models("sd1")
    save_single_file(source, tmp_path / "half.safetensors", dtype=torch.float16)
    loaded = oneword.load_base(tmp_path / "half.safetensors")
    got = weights(loaded)
    want = {k: t.half() if t.is_floating_point() else t for k, t in weights(source).items()}
    assert {t.dtype for t in got.values()} == {torch.float16}
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_exported_layout_has_the_original_names_and_shapes(tiny_models, tmp_path):
    save_single_file(tiny_models("sd2"), tmp_path / "sd2.safetensors")
    save_single_file(tiny_models("sdxl"), tmp_path / "sdxl.safetensors")
    save_single_file(tiny_models("sd1"), tmp_path / "sd1.ckpt")
    sd2 = load_file(tmp_path / "sd2.safetensors")
    sdxl = load_file(tmp_path / "sdxl.safetensors")
    sd1 = torch.load(tmp_path / "sd1.ckpt", weights_only=True)["state_dict"]

    # tiny SD 1.x: 2 levels, 1 resnet each, attention on the first level only
    assert sd1["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].shape == (32, 64)
    assert sd1["model.diffusion_model.input_blocks.2.0.op.weight"].shape == (32, 32, 3, 3)
    assert sd1["model.diffusion_model.output_blocks.1.1.conv.weight"].shape == (64, 64, 3, 3)  # upsampler
    assert sd1["model.diffusion_model.middle_block.1.proj_in.weight"].shape == (64, 64, 1, 1)
    assert sd1["first_stage_model.encoder.mid.attn_1.q.weight"].shape == (32, 32, 1, 1)
    assert sd1["first_stage_model.decoder.up.3.upsample.conv.weight"].shape == (32, 32, 3, 3)
    assert "first_stage_model.decoder.up.0.upsample.conv.weight" not in sd1
    assert torch.equal(sd1["cond_stage_model.transformer.text_model.embeddings.position_ids"],
                       torch.arange(77).unsqueeze(0))
    # SD 2.x: OpenCLIP layout, the 2 diffusers layers plus one zero layer, a zero projection (64 -> 32)
    blocks = {k.split(".")[4] for k in sd2 if k.startswith("cond_stage_model.model.transformer.resblocks.")}
    assert blocks == {"0", "1", "2"}
    assert sd2["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"].shape == (192, 64)
    extra = [t for k, t in sd2.items() if k.startswith("cond_stage_model.model.transformer.resblocks.2.")]
    assert len(extra) == 12 and all(not t.any() for t in extra)
    assert sd2["cond_stage_model.model.text_projection"].shape == (64, 32)
    assert sd2["cond_stage_model.model.positional_embedding"].shape == (77, 64)
    assert sd2["model.diffusion_model.middle_block.1.proj_in.weight"].shape == (128, 128)
    # SDXL: CLIP-L in transformers' layout, bigG in OpenCLIP's, the size conditioning in label_emb
    assert sdxl["conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"].shape == (64,)
    assert sdxl["conditioner.embedders.1.model.text_projection"].shape == (128, 128)
    assert sdxl["model.diffusion_model.label_emb.0.0.weight"].shape == (256, 176)
    assert sdxl["model.diffusion_model.input_blocks.3.1.transformer_blocks.1.attn1.to_q.weight"].shape == (128, 128)
    with safe_open(tmp_path / "sdxl.safetensors", "pt") as f:
        meta = f.metadata()
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base"
    assert (meta["modelspec.resolution"], meta["modelspec.prediction_type"]) == ("64x64", "epsilon")


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
def test_diffusers_own_single_file_loader_reads_the_export(tiny_models, tmp_path, kind):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    source = tiny_models(kind)
    save_diffusers_folder(source, tmp_path / "config")
    save_single_file(source, tmp_path / "model.safetensors")
    cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_single_file(str(tmp_path / "model.safetensors"), config=str(tmp_path / "config"),
                                local_files_only=True)
    modules = [(source.unet, pipe.unet), (source.vae, pipe.vae), (source.encoders[0].model, pipe.text_encoder)]
    if kind == "sdxl":
        modules.append((source.encoders[1].model, pipe.text_encoder_2))
    for ours, theirs in modules:
        a, b = ours.state_dict(), theirs.state_dict()
        assert sorted(a) == sorted(b)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_loss_and_buffer_keys_are_ignored(tiny_models, tmp_path):
    source = tiny_models("sd1")
    save_single_file(source, tmp_path / "plain.safetensors")
    tensors = load_file(tmp_path / "plain.safetensors")
    tensors.update({
        "model_ema.decay": torch.tensor(0.9999),
        "model_ema.diffusion_modelinput_blocks00weight": torch.randn(32, 4, 3, 3),
        "first_stage_model.loss.logvar": torch.zeros(()),
        "first_stage_model.loss.discriminator.main.0.weight": torch.randn(8, 3, 4, 4),
        "cond_stage_model.transformer.text_model.logit_scale": torch.tensor(4.6),
        "betas": torch.linspace(0.00085, 0.012, 1000),
        "alphas_cumprod": torch.ones(1000),
    })
    save_file(tensors, tmp_path / "full.safetensors")
    assert_same_weights(oneword.load_base(tmp_path / "full.safetensors"), source)


def test_checkpoint_as_a_bare_state_dict(tiny_models, tmp_path):
    source = tiny_models("sdxl")
    save_single_file(source, tmp_path / "wrapped.ckpt")
    state = torch.load(tmp_path / "wrapped.ckpt", weights_only=True)["state_dict"]
    torch.save(state, tmp_path / "bare.ckpt")
    assert_same_weights(oneword.load_base(tmp_path / "bare.ckpt"), source)


@pytest.mark.parametrize(
    ("name", "metadata", "override", "kind", "prediction"),
    [
        ("v2-1_768-ema-pruned.ckpt", None, None, "sd2-v", "v_prediction"),
        ("768-v-ema.ckpt", None, None, "sd2-v", "v_prediction"),
        ("mymodel-v.ckpt", None, None, "sd2-v", "v_prediction"),
        ("mymodel_vpred.ckpt", None, None, "sd2-v", "v_prediction"),
        ("v2-1_512-ema-pruned.ckpt", None, None, "sd2", "epsilon"),
        ("mymodel-v2.ckpt", None, None, "sd2", "epsilon"),  # a version number, not v-prediction
        ("vanilla.ckpt", None, None, "sd2", "epsilon"),
        ("v2-1_768-ema-pruned.ckpt", None, "epsilon", "sd2", "epsilon"),  # --prediction-type wins
        ("plain.safetensors", {"modelspec.prediction_type": "v"}, None, "sd2-v", "v_prediction"),
        ("768.safetensors", {"modelspec.prediction_type": "epsilon"}, None, "sd2", "epsilon"),
        ("plain.safetensors", {"ss_v_parameterization": "True"}, None, "sd2-v", "v_prediction"),
    ],
)
def test_sd2_prediction_type_rule(tiny_models, tmp_path, name, metadata, override, kind, prediction):
    source = tiny_models("sd2")
    path = tmp_path / name
    if metadata is None:
        save_single_file(source, path)
    else:
        save_single_file(source, tmp_path / "export.safetensors")
        save_file(load_file(tmp_path / "export.safetensors"), path, metadata=metadata)
    loaded = oneword.load_base(path, prediction_type=override)
    assert (loaded.kind, loaded.prediction_type) == (kind, prediction)
    assert loaded.scheduler_config["prediction_type"] == prediction
    assert loaded.unet.config.upcast_attention is (kind == "sd2-v")  # from the kind's shipped config


def test_name_rule_is_for_sd2_only_and_v_pred_key_is_honoured(tiny_models, tmp_path):
    save_single_file(tiny_models("sdxl"), tmp_path / "export.safetensors")
    tensors = load_file(tmp_path / "export.safetensors")
    save_file(tensors, tmp_path / "xl-768-v.safetensors")
    assert oneword.load_base(tmp_path / "xl-768-v.safetensors").prediction_type == "epsilon"
    save_file({**tensors, "v_pred": torch.zeros(0)}, tmp_path / "marked.safetensors")
    loaded = oneword.load_base(tmp_path / "marked.safetensors")
    assert (loaded.kind, loaded.prediction_type) == ("sdxl", "v_prediction")


def test_loading_never_opens_a_connection(tiny_models, tmp_path, monkeypatch):
    source = tiny_models("sdxl")
    save_single_file(source, tmp_path / "model.safetensors")
    save_diffusers_folder(source, tmp_path / "folder")
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from_file = oneword.load_base(tmp_path / "model.safetensors")
    from_folder = oneword.load_base(tmp_path / "folder")
    assert attempts == []
    assert_same_weights(from_file, from_folder)


def test_layouts_a1111_renames_load_too(tiny_models, tmp_path):
    # SD 1.x text encoders saved by old transformers (no `text_model.`), SD 2.x turbo's SGM-style encoder name
    for kind, old, new in [
        ("sd1", "cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."),
        ("sd2", "cond_stage_model.model.", "conditioner.embedders.0.model."),
    ]:
        source = tiny_models(kind)
        save_single_file(source, tmp_path / f"{kind}.safetensors")
        tensors = {k.replace(old, new, 1): v for k, v in load_file(tmp_path / f"{kind}.safetensors").items()}
        assert sum(k.startswith(new) for k in tensors) > 20
        torch.save({"state_dict": tensors}, tmp_path / f"{kind}-renamed.ckpt")
        loaded = oneword.load_base(tmp_path / f"{kind}-renamed.ckpt")
        assert loaded.kind == kind
        assert_same_weights(loaded, source)

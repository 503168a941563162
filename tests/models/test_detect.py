"""Kind detection and config inference from the names and shapes of a checkpoint's tensors."""

from __future__ import annotations

import pytest
from diffusers.loaders.single_file_utils import infer_diffusers_model_type

from oneword.errors import OnewordError
from oneword.models.build import build_model
from oneword.models.detect import detect_kind, infer_config
from oneword.models.export import original_state_dict
from oneword.models.kinds import kind_config
from oneword.models.tiny import tiny_config

DETECTED = {"sd1": "sd1", "sd2": "sd2", "sd2-v": "sd2", "sdxl": "sdxl"}
TEXT_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "max_position_embeddings", "projection_dim", "hidden_act")


def shapes_of(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(t.shape) for k, t in original_state_dict(model).items()}


@pytest.fixture(scope="module")
def full_size_shapes():
    """Key shapes of full-size models of each kind, built on the meta device (no memory, no weights)."""
    cache = {}

    def get(kind):
        if kind not in cache:
            cache[kind] = shapes_of(build_model(kind, kind_config(kind), name=kind, empty=True))
        return cache[kind]

    return get


def assert_config_matches(inferred: dict, wanted: dict) -> None:
    for section in ("unet", "vae"):
        fields = {k for k in wanted[section] if not k.startswith("_") and k != "sample_size"}
        assert {k: inferred[section][k] for k in fields} == {k: wanted[section][k] for k in fields}, section
    got = [{f: e["config"][f] for f in TEXT_FIELDS} for e in inferred["text_encoders"]]
    assert got == [{f: e["config"][f] for f in TEXT_FIELDS} for e in wanted["text_encoders"]]
    assert inferred["scheduler"] == wanted["scheduler"]


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sd2-v", "sdxl"])
def test_tiny_kinds_are_detected_and_their_config_inferred(tiny_models, kind):
    shapes = shapes_of(tiny_models(kind))
    assert detect_kind(shapes) == DETECTED[kind]
    assert_config_matches(infer_config(kind, shapes), tiny_config(kind))


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
def test_full_size_kinds_give_back_the_shipped_config(full_size_shapes, kind):
    shapes = full_size_shapes(kind)
    assert detect_kind(shapes) == kind
    assert_config_matches(infer_config(kind, shapes), kind_config(kind))


@pytest.mark.parametrize(("kind", "diffusers_type"), [("sd1", "v1"), ("sd2", "v2"), ("sdxl", "xl_base")])
def test_diffusers_recognises_the_exported_layout(full_size_shapes, kind, diffusers_type):
    import torch

    # diffusers' own detection reads a few fixed key names of real checkpoints and the shape of one of them
    checkpoint = {k: torch.empty(s, device="meta") for k, s in full_size_shapes(kind).items()}
    assert infer_diffusers_model_type(checkpoint) == diffusers_type


def test_full_size_key_facts(full_size_shapes):
    sd1, sd2, sdxl = full_size_shapes("sd1"), full_size_shapes("sd2"), full_size_shapes("sdxl")
    # names and shapes as in v1-5-pruned-emaonly, v2-1_768-ema-pruned and sd_xl_base_1.0
    assert sd1["model.diffusion_model.output_blocks.11.0.skip_connection.weight"] == (320, 640, 1, 1)
    assert sd1["model.diffusion_model.output_blocks.2.1.conv.weight"] == (1280, 1280, 3, 3)
    assert sd1["model.diffusion_model.output_blocks.5.2.conv.weight"] == (1280, 1280, 3, 3)
    assert sd1["model.diffusion_model.input_blocks.3.0.op.weight"] == (320, 320, 3, 3)
    assert sd1["first_stage_model.encoder.mid.attn_1.q.weight"] == (512, 512, 1, 1)
    assert sd1["cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight"] == (768, 3072)
    assert sd2["cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight"] == (3072, 1024)
    assert "cond_stage_model.model.transformer.resblocks.24.attn.in_proj_weight" not in sd2
    assert sd2["cond_stage_model.model.positional_embedding"] == (77, 1024)
    assert sd2["model.diffusion_model.input_blocks.1.1.proj_in.weight"] == (320, 320)
    assert sdxl["model.diffusion_model.label_emb.0.0.weight"] == (1280, 2816)
    assert sdxl["model.diffusion_model.input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight"] == (1280, 2048)
    assert sdxl["conditioner.embedders.1.model.transformer.resblocks.31.mlp.c_fc.weight"] == (5120, 1280)
    assert sdxl["conditioner.embedders.1.model.text_projection"] == (1280, 1280)
    assert sdxl["conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"] == (49408, 768)
    assert len([k for k in sdxl if k.startswith("model.diffusion_model.")]) == 1680


def test_sd2_text_encoder_drops_the_last_resblock(full_size_shapes):
    config = infer_config("sd2", full_size_shapes("sd2"))
    assert config["text_encoders"][0]["config"]["num_hidden_layers"] == 23  # 24 resblocks in the file


def test_not_a_checkpoint_names_what_was_found():
    with pytest.raises(OnewordError) as e:
        detect_kind({"string_to_param.*": (1, 768), "string_to_token.*": (1,)})
    assert str(e.value) == ("not a Stable Diffusion checkpoint (no model.diffusion_model keys; "
                            "2 tensors, looks like a textual inversion embedding)")
    with pytest.raises(OnewordError) as e:
        detect_kind({"down_blocks.0.resnets.0.conv1.weight": (320, 320, 3, 3)})
    assert "diffusers-format weights" in str(e.value)
    with pytest.raises(OnewordError) as e:
        detect_kind({"alpha": (3,), "beta": (4,), "gamma": (5,), "delta": (6,)})
    assert str(e.value).endswith("4 tensors: alpha, beta, delta, ...)")


def test_unknown_context_width(full_size_shapes):
    shapes = {k: s for k, s in full_size_shapes("sd1").items() if not k.startswith("cond_stage_model.")}
    shapes = {k: (s[0], 4096) if k.endswith("attn2.to_k.weight") else s for k, s in shapes.items()}
    with pytest.raises(OnewordError) as e:
        detect_kind(shapes)
    assert str(e.value) == "unknown architecture: UNet with context width 4096 and no text encoder keys"


def test_context_width_must_match_the_text_encoder(full_size_shapes):
    shapes = {k: (s[0], 4096) if k.endswith("attn2.to_k.weight") else s for k, s in full_size_shapes("sd1").items()}
    with pytest.raises(OnewordError) as e:
        detect_kind(shapes)
    assert str(e.value) == "unknown architecture: UNet with context width 4096 but text encoder width 768 (sd1 layout)"


def test_unet_only_file_is_detected_by_context_width(full_size_shapes):
    for kind in ("sd1", "sd2", "sdxl"):
        shapes = {k: s for k, s in full_size_shapes(kind).items() if k.startswith("model.diffusion_model.")}
        assert detect_kind(shapes) == kind


def test_inpainting_and_refiner_are_refused(full_size_shapes):
    shapes = dict(full_size_shapes("sd1"))
    shapes["model.diffusion_model.input_blocks.0.0.weight"] = (320, 9, 3, 3)
    with pytest.raises(OnewordError, match="UNet with 9 input channels"):
        detect_kind(shapes)
    refiner = {k.replace("conditioner.embedders.1.", "conditioner.embedders.0."): s
               for k, s in full_size_shapes("sdxl").items() if not k.startswith("conditioner.embedders.0.")}
    with pytest.raises(OnewordError, match="SDXL refiner"):
        detect_kind(refiner)

"""A file laid out exactly as kohya's sd-scripts names a LoCon's modules loads with every layer in place and changes
what is drawn. The key list is built here from kohya's rules, not from oneword/lora/names.py.

kohya (networks/lora.py, `create_modules`): for every module whose class is a target (`Transformer2DModel`, and for
LoCon `ResnetBlock2D`, `Downsample2D`, `Upsample2D`; text encoders `CLIPAttention`, `CLIPSdpaAttention`, `CLIPMLP`),
each Linear or Conv2d child gets `lora_name = prefix + "." + name + "." + child_name` with dots replaced by `_`;
prefixes `lora_unet`, `lora_te`, SDXL `lora_te1` / `lora_te2`. SD 1.x's UNet (library/original_unet.py) keeps
diffusers' names; SDXL's (library/sdxl_original_unet.py) keeps SGM's: input_blocks.N.0 a ResnetBlock2D with
`in_layers.2`, `emb_layers.1`, `out_layers.3`, `skip_connection`, input_blocks.N.1 a Transformer2DModel,
Downsample2D's conv `op`, Upsample2D's `conv`, middle_block.0/1/2. So real SDXL files name
`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q` (down block 1, 2 layers a block: 1 + 1 * 3 + 0) and
`lora_unet_input_blocks_3_0_op` (down block 0's downsampler: 1 + 0 * 3 + 2).
"""

from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import save_file

from oneword.generate.config import GenerateConfig
from oneword.generate.txt2img import generate
from oneword.lora.fit import fit
from oneword.lora.library import LoraLibrary
from oneword.lora.names import places
from oneword.lora.read import read_lora

UNET_TARGETS = ("Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D")
TE_TARGETS = ("CLIPAttention", "CLIPSdpaAttention", "CLIPMLP")
SGM_RESNET = {"conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "conv2": "out_layers.3",
              "conv_shortcut": "skip_connection"}


def _sgm(path: str, per_block: int, up_attention: list[bool]) -> str:
    """SDXL: the SGM path of a diffusers module path (block index arithmetic of the SGM UNet)."""
    parts = path.split(".")
    if parts[0] == "mid_block":
        where = {"resnets.0": "0", "attentions.0": "1", "resnets.1": "2"}[f"{parts[1]}.{parts[2]}"]
        head, rest = f"middle_block.{where}", parts[3:]
    else:
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        if parts[0] == "down_blocks":
            layer = per_block if kind == "downsamplers" else index
            head = f"input_blocks.{1 + block * (per_block + 1) + layer}.{1 if kind == 'attentions' else 0}"
        else:
            layer = per_block if kind == "upsamplers" else index
            slot = {"resnets": 0, "attentions": 1, "upsamplers": 2 if up_attention[block] else 1}[kind]
            head = f"output_blocks.{block * (per_block + 1) + layer}.{slot}"
        if kind == "downsamplers":
            rest = ["op"]
    if rest and rest[0] in SGM_RESNET and "resnets" in path:
        rest = [SGM_RESNET[rest[0]], *rest[1:]]
    return ".".join([head, *rest])


def kohya_keys(model) -> dict[str, torch.Size]:
    """kohya's LoCon key -> the weight shape of its module, by kohya's rules."""
    config = model.unet.config
    up_attention = ["CrossAttn" in t for t in config.up_block_types]
    keys = {}
    for name, module in model.unet.named_modules():
        if type(module).__name__ in UNET_TARGETS:
            for child_name, child in module.named_modules():
                if isinstance(child, (torch.nn.Linear, torch.nn.Conv2d)):
                    path = f"{name}.{child_name}"
                    path = _sgm(path, config.layers_per_block, up_attention) if model.is_sdxl else path
                    keys["lora_unet_" + path.replace(".", "_")] = child.weight.shape
    prefixes = ["lora_te1", "lora_te2"] if model.is_sdxl else ["lora_te"]
    for prefix, encoder in zip(prefixes, model.encoders, strict=True):
        for name, module in encoder.model.named_modules():
            if type(module).__name__ in TE_TARGETS:
                for child_name, child in module.named_modules():
                    if isinstance(child, torch.nn.Linear):
                        # kohya's CLIPTextModel (transformers 4) holds its layers under `text_model.`
                        path = name if name.startswith("text_model.") else f"text_model.{name}"
                        keys[f"{prefix}_{path}_{child_name}".replace(".", "_")] = child.weight.shape
    return keys


def kohya_file(model, path, rank: int = 4, seed: int = 0) -> dict[str, torch.Size]:
    """Write a LoCon safetensors file with kohya's keys and random weights; its keys and shapes."""
    generator = torch.Generator().manual_seed(seed)
    keys = kohya_keys(model)
    tensors = {}
    for key, shape in keys.items():
        kernel = tuple(shape[2:])
        tensors[f"{key}.lora_down.weight"] = (torch.randn((rank, shape[1], *kernel), generator=generator) * .2).half()
        tensors[f"{key}.lora_up.weight"] = (torch.randn((shape[0], rank, *(1,) * len(kernel)),
                                                        generator=generator) * .2).half()
        tensors[f"{key}.alpha"] = torch.tensor(float(rank)).half()
    save_file(tensors, str(path), {"ss_network_module": "networks.lora"})
    return keys


def test_kohya_s_sdxl_names_are_the_sgm_names_of_its_code(tiny_models):
    keys = kohya_keys(tiny_models("sdxl"))  # the tiny SDXL: 1 layer a block, down blocks [plain, cross-attention]
    assert "lora_unet_input_blocks_2_0_op" in keys  # down block 0's downsampler: 1 + 0 * 2 + 1
    assert "lora_unet_input_blocks_3_1_transformer_blocks_1_attn2_to_k" in keys  # down block 1, layer 0
    assert "lora_unet_output_blocks_1_2_conv" in keys  # up block 0 (cross-attention), layer 1: the upsampler
    assert "lora_unet_input_blocks_1_0_in_layers_2" in keys and "lora_unet_middle_block_2_emb_layers_1" in keys
    assert "lora_te2_text_model_encoder_layers_1_mlp_fc2" in keys


def test_a_kohya_file_fits_every_layer_of_sd1_and_sdxl_and_changes_the_picture(tiny_models, tmp_path):
    for kind in ("sd1", "sdxl"):
        model = tiny_models(kind)
        folder = tmp_path / kind
        folder.mkdir()
        keys = kohya_file(model, folder / "kohya.safetensors")
        assert set(keys) == set(places(model))  # oneword's names are kohya's, layer for layer
        lora = read_lora(folder / "kohya.safetensors")
        fitted = fit(lora, model)
        assert (len(fitted.layers), fitted.skipped) == (len(keys), {})
        config = GenerateConfig(prompt="a cat", seed=1, steps=2)
        plain = np.asarray(generate(model, config)[0].image)
        with_lora = generate(model, GenerateConfig(prompt="a cat <lora:kohya:1>", seed=1, steps=2), {},
                             LoraLibrary.scan(folder))[0]
        assert np.abs(plain.astype(int) - np.asarray(with_lora.image).astype(int)).max() > 10

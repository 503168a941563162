"""The CLIP scorer's plumbing, with a tiny random CLIP model saved as a transformers folder (no real weights here)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from cli_helpers import run_in_process
from train_helpers import write_images

from oneword.score.clip import edited_prompts, mean_pairwise_cosine, paired_cosine, without_name


def tiny_clip(folder):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, eos_token_id=49407),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    return folder


def test_the_metrics_are_the_papers_cosines():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0]])
    assert mean_pairwise_cosine(a, b) == 0.5
    assert paired_cosine(a, torch.tensor([[1.0, 0.0], [0.0, -1.0]])) == 0.0
    assert without_name("a photo of zqx on the beach", "zqx") == "a photo of on the beach"


def test_prompt_fidelity_compares_with_the_text_without_its_prompt_tags():
    # a tag is drawn with (the sample goes through generate's tag registry) but is no word of the text compared
    hypernetwork = SimpleNamespace(template="subject", trigger_word=None, captions=("a red ball <hypernet:hx:0.5>",))
    assert edited_prompts(hypernetwork, 2) == (
        ["a photo of a red ball <hypernet:hx:0.5> on the beach", "a photo of a red ball <hypernet:hx:0.5> in the snow"],
        ["a photo of a red ball  on the beach", "a photo of a red ball  in the snow"])


def test_train_with_clip_scores_every_checkpoint(tmp_path, monkeypatch, capsys):
    clip = tiny_clip(tmp_path / "clip")
    write_images(tmp_path / "data")
    code, out, err = run_in_process(
        monkeypatch, capsys, "train", "zqx", "--data", str(tmp_path / "data"), "--model", "tiny-sd1",
        "--init-text", "ball", "--max-steps", "4", "--save-every", "2", "--preview-every", "0", "--batch-size", "2",
        "--score-samples", "2", "--clip", str(clip), "--log-dir", str(tmp_path / "log"),
        "--embeddings-dir", str(tmp_path / "emb"),
    )
    assert code == 0, err
    (summary,) = (tmp_path / "log").glob("*/zqx/checkpoints.csv")
    lines = summary.read_text().splitlines()
    assert lines[0] == "step,val_loss,clip_image,clip_text,best"
    assert [line.split(",")[0] for line in lines[1:]] == ["2", "4"]
    for line in lines[1:]:
        image, text = (float(v) for v in line.split(",")[2:4])
        assert -1 <= image <= 1 and -1 <= text <= 1
    assert sum(line.endswith(",*") for line in lines[1:]) == 1
    assert "best by clip_image" in out  # the summary table's title


def write_open_clip(model, folder, quick_gelu: bool):
    """The tiny CLIP in open_clip's layout: open_clip's names, packed q/k/v, projections as matrices."""
    import json

    from safetensors.torch import save_file

    blocks = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
              "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    names = {"vision_model.embeddings.class_embedding": "visual.class_embedding",
             "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
             "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
             "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding", "logit_scale": "logit_scale"}
    modules = {"vision_model.pre_layrnorm": "visual.ln_pre", "vision_model.post_layernorm": "visual.ln_post",
               "text_model.final_layer_norm": "ln_final"}
    state, hf = {}, model.state_dict()
    for key, tensor in hf.items():
        module, _, kind = key.rpartition(".")
        if key in names:
            state[names[key]] = tensor
        elif module in modules:
            state[f"{modules[module]}.{kind}"] = tensor
        elif key == "visual_projection.weight":
            state["visual.proj"] = tensor.T.contiguous()
        elif key == "text_projection.weight":
            state["text_projection"] = tensor.T.contiguous()
        elif ".encoder.layers." in key:
            tower = "visual.transformer" if key.startswith("vision") else "transformer"
            index, name = key.split(".encoder.layers.", 1)[1].split(".", 1)
            if name.startswith("self_attn.q_proj."):
                kind = name.rsplit(".", 1)[1]
                parts = [hf[key.replace("q_proj", p)] for p in ("q_proj", "k_proj", "v_proj")]
                state[f"{tower}.resblocks.{index}.attn.in_proj_{kind}"] = torch.cat(parts)
            elif name.rsplit(".", 1)[0] in blocks:
                module, kind = name.rsplit(".", 1)
                state[f"{tower}.resblocks.{index}.{blocks[module]}.{kind}"] = tensor
    folder.mkdir()
    save_file(state, folder / "open_clip_model.safetensors")
    cfg = {"model_cfg": {"embed_dim": 16, "quick_gelu": quick_gelu,
                         # 37 MLP units on a width of 32, as the tiny model has
                         "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 8,
                                        "mlp_ratio": 37 / 32},
                         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2,
                                      "mlp_ratio": 37 / 32}}}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))


def test_an_open_clip_folder_gives_the_same_features_as_the_transformers_one(tmp_path):
    from PIL import Image
    from transformers import CLIPModel

    from oneword.score.clip import ClipFeatures

    hf_folder = tiny_clip(tmp_path / "hf")
    model = CLIPModel.from_pretrained(hf_folder)
    write_open_clip(model, tmp_path / "oc", quick_gelu=model.config.text_config.hidden_act == "quick_gelu")
    ours, reference = ClipFeatures.load(tmp_path / "oc"), ClipFeatures.load(hf_folder)
    images = [Image.new("RGB", (40, 48), (200, 30, 60)), Image.new("RGB", (32, 32), (10, 180, 90))]
    assert torch.allclose(ours.images(images), reference.images(images), atol=1e-5)
    texts = ["a photo of a cat", "a red circle"]
    assert torch.allclose(ours.texts(texts), reference.texts(texts), atol=1e-5)


def test_a_folder_that_is_no_clip_model_is_one_clear_error(tmp_path):
    from oneword.errors import OnewordError
    from oneword.score.clip import ClipFeatures

    (tmp_path / "empty").mkdir()
    try:
        ClipFeatures.load(tmp_path / "empty")
    except OnewordError as error:
        assert str(error).startswith(f"--clip {tmp_path / 'empty'}: not a CLIP model folder")
    else:
        raise AssertionError("an empty folder was accepted")


def _recorded_clip_run(tmp_path, monkeypatch, **changes):
    """A two-step run scored by CLIP; the prompts its samples were drawn from, and the texts CLIP compared them
    with."""
    from train_helpers import settings

    import oneword.score.clip as clip_score
    from oneword.models.tiny import build_tiny
    from oneword.train.loop import train

    drawn, compared = [], []
    real_generate, real_texts = clip_score.generate, clip_score.ClipFeatures.texts

    def generate(model, config, *args, **kwargs):
        drawn.append(config.prompt)
        return real_generate(model, config, *args, **kwargs)

    def texts(self, prompts):
        compared.extend(prompts)
        return real_texts(self, prompts)

    monkeypatch.setattr(clip_score, "generate", generate)
    monkeypatch.setattr(clip_score.ClipFeatures, "texts", texts)
    config = settings(tmp_path, max_steps=2, save_every=2, score_samples=2, clip=tiny_clip(tmp_path / "clip"),
                      **changes)
    finished = train(config, build_tiny("sd1", seed=0))
    assert sorted(finished.records[-1].scores) == ["clip_image", "clip_text"]
    return drawn, compared


def test_clip_scores_an_embedding_with_its_word_and_compares_with_the_prompt_without_it(tmp_path, monkeypatch):
    drawn, compared = _recorded_clip_run(tmp_path, monkeypatch)
    edits = ["a photo of zqx on the beach", "a photo of zqx in the snow"]
    assert drawn[2:] == edits  # after the two samples of training prompts
    assert compared == ["a photo of on the beach", "a photo of in the snow"]


def test_clip_does_not_put_a_hypernetworks_name_into_prompts_as_a_word(tmp_path, monkeypatch):
    drawn, compared = _recorded_clip_run(tmp_path, monkeypatch, kind="hypernetwork", learn_rate="0.001",
                                         template="hypernetwork", hypernetwork_dir=tmp_path / "hn")
    assert not any("zqx" in prompt for prompt in drawn + compared)
    edits = ["a photo of a red ball on the beach", "a photo of a blue ball, on grass in the snow"]
    assert drawn[2:] == edits  # the new contexts hold the training captions instead
    assert compared == edits

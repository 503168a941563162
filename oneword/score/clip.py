"""CLIP scores of a checkpoint, as in the Textual Inversion paper (Gal et al., 2022, section 5.1): image similarity
of samples to the training images, and prompt fidelity of samples drawn in new contexts to the prompt without the
new word. The CLIP model is a local folder (`--clip PATH`); nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oneword.conditioning.tags import parse_tags
from oneword.errors import OnewordError
from oneword.generate.txt2img import generate
from oneword.models.device import vae_beside_unet
from oneword.score.context import ScoreContext

if TYPE_CHECKING:
    from PIL import Image

OBJECT_EDITS = ("a photo of {} on the beach", "a photo of {} in the snow", "a painting of {}", "a photo of {} at night")
STYLE_EDITS = ("a house in the style of {}", "a cat, art by {}", "a mountain landscape, art by {}",
               "a portrait of a woman in the style of {}")
"""New contexts for prompt fidelity; style templates get the style edits."""


def mean_pairwise_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of rows of `a` (N, D) and `b` (M, D)."""
    a, b = torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)
    return float((a @ b.T).mean())


def paired_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of row i of `a` with row i of `b` (both (N, D))."""
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())


def without_name(prompt: str, name: str) -> str:
    """The prompt with the new word removed (the paper's text for prompt fidelity)."""
    return " ".join(prompt.replace(name, " ").split())


@dataclass
class ClipFeatures:
    """A CLIP model's image and text embeddings (the feature extractor; the metrics are the functions above)."""

    model: object
    tokenizer: object
    image_processor: object

    @classmethod
    def load(cls, path: Path) -> ClipFeatures:
        """A transformers CLIP folder (config.json and weights) or an open_clip one (open_clip_config.json and
        open_clip_model.safetensors or open_clip_pytorch_model.bin); the package's tokenizer when it has none."""
        from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

        path = Path(path)
        if (path / "config.json").is_file():
            try:
                model = CLIPModel.from_pretrained(path, local_files_only=True).eval()
            except (OSError, ValueError) as error:
                raise OnewordError(f"--clip {path}: cannot load a CLIP model from it ({error})") from None
        elif (path / OPEN_CLIP_CONFIG).is_file():
            model = load_open_clip(path)
        else:
            raise OnewordError(f"--clip {path}: not a CLIP model folder (no config.json or {OPEN_CLIP_CONFIG})")
        if (path / "vocab.json").is_file():
            tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
        else:
            from oneword.models.tokenizer import clip_tokenizer

            tokenizer = clip_tokenizer()
        if (path / "preprocessor_config.json").is_file():
            processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        else:
            size = model.config.vision_config.image_size
            processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                           **_open_clip_normalisation(path))
        return cls(model, tokenizer, processor)

    @torch.no_grad()
    def images(self, images: list[Image.Image]) -> torch.Tensor:
        """(N, D) image embeddings."""
        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        return _features(self.model.get_image_features(pixel_values=pixels.to(self.model.dtype)))

    @torch.no_grad()
    def texts(self, texts: list[str]) -> torch.Tensor:
        """(N, D) text embeddings."""
        max_length = self.model.config.text_config.max_position_embeddings
        ids = self.tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                             return_tensors="pt")
        return _features(self.model.get_text_features(input_ids=ids["input_ids"], attention_mask=ids["attention_mask"]))


OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def load_open_clip(path: Path):
    """An open_clip ViT folder as a transformers CLIPModel: the same network, its tensors renamed (and the packed
    attention projections split into q, k, v)."""
    import json

    from safetensors.torch import load_file
    from transformers import CLIPConfig, CLIPModel

    from oneword.safeload import load_pickle

    try:
        cfg = json.loads((path / OPEN_CLIP_CONFIG).read_text(encoding="utf-8"))["model_cfg"]
        vision, text = cfg["vision_cfg"], cfg["text_cfg"]
        act = "quick_gelu" if cfg.get("quick_gelu") else "gelu"
        config = CLIPConfig(
            projection_dim=cfg["embed_dim"],
            text_config=dict(vocab_size=text.get("vocab_size", 49408), hidden_size=text["width"],
                             intermediate_size=int(text["width"] * text.get("mlp_ratio", 4.0)),
                             num_hidden_layers=text["layers"], num_attention_heads=text["heads"],
                             max_position_embeddings=text.get("context_length", 77), hidden_act=act,
                             eos_token_id=49407),
            vision_config=dict(image_size=vision["image_size"], patch_size=vision["patch_size"],
                               hidden_size=vision["width"], num_hidden_layers=vision["layers"],
                               intermediate_size=int(vision["width"] * vision.get("mlp_ratio", 4.0)),
                               num_attention_heads=vision["width"] // vision.get("head_width", 64), hidden_act=act),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OnewordError(f"--clip {path}: {OPEN_CLIP_CONFIG} is not an open_clip ViT config ({error})") from None
    weights = next((path / name for name in OPEN_CLIP_WEIGHTS if (path / name).is_file()), None)
    if weights is None:
        raise OnewordError(f"--clip {path}: no weights ({' or '.join(OPEN_CLIP_WEIGHTS)})")
    state = load_file(weights) if weights.suffix == ".safetensors" else load_pickle(weights)
    model = CLIPModel(config).eval()
    renamed = open_clip_to_transformers(state)
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise OnewordError(f"--clip {weights}: does not fit its config (missing {missing[:3]}, unexpected "
                           f"{unexpected[:3]})")
    return model


_OPEN_CLIP_NAMES = {
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.ln_pre": "vision_model.pre_layrnorm",
    "visual.ln_post": "vision_model.post_layernorm",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final": "text_model.final_layer_norm",
    "logit_scale": "logit_scale",
}
_OPEN_CLIP_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
                    "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def _open_clip_normalisation(path: Path) -> dict:
    """image_mean/image_std from an open_clip folder's preprocess_cfg, when it gives them."""
    import json

    if not (path / OPEN_CLIP_CONFIG).is_file():
        return {}
    cfg = json.loads((path / OPEN_CLIP_CONFIG).read_text(encoding="utf-8")).get("preprocess_cfg", {})
    return {f"image_{k}": cfg[k] for k in ("mean", "std") if k in cfg}


def open_clip_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip tensor names (`visual.transformer.resblocks.N.attn.in_proj_weight`, ...) -> transformers CLIPModel."""
    out = {}
    for key, tensor in state.items():
        if key == "visual.proj":
            out["visual_projection.weight"] = tensor.T  # open_clip multiplies x @ proj; a Linear holds proj.T
        elif key == "text_projection":
            out["text_projection.weight"] = tensor.T
        elif ".transformer.resblocks." in key or key.startswith("transformer.resblocks."):
            tower = "vision_model" if key.startswith("visual.") else "text_model"
            rest = key.split("resblocks.", 1)[1]
            index, name = rest.split(".", 1)
            prefix = f"{tower}.encoder.layers.{index}"
            if name.startswith("attn.in_proj_"):
                kind = name.rsplit("_", 1)[1]  # weight or bias
                for proj, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                    out[f"{prefix}.self_attn.{proj}.{kind}"] = part
            else:
                module, kind = name.rsplit(".", 1)
                if module in _OPEN_CLIP_BLOCK:
                    out[f"{prefix}.{_OPEN_CLIP_BLOCK[module]}.{kind}"] = tensor
        else:
            module, _, kind = key.rpartition(".")
            if key in _OPEN_CLIP_NAMES:
                out[_OPEN_CLIP_NAMES[key]] = tensor
            elif module in _OPEN_CLIP_NAMES:
                out[f"{_OPEN_CLIP_NAMES[module]}.{kind}"] = tensor
    return out


def _features(output) -> torch.Tensor:
    """The projected embeddings (N, D) in float32, whether transformers returns a tensor or an output object."""
    return (output if isinstance(output, torch.Tensor) else output.pooler_output).float()


@dataclass
class ClipScorer:
    """`clip_image` (similarity to the training images, picks the best) and `clip_text` (prompt fidelity)."""

    clip: ClipFeatures
    samples: int = 8
    seed: int = 0
    key: str = "clip_image"
    _reference: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, samples: int = 8, seed: int = 0) -> ClipScorer:
        return cls(ClipFeatures.load(path), samples=samples, seed=seed)

    def _draw(self, context: ScoreContext, prompts: list[str]) -> list[Image.Image]:
        images = []
        with vae_beside_unet(context.model):
            for k, prompt in enumerate(prompts):
                config = context.sample_config(prompt, self.seed + k)
                images.append(generate(context.model, config, context.embeddings)[0].image)
        return images

    def score(self, context: ScoreContext) -> dict[str, float]:
        """{"clip_image": ..., "clip_text": ...}: cosine similarities in [-1, 1]."""
        from PIL import Image

        if self._reference is None:
            self._reference = self.clip.images([Image.open(path).convert("RGB") for path in context.image_paths])
        samples = self._draw(context, context.prompts(self.samples))
        prompts, texts = edited_prompts(context, self.samples)
        edited = self._draw(context, prompts)
        return {
            "clip_image": mean_pairwise_cosine(self.clip.images(samples), self._reference),
            "clip_text": paired_cosine(self.clip.images(edited), self.clip.texts(texts)),
        }


def edited_prompts(context: ScoreContext, n: int) -> tuple[list[str], list[str]]:
    """`n` prompts in new contexts, and the texts their samples are compared with.

    With a trigger word: the word in the edits, compared with the edits without it (the paper's prompt fidelity).
    Without one (a hypernetwork acts on every prompt): the training captions in the edits, compared with those
    same prompts. The texts are without their prompt tags (`<hypernet:...>`), which are no words.
    """
    edits = STYLE_EDITS if "style" in context.template else OBJECT_EDITS
    word = context.trigger_word
    if word is None:
        captions = context.captions
        prompts = [edits[k % len(edits)].format(captions[k % len(captions)]) for k in range(n)]
        return prompts, [parse_tags(p)[0] for p in prompts]
    prompts = [edits[k % len(edits)].format(word) for k in range(n)]
    return prompts, [without_name(parse_tags(p)[0], word) for p in prompts]

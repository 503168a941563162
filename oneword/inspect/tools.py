"""Which tools load a file as it is, by each tool's loading rules (read from their code):

- A1111 (modules/textual_inversion, extensions-builtin/Lora/networks.py): embeddings from `.pt`, `.bin`,
  `.safetensors` and preview images (`string_to_param`, `clip_l`/`clip_g`, `emb_params`, a single tensor);
  hypernetworks from `.pt`; LoRA by kohya names (LoRA, LoCon, LoHa, LoKr); a bundle's `bundle_emb.WORD.*` become
  embeddings while its `<lora:...>` tag is in the prompt, and a single-encoder word of two tensors (OneTrainer's
  `clip_l` with `clip_l_out`) makes the whole file fail to load (oneword/lora/bundle.py).
- ComfyUI (comfy/sd1_clip.py, comfy/lora.py, comfy_extras/nodes_hypernetwork.py): embeddings `embedding:NAME` from
  `.safetensors`, `.pt`, `.bin` (not images); LoRA by kohya, LyCORIS and diffusers names; keys it cannot map, such as
  a bundle's, are skipped with "lora key not loaded"; A1111 `.pt` hypernetworks.
- diffusers (`load_textual_inversion`, `load_lora_weights`): an embedding of one tensor or A1111's `string_to_param`
  (SDXL's `clip_l`/`clip_g` one encoder per call); LoRA and LoCon by kohya or PEFT names, not LyCORIS's LoHa/LoKr; a
  file with a key that does not name a LoRA part (`bundle_emb.*`) is refused; no hypernetworks.
- kohya sd-scripts (networks/lora.py, train_textual_inversion.py): LoRA and LoCon by kohya names, other keys ignored
  (a bundle's words are not read); embeddings from A1111 `.pt` or a single-tensor file; no hypernetworks.
"""

from __future__ import annotations

from oneword.inspect.describe import Inspection
from oneword.lora.bundle import a1111_problem

TOOLS = ("oneword", "A1111", "ComfyUI", "diffusers", "kohya")
"""The tools of the table, in its order."""
IMAGES = (".png", ".webp", ".avif", ".jxl")


def support(found: Inspection) -> list[tuple[str, bool, str]]:
    """(tool, loads it as it is, why or how) for every tool of TOOLS."""
    if not found.safe:
        return [(tool, False, "it would run code on loading (refused without loading it)") for tool in TOOLS]
    rules = {"embedding": _embedding, "hypernetwork": _hypernetwork, "base model": _base_model}
    what = found.what
    if what == "unknown":
        return [(tool, False, "not a file oneword recognises") for tool in TOOLS]
    if what.startswith("bundle"):
        return _bundle(found)
    return rules.get(what, _lora)(found)


def _embedding(found: Inspection) -> list[tuple[str, bool, str]]:
    image = found.path.suffix.lower() in IMAGES
    sdxl = found.architecture.startswith("SDXL")
    word = found.words[0]
    return [
        ("oneword", True, f"in --embeddings-dir, as the word {word}"),
        ("A1111", True, f"in models/embeddings, as the word {word}"),
        ("ComfyUI", not image, "images are not read: --convert comfyui" if image
         else f"in models/embeddings, as embedding:{found.path.stem}"),
        ("diffusers", not image and not sdxl,
         "images are not read: --convert diffusers" if image else
         "load_textual_inversion takes one encoder's vectors per call: --convert diffusers, then one call per "
         "encoder" if sdxl else "load_textual_inversion"),
        ("kohya", not image, "images are not read: --convert kohya" if image else "as --weights of a new run"),
    ]


def _hypernetwork(found: Inspection) -> list[tuple[str, bool, str]]:
    pt = found.path.suffix.lower() == ".pt"
    return [
        ("oneword", True, "in --hypernetwork-dir, <hypernet:NAME:STRENGTH>"),
        ("A1111", pt, "in models/hypernetworks, <hypernet:NAME:STRENGTH>" if pt else "A1111 reads .pt hypernetworks only"),
        ("ComfyUI", pt, "HypernetworkLoader" if pt else "its HypernetworkLoader reads A1111's .pt layout only"),
        ("diffusers", False, "diffusers has no hypernetworks"),
        ("kohya", False, "sd-scripts has no hypernetworks"),
    ]


def _lora(found: Inspection) -> list[tuple[str, bool, str]]:
    lycoris = any(kind in found.what for kind in ("LoHa", "LoKr"))
    peft = found.layout == "diffusers"
    refused = a1111_problem(found.bundled)
    if peft:
        a1111 = (False, "A1111 matches kohya's layer names, not diffusers/PEFT ones")
    elif refused:
        a1111 = (False, "A1111 makes an embedding of a bundled word's tensors and refuses the whole file when a "
                 f"single-encoder word has more than one ({refused}): --convert a1111 (the LoRA and the words apart)")
    else:
        a1111 = (True, "in models/Lora, <lora:NAME:WEIGHT>")
    return [
        ("oneword", True, "in --lora-dir, <lora:NAME:WEIGHT>"),
        ("A1111", *a1111),
        ("ComfyUI", True, "LoraLoader"),
        ("diffusers", not (lycoris or found.bundled), "load_lora_weights reads LoRA/LoCon, not LyCORIS's LoHa or "
         "LoKr" if lycoris else "load_lora_weights refuses keys that are no LoRA part (bundle_emb.*): --convert "
         "diffusers" if found.bundled else "load_lora_weights"),
        ("kohya", not (lycoris or peft), "networks.lora reads kohya's lora_down/lora_up names only"
         if lycoris or peft else "as --network_weights"),
    ]


def _bundle(found: Inspection) -> list[tuple[str, bool, str]]:
    words = ", ".join(found.words)
    plain = {tool: (ok, why) for tool, ok, why in _lora(found)}
    a1111 = plain["A1111"]
    if a1111[0]:
        a1111 = (True, f"in models/Lora; <lora:NAME:WEIGHT> brings the words {words} (unless models/embeddings has "
                 "them)")
    rows = [("oneword", True, f"in --lora-dir; <lora:NAME:WEIGHT> brings the words {words}"), ("A1111", *a1111)]
    rows.append(("ComfyUI", False, "the LoRA loads but its loader skips the bundled words: --convert comfyui "
                 "(the words as embedding files)"))
    rows.append(("diffusers", False, "load_lora_weights refuses keys that are no LoRA part (bundle_emb.*): "
                 "--convert diffusers (the LoRA and the words apart)"))
    rows.append(("kohya", False, "networks.lora ignores the bundled words: --convert kohya (the words as embedding "
                 "files)"))
    return rows


def _base_model(found: Inspection) -> list[tuple[str, bool, str]]:
    return [(tool, True, how) for tool, how in (
        ("oneword", "--model FILE"), ("A1111", "models/Stable-diffusion"), ("ComfyUI", "models/checkpoints"),
        ("diffusers", "from_single_file"), ("kohya", "--pretrained_model_name_or_path"))]

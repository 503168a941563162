"""The Generate tab's file inspection: the folders' files listed (links out of the workspace left out), each shown as
`oneword inspect` shows it, a path outside the workspace refused."""

from __future__ import annotations

import torch

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.inspect.describe import inspect_file
from oneword.inspect.report import report_lines
from oneword.lora.network import Lora, LoraLayer
from oneword.lora.write import save_lora
from oneword.ui.inspection import inspection, listed_files
from oneword.ui.paths import Workspace

K = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"


def test_the_listed_files_are_inspected_as_the_command_does(tmp_path):
    space = Workspace.at(tmp_path / "space")
    bundle = Lora("face", {K: LoraLayer(torch.ones(4, 768), torch.zeros(320, 4), 4.0)},
                  embeddings={"zqx": Embedding("zqx", {"*": torch.ones(1, 768)})})
    save_lora(bundle, space.root / "lora" / "sub" / "face.safetensors", {})
    save_embedding(Embedding("mine", {"*": torch.ones(1, 768)}), space.root / "embeddings" / "mine.pt")
    save_embedding(Embedding("secret", {"*": torch.ones(1, 768)}), tmp_path / "secret.pt")
    (space.root / "embeddings" / "secret.pt").symlink_to(tmp_path / "secret.pt")
    assert listed_files(space, "embeddings", "hypernetworks", "lora") == ["embeddings/mine.pt",
                                                                         "lora/sub/face.safetensors"]
    shown = inspection(space, "lora/sub/face.safetensors")
    lines = report_lines(inspect_file(space.root / "lora" / "sub" / "face.safetensors"))
    assert shown == "```\n" + "\n".join(lines) + "\n```" and "  what: bundle (LoRA + 1 embedding)" in lines
    assert inspection(space, str(tmp_path / "secret.pt")) == (
        f"**error:** file: {tmp_path / 'secret.pt'} is outside the workspace {space.root} (refused)")


def test_opening_generate_lists_the_files_made_since_the_page_was_drawn(tmp_path):
    from oneword.ui.app import build_app
    from oneword.ui.jobs import Jobs

    space = Workspace.at(tmp_path)
    app = build_app(space, Jobs(lambda *a, **k: None))
    (listed,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "generate-inspect-file"]
    assert listed.choices == []
    refresh = [fn.fn for fn in app.fns.values() if any(event == "select" for _, event in fn.targets)
               and any(getattr(o, "elem_id", None) == "generate-inspect-file" for o in fn.outputs)]
    assert len(refresh) == 1
    save_embedding(Embedding("mine", {"*": torch.ones(1, 768)}), space.root / "embeddings" / "mine.pt")
    assert refresh[0]("embeddings", "hypernetworks", "lora")["choices"] == ["embeddings/mine.pt"]

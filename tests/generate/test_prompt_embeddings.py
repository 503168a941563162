"""What a prompt's embeddings leave in the infotext (A1111's `TI hashes`), and the notes for a prompt word that
looks like an embedding that is not there."""

from __future__ import annotations

import hashlib

import torch
from cli_helpers import run_oneword

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.embeddings.library import scan_embeddings
from oneword.embeddings.missing import missing_embedding_notes, one_edit, prompt_words
from oneword.generate.config import GenerateConfig
from oneword.generate.pnginfo import format_parameters, read_parameters
from oneword.generate.txt2img import generate


def _folder(tmp_path):
    """An embeddings folder: zqstar and zqmoon usable, broken.pt not an embedding, empty.pt empty."""
    folder = tmp_path / "embeddings"
    save_embedding(Embedding("zqstar", {"*": torch.full((1, 64), 0.01)}), folder / "zqstar.pt")
    save_embedding(Embedding("zqmoon", {"*": torch.full((2, 64), -0.01)}), folder / "zqmoon.pt")
    (folder / "broken.pt").write_bytes(b"not a pickle at all")
    (folder / "empty.pt").write_bytes(b"")
    return folder


def _short(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def test_ti_hashes_name_each_embedding_the_prompts_used_once_in_order(tmp_path, tiny_sd1):
    folder = _folder(tmp_path)
    library = scan_embeddings(folder, tiny_sd1)
    config = GenerateConfig(prompt="a ZQMOON over a zqstar, (zqmoon:1.2)", negative="zqstar, blurry", seed=1,
                            steps=1)
    drawn = generate(tiny_sd1, config, library.loaded)[0]
    hashes = f"zqmoon: {_short(folder / 'zqmoon.pt')}, zqstar: {_short(folder / 'zqstar.pt')}"
    assert drawn.parameters.extra == (("TI hashes", hashes),)
    assert format_parameters(drawn.parameters).endswith(f', Model: {tiny_sd1.name}, TI hashes: "{hashes}"')
    only_negative = GenerateConfig(prompt="a cat", negative="zqstar", seed=1, steps=1)
    assert generate(tiny_sd1, only_negative, library.loaded)[0].parameters.extra == (
        ("TI hashes", f"zqstar: {_short(folder / 'zqstar.pt')}"),)
    none_used = GenerateConfig(prompt="a cat", seed=1, steps=1)
    assert generate(tiny_sd1, none_used, library.loaded)[0].parameters.extra == ()
    unsaved = {"zqstar": Embedding("zqstar", {"*": torch.zeros(1, 64)})}  # a run's vectors: no file, no hash
    assert generate(tiny_sd1, GenerateConfig(prompt="zqstar", seed=1, steps=1), unsaved)[0].parameters.extra == ()


def test_a_word_naming_a_skipped_file_or_one_letter_from_an_embedding_gets_a_note(tmp_path, tiny_sd1):
    folder = _folder(tmp_path)
    library = scan_embeddings(folder, tiny_sd1)
    tokenizer = tiny_sd1.encoders[0].tokenizer
    notes = missing_embedding_notes(["a zqstr by a broken zqmoon, zqmono <lora:zqstra:1>", "EMPTY, stars, zqstar"],
                                    library, tokenizer, lambda path: path.relative_to(tmp_path).as_posix())
    assert notes == [
        "the prompt's word 'zqstr' is no embedding; did you mean 'zqstar'?",
        ("the prompt's word 'broken' is no embedding here: embeddings/broken.pt was skipped "
         "(not a PyTorch file (neither a zip archive nor a pickle))"),
        "the prompt's word 'zqmono' is no embedding; did you mean 'zqmoon'?",
        "the prompt's word 'EMPTY' is no embedding here: embeddings/empty.pt was skipped (empty file)",
    ]
    assert missing_embedding_notes(["a star, stars, zqstar"], library, tokenizer) == []  # words CLIP knows whole
    assert missing_embedding_notes(["zqstr"], None, tokenizer) == []


def test_one_edit_and_prompt_words():
    assert [one_edit("zqstr", "zqstar"), one_edit("zqstar", "zqstr"), one_edit("zqsatr", "zqstar"),
            one_edit("zqxtar", "zqstar"), one_edit("zqstar", "zqstar"), one_edit("zqtsra", "zqstar"),
            one_edit("zqst", "zqstar")] == [True, True, True, True, False, False, False]
    assert prompt_words(["(my-word:1.2), a [cat]. <lora:x:1> my-word BREAK end."]) == [
        "my-word", "1.2", "a", "cat", "BREAK", "end"]


def test_the_cli_notes_a_missing_embedding_and_writes_ti_hashes(tmp_path):
    folder = _folder(tmp_path)
    out = tmp_path / "out"
    result = run_oneword("generate", "--prompt", "a zqstar and a zqmon", "--model", "tiny-sd1", "--seed", "3",
                         "--steps", "1", "--out", str(out), "--embeddings-dir", str(folder))
    assert result.returncode == 0, result.stderr
    assert "note: the prompt's word 'zqmon' is no embedding; did you mean 'zqmoon'?" in result.stderr.splitlines()
    assert read_parameters(out / "00000-3.png").endswith(f'TI hashes: "zqstar: {_short(folder / "zqstar.pt")}"')

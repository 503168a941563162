"""Scanning an embeddings folder: what loads, what is skipped and why, what is not an embedding at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import safetensors.torch
import torch
from bounded import folders_listed, never_opened
from PIL import Image

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import save_embedding
from oneword.embeddings.library import embedding_files, scan_embeddings
from oneword.embeddings.png import embed_in_png
from oneword.errors import OnewordError

SCANS = 4
"""Most listings of one folder a scan may make (it walks for files and for links that lead out); a walk that
followed a link loop would list the same folders without end."""


def _emb(name: str, width: int = 64, n: int = 1, seed: int = 0) -> Embedding:
    return Embedding(name, {"*": torch.randn(n, width, generator=torch.Generator().manual_seed(seed))}, step=seed)


def _folder(root: Path) -> Path:
    """A nested folder with good, bad, wrong-width, duplicate and non-embedding files."""
    (root / "sub" / "deeper").mkdir(parents=True)
    save_embedding(_emb("alpha", n=2, seed=1), root / "alpha.pt")
    save_embedding(_emb("beta", seed=2), root / "sub" / "beta.safetensors")
    embed_in_png(Image.new("RGB", (64, 64), (90, 60, 30)), _emb("from-image", n=3, seed=3)).save(
        root / "sub" / "deeper" / "gamma-500.png")
    save_embedding(_emb("wide", width=768), root / "wide.pt")
    save_embedding(Embedding("xl", {"clip_l": torch.ones(1, 64), "clip_g": torch.ones(1, 128)}), root / "xl.pt")
    save_embedding(_emb("ALPHA", seed=4), root / "sub" / "ALPHA.pt")  # same word as alpha.pt for CLIP
    (root / "empty.pt").write_bytes(b"")
    (root / "garbage.bin").write_bytes(b"not a pickle")
    good = root / "alpha.pt"
    (root / "sub" / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    Image.new("RGB", (32, 32), (200, 100, 50)).save(root / "photo.png")
    Image.new("RGB", (32, 32), (200, 100, 50)).save(root / "alpha.preview.png")  # a thumbnail: ignored
    (root / "notes.txt").write_text("not an embedding")
    (root / "alpha.pt.optim").write_bytes(good.read_bytes())  # optimizer state beside it: ignored
    return root


def test_scan_loads_and_skips_with_exact_reasons(tmp_path, tiny_sd1):
    root = _folder(tmp_path / "embeddings")
    lib = scan_embeddings(root, tiny_sd1)

    assert sorted(lib.loaded) == ["alpha", "beta", "from-image"]
    assert lib.loaded["alpha"].n_vectors == 2 and lib.loaded["alpha"].source == root / "alpha.pt"
    assert lib.loaded["from-image"].n_vectors == 3 and lib.loaded["from-image"].step == 3
    assert [(p.relative_to(root).as_posix(), reason) for p, reason in lib.skipped] == [
        ("empty.pt", "empty file"),
        ("garbage.bin", "not a PyTorch file (neither a zip archive nor a pickle)"),
        ("photo.png", "no embedding data"),
        ("sub/ALPHA.pt", "duplicate name, already loaded from alpha.pt"),
        ("sub/cut.safetensors", lib.skipped[4][1]),
        ("wide.pt", "width 768 does not match the model's text encoder (64)"),
        ("xl.pt", "an SDXL embedding (clip_l, clip_g) does not fit a sd1 model, which has one text encoder"),
    ]
    assert lib.skipped[4][1].startswith("not a readable safetensors file (")
    assert [e.path.relative_to(root).as_posix() for e in lib.entries] == [
        "alpha.pt", "empty.pt", "garbage.bin", "photo.png", "sub/ALPHA.pt", "sub/beta.safetensors",
        "sub/cut.safetensors", "sub/deeper/gamma-500.png", "wide.pt", "xl.pt"]
    assert [e.status for e in lib.entries][:2] == ["loaded", "skipped: empty file"]
    wide = next(e for e in lib.entries if e.path.name == "wide.pt")
    assert wide.embedding.widths == {"*": 768}  # read, then skipped for its width


def test_scan_without_a_model_keeps_every_width(tmp_path):
    lib = scan_embeddings(_folder(tmp_path / "e"), None)
    assert sorted(lib.loaded) == ["alpha", "beta", "from-image", "wide", "xl"]


def test_the_first_in_sorted_path_order_wins_and_a_skipped_width_does_not_claim_the_name(tmp_path, tiny_sd1):
    save_embedding(_emb("dup", width=768), tmp_path / "a" / "dup.pt")
    save_embedding(_emb("dup", seed=1), tmp_path / "b" / "dup.pt")
    save_embedding(_emb("dup", seed=2), tmp_path / "c" / "Dup.safetensors")
    lib = scan_embeddings(tmp_path, tiny_sd1)
    assert lib.loaded["dup"].source == tmp_path / "b" / "dup.pt"
    assert [(p.relative_to(tmp_path).as_posix(), r) for p, r in lib.skipped] == [
        ("a/dup.pt", "width 768 does not match the model's text encoder (64)"),
        ("c/Dup.safetensors", "duplicate name, already loaded from b/dup.pt"),
    ]


def test_find_matches_case_insensitively(tmp_path):
    save_embedding(_emb("MyChar"), tmp_path / "MyChar.pt")
    lib = scan_embeddings(tmp_path, None)
    assert list(lib.loaded) == ["MyChar"]
    assert lib.find("mychar") is lib.loaded["MyChar"]
    assert lib.find("MYCHAR") is lib.loaded["MyChar"]
    assert lib.find("other") is None


def test_missing_folder_is_empty_and_a_file_is_an_error(tmp_path):
    lib = scan_embeddings(tmp_path / "nowhere", None)
    assert (lib.loaded, lib.skipped, lib.entries) == ({}, [], [])
    (tmp_path / "file.pt").write_bytes(b"x")
    with pytest.raises(OnewordError) as err:
        scan_embeddings(tmp_path / "file.pt", None)
    assert str(err.value) == f"{tmp_path / 'file.pt'}: not a folder (expected the embeddings folder)"


def test_embedding_files_filters_by_suffix_case_insensitively(tmp_path):
    for name in ("a.PT", "b.SafeTensors", "c.Bin", "d.webp", "e.preview.webp", "f.ckpt", "g.json"):
        (tmp_path / name).write_bytes(b"x")
    safetensors.torch.save_file({"x": torch.ones(1)}, tmp_path / "h.safetensors")
    assert [p.name for p in embedding_files(tmp_path)] == ["a.PT", "b.SafeTensors", "c.Bin", "d.webp",
                                                          "h.safetensors"]


def _unusable_files(root: Path) -> None:
    """One good embedding beside every kind of file that cannot be one."""
    root.mkdir(parents=True, exist_ok=True)
    save_embedding(_emb("good", seed=1), root / "good.pt")
    (root / "dangling.pt").symlink_to(root / "gone.pt")
    (root / "self.pt").symlink_to(root / "self.pt")
    (root / "zero.pt").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo.safetensors")
    safetensors.torch.save_file({"v": torch.ones(1, 64)}, root / "digits.safetensors", metadata={"step": "9" * 5000})
    torch.save({"string_to_param": {"*": torch.ones(1, 64).to_sparse()}}, root / "sparse.pt")
    torch.save({"string_to_param": {"*": torch.empty(1, 64, device="meta")}}, root / "meta.pt")


def test_one_unusable_file_never_breaks_the_scan(tmp_path, tiny_sd1):
    root = tmp_path / "embeddings"
    _unusable_files(root)
    lib = scan_embeddings(root, tiny_sd1)
    assert sorted(lib.loaded) == ["digits", "good"]
    assert lib.loaded["digits"].step is None  # 5,000 digits are no step count
    assert [(p.name, reason) for p, reason in lib.skipped] == [
        ("dangling.pt", f"a dangling link (its target {root / 'gone.pt'} does not exist)"),
        ("fifo.safetensors", "not a regular file (a FIFO)"),
        ("meta.pt", "string_to_param is on the meta device: the file holds no numbers for it"),
        ("self.pt", "a link loop (the link leads back to itself)"),
        ("sparse.pt", "string_to_param is a sparse_coo tensor, not a dense one"),
        ("zero.pt", "not a regular file (a character device)"),
    ]


def test_folder_links_back_to_their_own_folder_are_followed_once(tmp_path, monkeypatch):
    root = tmp_path / "embeddings"
    save_embedding(_emb("top"), root / "top.pt")
    save_embedding(_emb("inner"), root / "sub" / "inner.pt")
    (root / "sub" / "again").symlink_to(root / "sub", target_is_directory=True)
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)
    (root / "linked").symlink_to(root / "sub", target_is_directory=True)  # the same real folder: seen once, by
    (root / "loop").symlink_to(root / "loop")                              # its first path in sorted order
    listed = folders_listed(monkeypatch, root, most=SCANS)
    assert [p.relative_to(root).as_posix() for p in embedding_files(root)] == ["linked/inner.pt", "top.pt"]
    listed.clear()
    lib = scan_embeddings(root, None)
    assert sorted(lib.loaded) == ["inner", "top"] and lib.skipped == []


def test_within_a_workspace_links_out_of_it_are_not_read(tmp_path):
    outside = tmp_path / "outside"
    save_embedding(_emb("secret"), outside / "secret.pt")
    save_embedding(_emb("hidden"), outside / "folder" / "hidden.pt")
    root = tmp_path / "ws" / "embeddings"
    save_embedding(_emb("mine"), root / "mine.pt")
    (root / "secret.pt").symlink_to(outside / "secret.pt")
    (root / "folder").symlink_to(outside / "folder", target_is_directory=True)
    workspace = (tmp_path / "ws").resolve()
    lib = scan_embeddings(root, None, within=workspace)
    assert sorted(lib.loaded) == ["mine"]
    assert [(p.name, reason) for p, reason in lib.skipped] == [("secret.pt", "leads outside the workspace")]
    assert sorted(scan_embeddings(root, None).loaded) == ["hidden", "mine", "secret"]  # the command line follows


def test_embeddings_list_shows_unusable_files_and_ends_on_folder_loops(tmp_path, monkeypatch, capsys):
    from cli_helpers import run_in_process

    root = tmp_path / "embeddings"
    _unusable_files(root)
    (root / "sub").mkdir()
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)
    (root / "sub" / "again").symlink_to(root / "sub", target_is_directory=True)
    folders_listed(monkeypatch, root, most=SCANS)
    never_opened(monkeypatch, "fifo.safetensors")  # opening it would block
    code, out, err = run_in_process(monkeypatch, capsys, "embeddings", "list", "--model", "tiny-sd1",
                                    "--embeddings-dir", str(root))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "2 loaded, 6 skipped"
    assert "skipped: not a regular file (a FIFO)" in out and "skipped: a link loop (the link leads back" in out

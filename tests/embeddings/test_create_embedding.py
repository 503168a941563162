"""Creating an embedding: name rules, vectors from the init text's token rows, bounds, refusing to overwrite."""

from __future__ import annotations

import pytest
import torch

from oneword.embeddings.create import (
    CreateEmbeddingConfig,
    create_embedding,
    create_embedding_file,
    check_create,
    known_token_warning,
)
from oneword.embeddings.formats import load_embedding_file
from oneword.errors import OnewordError


def _ids(encoder, text: str) -> list[int]:
    return encoder.tokenizer(text, add_special_tokens=False)["input_ids"]


def _table(encoder) -> torch.Tensor:
    return encoder.model.get_input_embeddings().weight.detach()


DOTS = "starts or ends with '.', which hides the file or is dropped; begin and end it with a letter or digit"
REFUSED_NAMES = {
    "../../x": "NAME '../../x': has '/' (a name holds only letters, digits, _, - and .: it is a file's name)",
    "a/b": "NAME 'a/b': has '/' (a name holds only letters, digits, _, - and .: it is a file's name)",
    "my word": "NAME 'my word': has space (a name holds only letters, digits, _, - and .: it is a file's name)",
    ".x": f"NAME '.x': {DOTS}",
    "x.": f"NAME 'x.': {DOTS}",
    "-x": "NAME '-x': starts with -, which reads as an option; start it with a letter or digit",
    "nul": "NAME 'nul': is a device's name on Windows, where its files would not be files; choose another",
    "COM1.v2": "NAME 'COM1.v2': is a device's name on Windows, where its files would not be files; choose another",
    "": "NAME is empty",
}


@pytest.mark.parametrize("name", list(REFUSED_NAMES))
def test_a_name_is_refused_rather_than_rewritten(tmp_path, name):
    config = CreateEmbeddingConfig(name=name, embeddings_dir=tmp_path / "emb")
    with pytest.raises(OnewordError) as err:
        check_create(config)
    assert str(err.value) == REFUSED_NAMES[name]
    assert not (tmp_path / "emb").exists()


def test_letters_of_any_script_digits_underscore_and_dash_make_a_name(tmp_path, tiny_sd1):
    for name in ("Ünï_cöde-1", "my_word", "x", "_2", "style-v1.5"):
        path, embedding = create_embedding_file(tiny_sd1, CreateEmbeddingConfig(name=name, embeddings_dir=tmp_path))
        assert (path, embedding.name) == (tmp_path / f"{name}.pt", name)


def test_vector_i_copies_token_i_times_len_over_n(tiny_sd1):
    encoder = tiny_sd1.encoders[0]
    text = "a photo of a red cat"
    ids = _ids(encoder, text)
    assert len(ids) == 6 and len(set(ids)) == 5  # the tokenizer splits words (a real CLIP vocabulary)
    emb = create_embedding(tiny_sd1, "mine", init_text=text, n_vectors=8)
    assert emb.name == "mine" and emb.step == 0 and list(emb.vectors) == ["*"]
    rows = _table(encoder)
    picked = [i * 6 // 8 for i in range(8)]
    assert picked == [0, 0, 1, 2, 3, 3, 4, 5]
    for i, token in enumerate(picked):
        assert torch.equal(emb.vectors["*"][i], rows[ids[token]]), i


def test_init_text_is_cut_to_the_first_n_tokens_like_a1111(tiny_sd1):
    encoder = tiny_sd1.encoders[0]
    ids = _ids(encoder, "1girl, solo")
    assert len(ids) == 4 and len(set(ids)) == 4
    emb = create_embedding(tiny_sd1, "two", init_text="1girl, solo", n_vectors=2)
    rows = _table(encoder)
    assert torch.equal(emb.vectors["*"], torch.stack([rows[ids[0]], rows[ids[1]]]))


def test_one_token_fills_every_vector_and_empty_text_gives_zeros(tiny_sd1):
    rows = _table(tiny_sd1.encoders[0])
    star = _ids(tiny_sd1.encoders[0], "*")
    assert len(star) == 1
    emb = create_embedding(tiny_sd1, "star", n_vectors=3)
    assert torch.equal(emb.vectors["*"], rows[star[0]].expand(3, -1))
    assert torch.equal(create_embedding(tiny_sd1, "z", init_text="", n_vectors=4).vectors["*"], torch.zeros(4, 64))
    assert torch.equal(create_embedding(tiny_sd1, "z", init_text="   ", n_vectors=2).vectors["*"], torch.zeros(2, 64))


def test_vector_count_bounds(tiny_sd1):
    assert create_embedding(tiny_sd1, "one", n_vectors=1).n_vectors == 1
    assert create_embedding(tiny_sd1, "max", n_vectors=75).n_vectors == 75
    for bad in (0, 76, -3):
        with pytest.raises(OnewordError) as err:
            create_embedding(tiny_sd1, "x", n_vectors=bad)
        assert str(err.value) == f"--vectors: {bad} is out of range; an embedding has 1 to 75 vectors"
    with pytest.raises(OnewordError) as err:  # every problem in one message
        create_embedding(tiny_sd1, "???", n_vectors=0)
    assert str(err.value).count(";") == 2 and "NAME '???'" in str(err.value) and "--vectors: 0" in str(err.value)


def test_sdxl_builds_clip_l_and_clip_g_from_their_own_tables(tiny_models):
    sdxl = tiny_models("sdxl")
    emb = create_embedding(sdxl, "xl", init_text="red cat", n_vectors=3)
    assert list(emb.vectors) == ["clip_l", "clip_g"] and emb.widths == {"clip_l": 64, "clip_g": 128}
    for key, encoder in zip(("clip_l", "clip_g"), sdxl.encoders):
        ids = _ids(encoder, "red cat")
        rows = _table(encoder)
        expected = torch.stack([rows[ids[i * len(ids) // 3]] for i in range(3)])
        assert torch.equal(emb.vectors[key], expected), key


def test_known_token_warning(tiny_sd1):
    cat = _ids(tiny_sd1.encoders[0], "cat")
    assert len(cat) == 1
    assert known_token_warning(tiny_sd1, "Cat") == (
        f"warning: 'Cat' is already a word the model knows (token {cat[0]} 'cat'); "
        "in prompts the embedding will take its place. A rarer name keeps both.")
    assert known_token_warning(tiny_sd1, "qxzvw-toy") is None


def test_create_file_refuses_to_overwrite_unless_asked(tmp_path, tiny_sd1):
    config = CreateEmbeddingConfig(name="my_toy", init_text="toy", vectors=2, embeddings_dir=tmp_path / "emb")
    path, emb = create_embedding_file(tiny_sd1, config)
    assert path == tmp_path / "emb" / "my_toy.pt"
    first = load_embedding_file(path)
    assert (first.name, first.step, first.n_vectors) == ("my_toy", 0, 2)
    assert torch.equal(first.vectors["*"], emb.vectors["*"])

    again = CreateEmbeddingConfig(name="my_toy", init_text="", vectors=2, embeddings_dir=tmp_path / "emb")
    with pytest.raises(OnewordError) as err:
        create_embedding_file(tiny_sd1, again)
    assert str(err.value) == f"{path} already exists (use --overwrite to replace it)"
    assert torch.equal(load_embedding_file(path).vectors["*"], emb.vectors["*"])

    again.overwrite = True
    create_embedding_file(tiny_sd1, again)
    assert torch.equal(load_embedding_file(path).vectors["*"], torch.zeros(2, 64))

    st = CreateEmbeddingConfig(name="st", embeddings_dir=tmp_path / "emb", format="safetensors")
    assert create_embedding_file(tiny_sd1, st)[0] == tmp_path / "emb" / "st.safetensors"
    with pytest.raises(OnewordError) as err:
        create_embedding_file(tiny_sd1, CreateEmbeddingConfig(name="x", embeddings_dir=tmp_path, format="ckpt"))
    assert str(err.value) == "--format: 'ckpt' is not one of pt, safetensors"


def test_create_never_writes_through_or_over_a_link_nor_replaces_a_file_that_appears_meanwhile(tmp_path, tiny_sd1,
                                                                                                 monkeypatch):
    import oneword.embeddings.create as create

    folder, outside = tmp_path / "emb", tmp_path / "outside.pt"
    folder.mkdir()
    outside.write_bytes(b"mine")
    (folder / "linked.pt").symlink_to(outside)
    (folder / "dangling.pt").symlink_to(tmp_path / "nowhere.pt")
    for name, overwrite in (("linked", True), ("dangling", False), ("dangling", True)):
        config = CreateEmbeddingConfig(name=name, embeddings_dir=folder, overwrite=overwrite)
        with pytest.raises(OnewordError) as err:
            create_embedding_file(tiny_sd1, config)
        assert str(err.value) == f"NAME: {folder / name}.pt is a link; nothing is written through it"
    assert outside.read_bytes() == b"mine" and not (tmp_path / "nowhere.pt").exists()
    assert (folder / "linked.pt").is_symlink() and (folder / "dangling.pt").is_symlink()

    def racing(*args, **kwargs):  # another process writes the file after the check
        (folder / "raced.pt").write_bytes(b"first")
        return create_embedding(*args, **kwargs)

    monkeypatch.setattr(create, "create_embedding", racing)
    with pytest.raises(OnewordError) as err:
        create_embedding_file(tiny_sd1, CreateEmbeddingConfig(name="raced", embeddings_dir=folder))
    assert str(err.value) == f"{folder / 'raced.pt'} already exists (use --overwrite to replace it)"
    assert (folder / "raced.pt").read_bytes() == b"first"
    assert sorted(p.name for p in folder.iterdir()) == ["dangling.pt", "linked.pt", "raced.pt"]

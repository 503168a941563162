"""Embeddings hidden in preview images: A1111's text chunk and pixel scheme, written and read."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from oneword.embeddings.embedding import Embedding
from oneword.embeddings.formats import EmbeddingFileError, a1111_dict, load_embedding_file
from oneword.embeddings.png import (
    TEXT_KEY,
    embed_in_png,
    embedding_json,
    lcg_stream,
    read_png_embedding,
    write_png_embedding,
)


def _emb(name: str = "cat toy", n: int = 3, width: int = 64, seed: int = 0) -> Embedding:
    vec = torch.randn(n, width, generator=torch.Generator().manual_seed(seed))
    return Embedding(name, {"*": vec}, step=500, sd_checkpoint="a1b2c3d4e5", sd_checkpoint_name="tiny-sd1")


def _preview(size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), (40, 90, 160))


def test_lcg_stream_matches_its_definition_and_a1111s_reference_values():
    x, expected = 0, []
    for _ in range(5000):
        x = (1664525 * x + 1013904223) % 2**32
        expected.append(x % 255)
    stream = lcg_stream(100100)
    assert stream[:5000].tolist() == expected
    # Published in A1111's image_embedding.py self-test: the first values, and the sum of the next 100000.
    assert stream[:12].tolist() == [253, 242, 127, 44, 157, 27, 239, 133, 38, 79, 167, 4]
    assert int(stream[100:].astype(np.int64).sum()) == 12731374


def test_text_chunk_and_pixels_round_trip(tmp_path):
    emb = _emb()
    path = tmp_path / "cat toy-500.png"
    write_png_embedding(emb, path, _preview())

    with Image.open(path) as image:
        text = image.text[TEXT_KEY]
    assert json.loads(base64.b64decode(text))["string_to_param"]["*"] == {"TORCHTENSOR": emb.vectors["*"].tolist()}

    back = read_png_embedding(path)
    assert (back.name, back.step, back.sd_checkpoint, back.sd_checkpoint_name) == (
        "cat toy", 500, "a1b2c3d4e5", "tiny-sd1")
    assert back.vectors["*"].dtype == torch.float32
    assert torch.equal(back.vectors["*"], emb.vectors["*"])  # JSON keeps float32 values exactly
    assert torch.equal(load_embedding_file(path).vectors["*"], emb.vectors["*"])


def test_pixels_alone_carry_the_embedding(tmp_path):
    emb = _emb(name="inner-name", n=2, seed=3)
    path = tmp_path / "file-stem.png"
    embed_in_png(_preview(), emb).save(path)  # no text chunk
    with Image.open(path) as image:
        assert TEXT_KEY not in image.text
    back = read_png_embedding(path)
    assert back.name == "inner-name"  # images: the name stored inside, not the file stem
    assert (back.step, back.sd_checkpoint) == (500, "a1b2c3d4e5")
    assert torch.equal(back.vectors["*"], emb.vectors["*"])

    webp = tmp_path / "lossless.webp"
    embed_in_png(_preview(), emb).save(webp, lossless=True)
    assert torch.equal(read_png_embedding(webp).vectors["*"], emb.vectors["*"])


def test_pixel_layout_is_a1111s(tmp_path):
    """Re-derive the blocks from the rules: zlib level 9, nibbles, XOR stream, low block left, high block right."""
    emb = _emb(n=1)
    preview = _preview(48)
    image = np.asarray(embed_in_png(preview, emb))
    packed = np.frombuffer(zlib.compress(embedding_json(emb).encode(), level=9), dtype=np.uint8)
    height = 48
    size = packed.size + (height - packed.size % height)
    size += height * 3 - size % (height * 3)
    block_width = size // (height * 3)
    assert image.shape == (height, 48 + 2 * block_width + 2, 3)
    assert (image[:, block_width] == 0).all() and (image[:, block_width + 1 + 48] == 0).all()

    stream = (lcg_stream(size) & 0x0F).reshape(height, block_width, 3)
    low = (image[:, :block_width] & 0x0F) ^ stream
    high = (image[:, block_width + 48 + 2 :] & 0x0F) ^ stream
    data = ((high << 4) | low).reshape(-1)
    assert data[: packed.size].tolist() == packed.tolist()
    assert json.loads(zlib.decompress(data.tobytes())) == json.loads(embedding_json(emb))


def test_json_is_a1111s_dict():
    emb = _emb(n=1)
    data = json.loads(embedding_json(emb))
    assert list(data) == ["string_to_token", "string_to_param", "name", "step", "sd_checkpoint",
                          "sd_checkpoint_name"]
    assert data["string_to_token"] == {"*": 265}
    assert {k: v for k, v in data.items() if k not in ("string_to_param",)} == {
        k: v for k, v in a1111_dict(emb).items() if k != "string_to_param"}


def test_sdxl_image_holds_only_the_two_tensors_and_takes_the_file_stem(tmp_path):
    g = torch.Generator().manual_seed(4)
    emb = Embedding("xl", {"clip_l": torch.randn(2, 64, generator=g), "clip_g": torch.randn(2, 128, generator=g)})
    path = tmp_path / "xl-stem.png"
    embed_in_png(_preview(), emb).save(path)
    assert sorted(json.loads(embedding_json(emb))) == ["clip_g", "clip_l"]
    back = read_png_embedding(path)
    assert back.name == "xl-stem"
    assert torch.equal(back.vectors["clip_l"], emb.vectors["clip_l"])
    assert torch.equal(back.vectors["clip_g"], emb.vectors["clip_g"])


def test_zero_vectors_still_round_trip(tmp_path):
    emb = Embedding("zeros", {"*": torch.zeros(2, 64)}, step=0)
    embed_in_png(_preview(), emb).save(tmp_path / "z.png")
    assert torch.equal(read_png_embedding(tmp_path / "z.png").vectors["*"], torch.zeros(2, 64))


def test_caption_draws_title_and_footer_in_the_preview():
    image = np.asarray(embed_in_png(_preview(256), _emb()))
    block_width = (image.shape[1] - 256 - 2) // 2
    middle = image[:, block_width + 1 : block_width + 1 + 256]
    assert middle[:40].max() > 200  # white title over the darkened top
    assert middle[-30:].max() > 200  # white footers over the darkened bottom
    assert middle[100:150].max() < 200  # nothing drawn in the middle band


def test_plain_image_has_no_embedding(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (200, 100, 50)).save(path)
    assert read_png_embedding(path) is None
    with pytest.raises(EmbeddingFileError) as err:
        load_embedding_file(path)
    assert err.value.problem == "no embedding data (an image without the sd-ti-embedding data)"

    black = tmp_path / "black.png"
    Image.new("RGB", (64, 64)).save(black)
    assert read_png_embedding(black) is None


def test_broken_images_are_clear_errors(tmp_path):
    path = tmp_path / "bad-text.png"
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_KEY, base64.b64encode(b"{not json").decode())
    _preview().save(path, pnginfo=info)
    with pytest.raises(EmbeddingFileError) as err:
        read_png_embedding(path)
    assert err.value.problem.startswith("the sd-ti-embedding text is not embedding JSON (")

    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(EmbeddingFileError) as err:
        read_png_embedding(junk)
    assert err.value.problem.startswith("not a readable image (")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_larger_image_than_any_embedding_image_is_not_decoded(tmp_path, monkeypatch):
    side = 13000
    deflate, row = zlib.compressobj(9), bytes(side + 1)  # filter byte 0, then a row of black grey pixels
    pixels = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))
    assert path.stat().st_size < 200_000

    def decode(image):
        raise AssertionError(f"a {image.size} image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    with pytest.raises(EmbeddingFileError) as err:
        read_png_embedding(path)
    assert err.value.problem == ("13000x13000 pixels, larger than an embedding image can be (at most 8,388,608 "
                                 "pixels); not decoded")


def test_hidden_data_that_inflates_beyond_any_embedding_is_not_inflated(tmp_path, monkeypatch):
    import oneword.embeddings.png as png

    monkeypatch.setattr(png, "embedding_json", lambda embedding: " " * (24 * 2**20))
    path = tmp_path / "bomb.png"
    png.add_data_blocks(_preview(), _emb()).save(path)
    assert path.stat().st_size < 200_000
    inflated = []
    real = zlib.decompressobj

    class Counted:
        """zlib's decompressor, counting the bytes it inflates."""

        def __init__(self, *args):
            self.inner = real(*args)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(png.zlib, "decompressobj", Counted)
    with pytest.raises(EmbeddingFileError) as err:
        read_png_embedding(path)
    assert err.value.problem == ("the data in the pixels inflates to more than 8,388,608 bytes, more than any "
                                 "embedding needs (a compressed bomb?); not read further")
    assert 0 < sum(inflated) <= png.MAX_JSON  # inflated up to the bound, not the 24 MiB it holds


def test_a_text_chunk_longer_than_any_embedding_is_not_decoded(tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(TEXT_KEY, "A" * (12 * 2**20))
    path = tmp_path / "long-text.png"
    _preview().save(path, pnginfo=info)
    with pytest.raises(EmbeddingFileError) as err:
        read_png_embedding(path)
    assert err.value.problem == ("the sd-ti-embedding text has 12,582,912 characters, more than any embedding needs "
                                 "(at most 11,184,812); not read")


def test_the_largest_real_embedding_fits_the_bounds(tmp_path):
    import oneword.embeddings.png as png

    gen = torch.Generator().manual_seed(0)
    big = Embedding("big", {"clip_l": torch.randn(75, 768, generator=gen) * 1e-30,
                            "clip_g": torch.randn(75, 1280, generator=gen) * 1e-30})
    assert len(embedding_json(big)) < png.MAX_JSON / 2 < png.MAX_TEXT
    path = tmp_path / "big.png"
    image = png.add_data_blocks(_preview(1024), big)
    assert image.width * image.height < png.MAX_PIXELS
    image.save(path)  # the pixels alone
    assert torch.equal(read_png_embedding(path).vectors["clip_g"], big.vectors["clip_g"])

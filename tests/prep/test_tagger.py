"""Captions from a WD14-style tagger: a small ONNX model built here in the same input and output layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper

from oneword.errors import OnewordError
from oneword.prep.captions import Tagger, TaggerSettings
from oneword.prep.preprocess import PreprocessConfig, preprocess

TAGS = [  # tag_id, name, category: 9 rating, 0 general, 4 character
    ("0", "general", "9"), ("1", "red_theme", "0"), ("2", "blue_theme", "0"), ("3", "solo", "0"),
    ("4", "hatsune_miku", "4"), ("5", "^_^", "0"),
]


def build_tagger(folder: Path, size: int = 32) -> Path:
    """model.onnx: per-channel mean of the BGR input (0-255), a linear layer, a sigmoid; selected_tags.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    # channel means are B, G, R in 0..255; each row of `weight` maps them to one tag's logit
    weight = np.array([
        [0, 0, 0], [-0.05, 0, 0.05], [0.05, 0, -0.05], [0, 0, 0], [-0.02, 0, 0.02], [0, 0, 0],
    ], dtype=np.float32).T  # (3, tags)
    bias = np.array([4, 0, 0, 2, -3.5, -4], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input_1", "axes"], ["mean"], keepdims=0),
            helper.make_node("MatMul", ["mean", "weight"], ["logits"]),
            helper.make_node("Add", ["logits", "bias"], ["shifted"]),
            helper.make_node("Sigmoid", ["shifted"], ["predictions_sigmoid"]),
        ],
        "tagger",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["batch", len(TAGS)])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
         helper.make_tensor("weight", TensorProto.FLOAT, weight.shape, weight.ravel()),
         helper.make_tensor("bias", TensorProto.FLOAT, bias.shape, bias)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    lines = ["tag_id,name,category,count"] + [f"{i},{n},{c},100" for i, n, c in TAGS]
    (folder / "selected_tags.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_tags_over_their_thresholds_characters_first_ratings_never(tmp_path):
    tagger = Tagger(TaggerSettings(build_tagger(tmp_path / "tagger")))
    assert tagger.size == 32
    red = Image.new("RGB", (40, 40), (250, 0, 0))
    blue = Image.new("RGB", (40, 40), (0, 0, 250))
    # red: red_theme sigmoid(12.5), solo sigmoid(2) = 0.88, character sigmoid(1.5) = 0.82 < 0.85; rating never
    assert tagger.tags(red) == ["red theme", "solo"]
    assert tagger.tags(blue) == ["blue theme", "solo"]
    lenient = Tagger(TaggerSettings(tmp_path / "tagger", character_threshold=0.8, general_threshold=0.85,
                                    exclude=["red_theme"]))
    assert lenient.tags(red) == ["hatsune miku", "solo"]  # characters first; underscores as spaces; exclusion
    assert "^_^" not in tagger.tags(red)  # under its threshold; short tags would keep their underscores


def test_preprocess_captions_with_the_tagger(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64), (250, 0, 0)).save(src / "a.png")
    (src / "a.txt").write_text("my character")
    result = preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, caption_action="prepend",
                                         tagger=TaggerSettings(build_tagger(tmp_path / "tagger")), workers=1))
    assert result.written[0].with_suffix(".txt").read_text() == "my character, red theme, solo\n"


def test_a_broken_tagger_is_one_line_before_anything_is_written(tmp_path):
    folder = build_tagger(tmp_path / "tagger")
    (folder / "model.onnx").write_bytes(b"not onnx")
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 64)).save(src / "a.png")
    with pytest.raises(OnewordError, match="not a usable ONNX model"):
        preprocess(PreprocessConfig(src, tmp_path / "dst", width=64, tagger=TaggerSettings(folder)))
    assert not (tmp_path / "dst").exists()
    (folder / "model.onnx").unlink()
    with pytest.raises(OnewordError, match="no model.onnx in it"):
        Tagger(TaggerSettings(folder))

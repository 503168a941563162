"""Prompt templates: the six shipped files, a user's file, placeholders, tag shuffling and dropout."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from oneword.errors import OnewordError
from oneword.train.templates import (
    TEMPLATE_NAMES,
    caption_from_name,
    fill_template,
    read_template,
)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_shipped_template_reads_by_name_with_or_without_suffix(name):
    lines = read_template(name)
    assert lines == read_template(name + ".txt")
    assert all(line.strip() == line and line for line in lines)


def test_shipped_templates_use_the_placeholders_users_expect():
    assert all("[name]" in line and "[filewords]" not in line for line in read_template("subject"))
    assert all("[name]" in line and line.endswith("[filewords]") for line in read_template("subject_filewords"))
    assert all("[name]" in line for line in read_template("style"))
    assert all("[filewords]" in line and "[name]" not in line for line in read_template("hypernetwork"))
    assert read_template("none") == ["picture"]
    assert len(read_template("subject")) == 27 and len(read_template("style")) == 19


def test_a_users_file_is_read_without_blank_lines(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("a [name] doll\n\n  a toy [name], [filewords]  \n", encoding="utf-8")
    assert read_template(str(path)) == ["a [name] doll", "a toy [name], [filewords]"]


def test_unknown_template_and_empty_file_are_clear_errors(tmp_path):
    with pytest.raises(OnewordError, match=r"--template 'subjekt': no such file, and not a shipped template"):
        read_template("subjekt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(OnewordError, match="has no lines"):
        read_template(str(empty))


def test_placeholders_are_filled():
    rng = random.Random(0)
    assert fill_template("a photo of [name], [filewords]", "zq", "red hair, smiling", rng) == \
        "a photo of zq, red hair, smiling"


def test_shuffle_and_dropout_work_on_comma_separated_tags():
    tags = ",".join(f"t{i}" for i in range(20))
    shuffled = fill_template("[filewords]", "x", tags, random.Random(1), shuffle_tags=True)
    assert sorted(shuffled.split(",")) == sorted(tags.split(",")) and shuffled != tags
    dropped = fill_template("[filewords]", "x", tags, random.Random(2), tag_dropout=0.5)
    kept = dropped.split(",")
    assert 0 < len(kept) < 20 and all(t in tags.split(",") for t in kept)


def test_caption_from_file_name_drops_the_preprocess_index():
    assert caption_from_name(Path("00012-0-a girl with red hair.png")) == "a girl with red hair"
    assert caption_from_name(Path("portrait.jpg")) == "portrait"

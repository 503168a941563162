"""A1111's prompt tag syntax (modules/extra_networks.py): `<TYPE:ARG1:ARG2...>`, every tag out of the text."""

from __future__ import annotations

import pytest

from oneword.conditioning.tags import Tag, parse_tags
from oneword.errors import OnewordError
from oneword.extra_networks import check_prompt


def _items(prompt: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(tag.type, tag.items) for tag in parse_tags(prompt)[1]]


def test_several_tags_leave_the_text_and_keep_their_order():
    text, tags = parse_tags("1girl, <hypernet:agm:1.1> <extrasupernet:master:12:13:14> <hypernet:ray>")
    assert text == "1girl,   "  # each tag becomes nothing; the spaces between them stay
    assert [(t.type, t.items, t.text) for t in tags] == [
        ("hypernet", ("agm", "1.1"), "<hypernet:agm:1.1>"),
        ("extrasupernet", ("master", "12", "13", "14"), "<extrasupernet:master:12:13:14>"),
        ("hypernet", ("ray",), "<hypernet:ray>"),
    ]


def test_spaces_around_arguments_are_dropped_and_the_text_around_the_tag_is_kept():
    text, tags = parse_tags("a cat <hypernet: anime : 0.8 >, on grass")
    assert text == "a cat , on grass" and tags[0].items == ("anime", "0.8") and tags[0].weight(1) == 0.8


def test_what_is_not_a_tag_stays_text():
    # a type is one word (\w+): no space, no hyphen; a tag needs its colon and its closing bracket
    for prompt in ("a <b> c", "<hyper net:x:1>", "<hyper-net:x>", "<hypernet:x", "(a:1.2) [b]", "x > y < z"):
        assert parse_tags(prompt) == (prompt, [])


def test_a_tag_without_a_weight_weighs_1():
    tag = parse_tags("<hypernet:ink>")[1][0]
    assert tag.name == "ink" and tag.weight(1) == 1.0


def test_multiple_and_named_arguments_read_as_a1111s_lora_does():
    te_unet, named, mixed = parse_tags("<lora:face:0.6:0.9> <lora:face:te=0.25:unet=0.5> <lora:face:0.3:unet=2>")[1]
    assert (te_unet.weight(1, "te"), te_unet.weight(2, "unet")) == (0.6, 0.9)
    assert named.positional == ("face",) and named.named == {"te": "0.25", "unet": "0.5"}
    assert (named.weight(1, "te"), named.weight(2, "unet")) == (0.25, 0.5)
    assert (mixed.weight(1, "te"), mixed.weight(2, "unet", default=mixed.weight(1, "te"))) == (0.3, 2.0)
    assert Tag("lora", ("x", "a=b=c"), "<lora:x:a=b=c>").positional == ("x", "a=b=c")  # two `=`: positional


def test_a_weight_that_is_not_a_number_names_the_tag():
    tag = parse_tags("<lora:face:te=much>")[1][0]
    with pytest.raises(OnewordError, match=r"^prompt tag <lora:face:te=much>: the strength 'much' is not a number$"):
        tag.weight(1, "te")


def test_an_unknown_type_is_left_out_of_the_text_and_reported():
    # A1111 removes every tag and skips the types it has not registered
    assert parse_tags("a cat <style:face:0.7>")[0] == "a cat "
    assert check_prompt("a cat <style:face:0.7> <hypernet:ink>") == [
        "prompt tag <style:face:0.7>: unknown tag type 'style' (known: hypernet, lora); left out"]


def test_malformed_tags_of_a_known_type_fail_the_check():
    with pytest.raises(OnewordError, match=r"^prompt tag <hypernet:>: no hypernetwork name$"):
        check_prompt("a cat <hypernet:>")
    with pytest.raises(OnewordError, match=r"^prompt tag <hypernet:ink:lots>: the strength 'lots' is not a number$"):
        check_prompt("a cat <hypernet:ink:lots>")

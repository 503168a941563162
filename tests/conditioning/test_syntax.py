"""A1111 prompt attention syntax: weights computed by hand for every construct."""

from __future__ import annotations

import pytest

from oneword.conditioning.syntax import BREAK, is_break, parse_prompt_attention

UP = 1.1
DOWN = 1 / 1.1


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("normal text", [("normal text", 1.0)]),
        ("an (important) word", [("an ", 1.0), ("important", 1.0 * UP), (" word", 1.0)]),
        ("((word))", [("word", 1.0 * UP * UP)]),
        ("(((word)))", [("word", 1.0 * UP * UP * UP)]),
        ("[word]", [("word", 1.0 * DOWN)]),
        ("[[word]]", [("word", 1.0 * DOWN * DOWN)]),
        ("(word:1.3)", [("word", 1.3)]),
        ("a (word: 1.3 ) b", [("a ", 1.0), ("word", 1.3), (" b", 1.0)]),
        ("(word:.5)", [("word", 0.5)]),
        ("(word:-1)", [("word", -1.0)]),
        ("(word:+2.)", [("word", 2.0)]),
    ],
)
def test_single_constructs(prompt, expected):
    assert parse_prompt_attention(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("((a) b)", [("a", 1.0 * UP * UP), (" b", 1.0 * UP)]),
        ("[(a:1.5)]", [("a", 1.5 * DOWN)]),
        # (1/1.1) * 1.1 is exactly 1.0 in binary floating point, so "b" is back at 1.0 but not merged with "a ".
        ("(a [b] c)", [("a ", 1.1), ("b", 1.0), (" c", 1.1)]),
        ("((a:2) b:3)", [("a", 6.0), (" b", 3.0)]),
        ("[a (b) c]", [("a ", DOWN), ("b", 1.0 * UP * DOWN), (" c", DOWN)]),
        # A1111's own doctest: the first "(" is never closed and multiplies everything after it by 1.1.
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ("a ", 1.0),
                ("house", 1.3 * UP * UP),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.5 * UP),
                (", sun, ", 1.1),
                ("sky", 1.0 * UP * UP * UP * UP),
                (".", 1.1),
            ],
        ),
    ],
)
def test_nesting_multiplies(prompt, expected):
    assert parse_prompt_attention(prompt) == expected


def test_exact_values_of_common_weights():
    # The floats A1111 users see in its doctest and infotexts.
    assert parse_prompt_attention("((a))")[0][1] == 1.2100000000000002
    assert parse_prompt_attention("a (((house:1.3))")[1] == ("house", 1.5730000000000004)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (r"\(literal\]", [("(literal]", 1.0)]),
        (r"\[x\)", [("[x)", 1.0)]),
        (r"(\(x\))", [("(x)", 1.1)]),
        (r"a \\ b", [("a \\ b", 1.0)]),
        (r"\\(a)", [("\\", 1.0), ("a", 1.1)]),
        # A backslash before anything else is dropped, as in A1111.
        (r"a\b", [("ab", 1.0)]),
    ],
)
def test_escapes(prompt, expected):
    assert parse_prompt_attention(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("(unbalanced", [("unbalanced", 1.1)]),
        ("a ((b", [("a ", 1.0), ("b", 1.0 * UP * UP)]),
        ("[unbalanced", [("unbalanced", DOWN)]),
        # Open brackets are closed at the end: every "(" first, then every "[".
        ("[a (b", [("a ", DOWN), ("b", 1.0 * UP * DOWN)]),
        ("a) b]", [("a) b]", 1.0)]),
        ("x:1.5) y", [("x:1.5) y", 1.0)]),
        ("a:b", [("a:b", 1.0)]),
        ("(a:b)", [("a:b", 1.1)]),
        ("(a:1.2.3)", [("a:1.2.3", 1.1)]),
        ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
        ("()", [("", 1.0)]),
    ],
)
def test_unbalanced_and_stray(prompt, expected):
    assert parse_prompt_attention(prompt) == expected


def test_empty_prompt():
    assert parse_prompt_attention("") == [("", 1.0)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a BREAK b", [("a", 1.0), BREAK, ("b", 1.0)]),
        ("a, BREAK, b", [("a,", 1.0), BREAK, (", b", 1.0)]),
        ("BREAK a", [("", 1.0), BREAK, ("a", 1.0)]),
        ("a BREAK", [("a", 1.0), BREAK, ("", 1.0)]),
        ("a BREAK BREAK b", [("a", 1.0), BREAK, ("", 1.0), BREAK, ("b", 1.0)]),
        ("(a) BREAK (b)", [("a", 1.1), ("", 1.0), BREAK, ("", 1.0), ("b", 1.1)]),
        # Inside brackets BREAK still breaks and keeps -1 (A1111 would scale it and encode the word "break").
        ("(a BREAK b)", [("a", 1.1), BREAK, ("b", 1.1)]),
        # Only the uppercase word on its own.
        ("a break b", [("a break b", 1.0)]),
        ("a BREAKING b", [("a BREAKING b", 1.0)]),
        ("aBREAK b", [("aBREAK b", 1.0)]),
    ],
)
def test_break(prompt, expected):
    assert parse_prompt_attention(prompt) == expected


def test_is_break():
    fragments = parse_prompt_attention("a BREAK (b:-1)")
    assert fragments == [("a", 1.0), BREAK, ("", 1.0), ("b", -1.0)]
    assert [is_break(f) for f in fragments] == [False, True, False, False]
    assert BREAK == ("BREAK", -1.0)

"""A1111's schedule strings: values, the steps they hold until, the end of training, and clear errors."""

from __future__ import annotations

import pytest

from oneword.train.schedule import ScheduleError, parse_schedule


def test_a_bare_rate_holds_until_max_steps():
    schedule = parse_schedule("0.005", 300)
    assert schedule.entries == ((0.005, 300),)
    assert schedule.value(0) == 0.005 and schedule.value(299) == 0.005 and schedule.value(300) is None
    assert schedule.end == 300


def test_entries_hold_until_their_step_and_the_schedule_ends_with_the_last():
    schedule = parse_schedule("0.005:100, 1e-3:1000", 100000)
    assert schedule.value(0) == 0.005
    assert schedule.value(99) == 0.005  # the 100th step still uses the first rate
    assert schedule.value(100) == 1e-3
    assert schedule.value(999) == 1e-3
    assert schedule.value(1000) is None  # training stops after 1,000 steps
    assert schedule.end == 1000


def test_a_trailing_bare_rate_or_minus_one_runs_to_max_steps():
    assert parse_schedule("0.005:100, 1e-3:1000, 1e-5", 5000).entries == ((0.005, 100), (1e-3, 1000), (1e-5, 5000))
    assert parse_schedule("0.005:100, 1e-5:-1", 5000).entries == ((0.005, 100), (1e-5, 5000))


def test_max_steps_cuts_the_schedule():
    assert parse_schedule("0.005:100, 1e-3:1000, 1e-5", 500).entries == ((0.005, 100), (1e-3, 500))


def test_spaces_and_empty_entries_are_ignored():
    assert parse_schedule(" 0.01 : 10 ,, 0.001 ", 50).entries == ((0.01, 10), (0.001, 50))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("abc", "entry 1 'abc': 'abc' is not a number"),
        ("0.005:100, 1e-3:x", "entry 2 '1e-3:x': step 'x' is not a whole number"),
        ("0.005:100, 1e-3:50", "entry 2 '1e-3:50': steps must increase"),
        ("0.005, 1e-3:1000", "entry 2 '1e-3:1000' comes after an entry that runs to max steps"),
        ("0.005:0", "the step must be a positive whole number"),
        ("-1:100", "the value must be a finite number >= 0"),
        ("0.005:", "no step after ':'"),
        ("", "is empty"),
    ],
)
def test_malformed_schedules_name_the_option_and_the_entry(text, fragment):
    with pytest.raises(ScheduleError) as error:
        parse_schedule(text, 1000, "--learn-rate")
    assert str(error.value).startswith("--learn-rate")
    assert fragment in str(error.value)

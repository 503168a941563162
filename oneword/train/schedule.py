"""A1111's schedule strings: "0.005:100, 1e-3:1000, 1e-5" for the learning rate and the gradient clip value.

Each comma-separated entry is `value:step` (the value holds until that many optimizer steps are done) or a bare
`value` (or `value:-1`), which holds until max steps. Training ends when the schedule runs out, so
"0.005:100, 1e-3:1000" stops after 1,000 steps whatever max steps says. Entries after a bare value are ignored
by A1111; oneword reports them, since they can only be a mistake.
"""

from __future__ import annotations

from dataclasses import dataclass

from oneword.errors import OnewordError


class ScheduleError(OnewordError):
    """A malformed schedule string; the message names the option, the entry and what is wrong with it."""


@dataclass(frozen=True)
class Schedule:
    """Values with the step count each one holds until: ((value, end_step), ...), end steps increasing."""

    entries: tuple[tuple[float, int], ...]

    @property
    def end(self) -> int:
        """Optimizer steps after which the schedule has run out."""
        return self.entries[-1][1]

    def value(self, done: int) -> float | None:
        """The value for the step after `done` optimizer steps; None once the schedule has run out."""
        for value, end in self.entries:
            if done < end:
                return value
        return None


def schedule_problem(text: str, max_steps: int, option: str) -> str | None:
    """What is wrong with a schedule string for a run of at most `max_steps` steps (at least 1), or None."""
    try:
        parse_schedule(text, max(max_steps, 1), option)
    except OnewordError as error:
        return str(error)
    return None


def parse_schedule(text: str, max_steps: int, option: str = "--learn-rate") -> Schedule:
    """Parse a schedule string for a run of at most `max_steps` steps; ScheduleError says which entry is wrong."""
    problems = []
    entries: list[tuple[float, int]] = []
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise ScheduleError(f"{option} is empty; give a value such as 0.005 or a schedule such as \"0.005:100, 1e-3\"")
    closed = False
    for number, part in enumerate(parts, start=1):
        where = f"entry {number} {part!r}"
        if not part:
            continue
        if closed:
            problems.append(f"{where} comes after an entry that runs to max steps")
            break
        value_text, _, step_text = part.partition(":")
        try:
            value = float(value_text)
        except ValueError:
            problems.append(f"{where}: {value_text.strip()!r} is not a number")
            continue
        if not value >= 0 or value == float("inf"):
            problems.append(f"{where}: the value must be a finite number >= 0")
            continue
        if not step_text.strip():
            if ":" in part:
                problems.append(f"{where}: no step after ':'")
                continue
            step = -1
        else:
            try:
                step = int(step_text)
            except ValueError:
                problems.append(f"{where}: step {step_text.strip()!r} is not a whole number")
                continue
        if step == -1:
            closed = True
            step = max_steps
        elif step <= 0:
            problems.append(f"{where}: the step must be a positive whole number (or -1 for max steps)")
            continue
        if entries and step <= entries[-1][1] and not closed:
            problems.append(f"{where}: steps must increase (the previous entry ends at {entries[-1][1]})")
            continue
        entries.append((value, min(step, max_steps)))
        if step >= max_steps and not closed:
            break  # max steps cuts the schedule here, as in A1111
    if problems:
        raise ScheduleError(f"{option} {text!r}: " + "; ".join(problems))
    return Schedule(tuple(entries))

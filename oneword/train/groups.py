"""Parameter groups: the named sets of a trainable's tensors, each with its own learning-rate schedule (A1111's
schedule string) and weight decay, trained as one AdamW param group each.

The run ends when the longest group schedule runs out, or at max steps. A group whose schedule ran out earlier is
held still (rate 0) while the others go on. With one group this is A1111's rule: training ends when the schedule
runs out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from oneword.errors import OnewordError, gather
from oneword.train.schedule import Schedule, parse_schedule

GROUP_NAME = re.compile(r"[A-Za-z0-9_]+")
"""A group's name: it names a CSV column (`learn_rate_NAME`)."""


@dataclass
class ParamGroup:
    """One set of a trainable's tensors with its own schedule and weight decay."""

    name: str
    """`vectors`, `modules`...: names its rate in the CSV (`learn_rate_NAME`, after the first group) and the UI."""
    params: list[torch.Tensor]
    learn_rate: str
    """The group's schedule string ("0.005:100, 1e-3:1000, 1e-5")."""
    weight_decay: float = 0.0
    """AdamW's weight decay for these tensors."""
    option: str = "--learn-rate"
    """What the schedule came from, as an error message names it."""


@dataclass(frozen=True)
class GroupSchedules:
    """The schedules of a run's parameter groups, in the optimizer's group order."""

    names: tuple[str, ...]
    schedules: tuple[Schedule, ...]

    @classmethod
    def parse(cls, groups: list[ParamGroup], max_steps: int) -> GroupSchedules:
        """Every group's schedule for a run of at most `max_steps` steps; one error lists every problem."""
        problems, schedules = [], []
        names = [g.name for g in groups]
        if not groups:
            problems.append("the trainable has no parameter group")
        for name in dict.fromkeys(names):
            if not GROUP_NAME.fullmatch(name):
                problems.append(f"parameter group {name!r}: a name is letters, digits and '_'")
            if names.count(name) > 1:
                problems.append(f"parameter group {name!r} is named {names.count(name)} times")
        for group in groups:
            try:
                schedules.append(parse_schedule(group.learn_rate, max_steps, group.option))
            except OnewordError as error:
                problems.append(str(error))
        gather(problems)
        return cls(tuple(names), tuple(schedules))

    @property
    def end(self) -> int:
        """Optimizer steps after which every schedule has run out."""
        return max(s.end for s in self.schedules)

    def at(self, done: int) -> tuple[float, ...] | None:
        """Each group's rate for the step after `done` optimizer steps (0 for a group whose schedule has run out);
        None once every schedule has run out."""
        values = [s.value(done) for s in self.schedules]
        if all(v is None for v in values):
            return None
        return tuple(0.0 if v is None else v for v in values)

    def named(self, rates: tuple[float, ...]) -> dict[str, float]:
        """The rates by group name."""
        return dict(zip(self.names, rates))


def set_rates(optimizer: torch.optim.Optimizer, rates: tuple[float, ...]) -> None:
    """Give each of the optimizer's param groups its rate for the coming step."""
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = rate

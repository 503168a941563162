"""Create a new hypernetwork, as A1111's "Create hypernetwork" does: modules, layer structure, activation,
initialization, layer norm, dropout; written as HYPERNETWORK_DIR/NAME.pt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oneword.embeddings.create import name_problems
from oneword.errors import OnewordError, gather
from oneword.hypernetworks.formats import save_hypernetwork
from oneword.hypernetworks.hypernetwork import Hypernetwork, HypernetworkSettings, new_hypernetwork, parse_numbers
from oneword.outputs import exists_problem, new_file_problem

if TYPE_CHECKING:
    from oneword.models.base import BaseModel

FORMATS = ("pt", "safetensors")


@dataclass
class CreateHypernetworkConfig:
    """What `oneword create-hypernetwork` is asked to do (A1111's options and defaults)."""

    name: str
    """The file stem and the prompt's `<hypernet:NAME:1>`: letters, digits, `_`, `-` and `.` only."""
    modules: str = ""
    """Context widths to give modules, like `768, 320, 640, 1280`; empty: every width the model's attention sees."""
    layer_structure: str = "1, 2, 1"
    """Layer widths as multiples of the context width; starts and ends with 1."""
    activation: str = "linear"
    """linear, relu, leakyrelu, elu, swish, tanh, sigmoid, gelu, silu, mish ..."""
    weight_init: str = "Normal"
    """Normal, XavierUniform, XavierNormal, KaimingUniform or KaimingNormal."""
    layer_norm: bool = False
    """Add layer normalization after each layer."""
    use_dropout: bool = False
    """Use the dropout structure."""
    dropout_structure: str = "0, 0, 0"
    """A rate after each layer (first and last 0); read only with use_dropout."""
    hypernetwork_dir: Path = Path("hypernetworks")
    """Folder the file is written to."""
    overwrite: bool = False
    """Replace an existing file of the same name."""
    format: str = "pt"
    """`pt` (A1111's) or `safetensors`."""
    seed: int = 0
    """Seed of the initial weights."""

    @property
    def path(self) -> Path:
        """HYPERNETWORK_DIR/NAME.FORMAT."""
        return Path(self.hypernetwork_dir) / f"{self.name}.{self.format}"

    def settings(self) -> tuple[HypernetworkSettings | None, list[str]]:
        """The settings these options make, and every problem with them."""
        problems = []
        try:
            structure = parse_numbers(self.layer_structure, "--layer-structure")
        except ValueError as e:
            return None, [str(e)]
        dropout = None
        if self.use_dropout:
            try:
                dropout = parse_numbers(self.dropout_structure, "--dropout-structure")
            except ValueError as e:
                problems.append(str(e))
        else:
            dropout = [0.0] * len(structure)
        settings = HypernetworkSettings(
            layer_structure=structure, activation_func=self.activation, weight_initialization=self.weight_init,
            add_layer_norm=self.layer_norm, use_dropout=self.use_dropout, dropout_structure=dropout,
        )
        problems += [_as_option(p) for p in settings.problems()]
        return settings, problems

    def widths(self) -> tuple[list[int], list[str]]:
        """The --modules widths (empty: the model's), and what is wrong with them."""
        if not self.modules.strip():
            return [], []
        try:
            values = parse_numbers(self.modules, "--modules")
        except ValueError as e:
            return [], [str(e)]
        bad = [v for v in values if v != int(v) or v < 1]
        if bad:
            return [], [f"--modules {self.modules!r}: context widths are whole numbers above 0"]
        return [int(v) for v in values], []


OPTION_NAMES = {"layer structure": "--layer-structure", "dropout structure": "--dropout-structure",
                "activation": "--activation", "weight initialization": "--weight-init"}


def _as_option(problem: str) -> str:
    """A settings problem with its leading setting name written as the option that sets it."""
    for label, option in OPTION_NAMES.items():
        if problem.startswith(label):
            return option + problem[len(label):]
    return problem


def check_create(config: CreateHypernetworkConfig) -> None:
    """One OnewordError with every problem of the options, the existing file included (before a model loads)."""
    _, problems = config.settings()
    problems = name_problems(config.name) + config.widths()[1] + problems
    if config.format not in FORMATS:
        problems.append(f"--format: {config.format!r} is not one of {', '.join(FORMATS)}")
    if not problems:
        problems += [p for p in (new_file_problem(config.hypernetwork_dir, config.path.name,
                                                  overwrite=config.overwrite),) if p]
    gather(problems)


def create_hypernetwork(model: BaseModel, config: CreateHypernetworkConfig) -> Hypernetwork:
    """A new hypernetwork (step 0) for `model`; at least one of its widths must be one the model's attention sees."""
    from oneword.hypernetworks.apply import widths_of

    check_create(config)
    settings, _ = config.settings()
    used = widths_of(model.unet)
    widths = config.widths()[0] or used
    if not set(widths) & set(used):
        gather([f"--modules {config.modules!r}: {model.name} has no attention of these widths; its widths are "
                f"{', '.join(map(str, used))}"])
    hypernetwork = new_hypernetwork(config.name, widths, settings, seed=config.seed)
    hypernetwork.sd_checkpoint, hypernetwork.sd_checkpoint_name = model.short_hash, model.name
    return hypernetwork


def create_hypernetwork_file(model: BaseModel, config: CreateHypernetworkConfig) -> tuple[Path, Hypernetwork]:
    """Create the hypernetwork of `config` and write it (refusing an existing file unless `overwrite`)."""
    hypernetwork = create_hypernetwork(model, config)
    try:
        save_hypernetwork(hypernetwork, config.path, overwrite=config.overwrite)
    except FileExistsError:  # written by another process since the check
        raise OnewordError(exists_problem(config.path)) from None
    return config.path, hypernetwork

"""The Train tab's NAME names files the run reads and writes (NAME.pt in the kind's folder, the run's log folder
LOG_DIR/DAY/NAME): a link there is refused before the run starts, so nothing is read or written through it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PIL import Image

from oneword.errors import OnewordError
from oneword.ui.paths import Workspace
from oneword.ui.tabs import train


def _values(**given) -> list:
    specs = train.train_specs()
    values = [{"data": "datasets/star", "width": "", "clip": None, **given}.get(s.name, s.default) for s in specs]
    return [v.as_posix() if isinstance(v, Path) else v for v in values]


@pytest.fixture
def space(tmp_path) -> Workspace:
    space = Workspace.at(tmp_path / "ws")
    (space.root / "datasets" / "star").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(space.root / "datasets" / "star" / "0.png")
    return space


def test_a_link_where_the_names_file_is_is_refused(space, tmp_path):
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"not the workspace's")
    (space.root / "embeddings").mkdir()
    (space.root / "embeddings" / "zq.pt").symlink_to(outside)
    (space.root / "lora").mkdir()
    (space.root / "lora" / "zq.safetensors").symlink_to(space.root / "datasets" / "star" / "0.png")
    with pytest.raises(OnewordError) as refused:
        train.train_config(space, train.train_specs(), _values(name="zq"))
    assert str(refused.value) == f"NAME: {space.root / 'embeddings' / 'zq.pt'} is a link; nothing is written through it"
    with pytest.raises(OnewordError) as refused:
        train.train_config(space, train.train_specs(), _values(name="zq", kind="lora", learn_rate="", template=""))
    assert str(refused.value) == (f"NAME: {space.root / 'lora' / 'zq.safetensors'} is a link; nothing is written "
                                  "through it")
    assert train.train_config(space, train.train_specs(), _values(name="other")).name == "other"


def test_a_log_folder_of_the_name_that_links_outside_the_workspace_is_refused(space, tmp_path):
    day = space.root / "textual_inversion" / dt.date.today().isoformat()
    day.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (day / "zq").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OnewordError) as refused:
        train.train_config(space, train.train_specs(), _values(name="zq"))
    assert str(refused.value) == (f"NAME: {day / 'zq'} is a link; the run's log folder is written inside "
                                  f"{day}, never through a link")
    assert list((tmp_path / "elsewhere").iterdir()) == []
    (day / "zq").unlink()
    day.rmdir()
    day.symlink_to(tmp_path / "elsewhere")  # the day's folder itself leads out
    with pytest.raises(OnewordError) as refused:
        train.train_config(space, train.train_specs(), _values(name="zq"))
    assert str(refused.value) == (f"NAME: the run's log folder {day / 'zq'} leads outside the workspace {space.root} "
                                  "(refused)")

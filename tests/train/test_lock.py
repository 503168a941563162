"""The run lock: a lock file that cannot be written or is not a lock file is refused with one line naming it, and
nothing is left behind."""

from __future__ import annotations

import os

import pytest
from cli_helpers import fill_the_disk

from oneword.errors import OnewordError
from oneword.train.lock import RunLock


def test_a_full_disk_names_the_lock_file_and_leaves_none(tmp_path, monkeypatch):
    fill_the_disk(monkeypatch, ".lock")
    lock = tmp_path / ".zqx.lock"
    with pytest.raises(OnewordError) as error:
        with RunLock([lock]):
            pass
    assert str(error.value) == f"{lock}: cannot write the run's lock file: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_lock_that_is_a_link_is_named_as_one(tmp_path):
    lock = tmp_path / ".zqx.lock"
    lock.symlink_to(tmp_path / "gone")
    with pytest.raises(OnewordError) as error:
        with RunLock([lock]):
            pass
    assert str(error.value) == (f"{lock}: a link (to {tmp_path / 'gone'}), not a lock file oneword wrote: delete "
                                "the link and start again")
    assert lock.is_symlink() and not (tmp_path / "gone").exists()


def test_a_lock_taken_and_released_leaves_nothing(tmp_path):
    lock = tmp_path / "sub" / ".zqx.lock"
    with RunLock([lock]):
        assert lock.read_text(encoding="utf-8").split()[0] == str(os.getpid())
    assert not lock.exists()

"""Files written whole: the permissions a plain write gives, and the temporaries a killed write leaves behind."""

from __future__ import annotations

import os
import stat

import pytest

from oneword.files import atomic_write_text, remove_temporaries


@pytest.fixture
def umask():
    """Set the process umask for a test, restored after it."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_0666_less_the_umask_and_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o027)
    atomic_write_text(tmp_path / "new.csv", "a\n")
    assert _mode(tmp_path / "new.csv") == 0o640
    umask(0o002)
    atomic_write_text(tmp_path / "group.csv", "a\n")
    assert _mode(tmp_path / "group.csv") == 0o664
    (tmp_path / "old.csv").write_text("old")
    os.chmod(tmp_path / "old.csv", 0o604)
    atomic_write_text(tmp_path / "old.csv", "new\n")
    assert _mode(tmp_path / "old.csv") == 0o604 and (tmp_path / "old.csv").read_text() == "new\n"


def test_a_trained_embedding_is_readable_by_the_group_under_umask_022(tmp_path, umask):
    from train.train_helpers import settings

    from oneword.models.tiny import build_tiny
    from oneword.train.loop import train

    umask(0o022)
    finished = train(settings(tmp_path, max_steps=2, save_every=2), build_tiny("sd1", seed=0))
    written = [finished.embedding_path, *(p for p in finished.log_folder.rglob("*") if p.is_file())]
    assert {oct(_mode(p)) for p in written} == {oct(0o644)}


def test_only_the_temporaries_of_the_named_files_are_removed(tmp_path):
    for name in (".zqx.pt.ab12cd34.tmp", ".zqx.pt.optim.k9_q7ua9.tmp", ".other.pt.ab12cd34.tmp", "zqx.pt",
                 ".zqx.pt.tmp", "notes.tmp"):
        (tmp_path / name).write_text("x")
    removed = remove_temporaries(tmp_path, ["zqx.pt", "zqx.pt.optim"])
    assert sorted(p.name for p in removed) == [".zqx.pt.ab12cd34.tmp", ".zqx.pt.optim.k9_q7ua9.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.ab12cd34.tmp", ".zqx.pt.tmp", "notes.tmp",
                                                          "zqx.pt"]

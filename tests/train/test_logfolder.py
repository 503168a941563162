"""The log folder of a run: a run of one kind never writes into the folder of a run of another kind (their
`checkpoints.csv`, `loss.png`, `previews.png` and previews have the same names)."""

from __future__ import annotations

import datetime as dt
import types

from cli_helpers import run_in_process
from train.train_helpers import write_images


def _train(tmp_path, command: str, *extra: str) -> list[str]:
    return [command, "zqx", "--model", "tiny-sd1", "--data", str(tmp_path / "data"), "--log-dir",
            str(tmp_path / "log"), "--embeddings-dir", str(tmp_path / "emb"), "--lora-dir", str(tmp_path / "lora"),
            "--max-steps", "2", "--save-every", "2", "--preview-every", "0", "--validate-every", "0",
            "--device", "cpu", *extra]


def _files(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class _Day(dt.date):
    @classmethod
    def today(cls):
        return cls(2026, 12, 7)  # one day for both runs, whenever the test runs


def test_a_run_of_another_kind_is_refused_the_folder_of_todays_run_of_the_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("oneword.train.logfolder.dt", types.SimpleNamespace(date=_Day, datetime=dt.datetime))
    write_images(tmp_path / "data")
    code, _, err = run_in_process(monkeypatch, capsys, *_train(tmp_path, "train"))
    assert code == 0, err
    before = _files(tmp_path)
    folder = tmp_path / "log" / "2026-12-07" / "zqx"
    code, out, err = run_in_process(monkeypatch, capsys, *_train(tmp_path, "train-lora"))
    assert (code, out) == (1, "")
    assert err == (f"error: --log-dir {tmp_path / 'log'}: {folder} holds today's embedding run of zqx, whose "
                   "checkpoints.csv, loss.png and previews a lora run would replace: give this run another --log-dir "
                   f"(e.g. {tmp_path / 'log' / 'lora'}) or another NAME\n")
    assert _files(tmp_path) == before
    code, _, err = run_in_process(monkeypatch, capsys, *_train(tmp_path, "train-lora", "--log-dir",
                                                               str(tmp_path / "log" / "lora")))
    assert code == 0, err
    assert {p.relative_to(tmp_path) for p in before} < {p.relative_to(tmp_path) for p in _files(tmp_path)}
    assert all(p.read_bytes() == data for p, data in before.items())  # the embedding run's files, untouched
    from oneword.ui.paths import Workspace
    from oneword.ui.tabs import runs

    assert sorted(runs.run_folders(Workspace.at(tmp_path))) == ["log/2026-12-07/zqx", "log/lora/2026-12-07/zqx"]

"""`oneword demo` through the real entry point, shortened: its last lines, its log folder and its grid."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import run_in_process


def test_demo_prints_the_verdict_and_writes_the_log_folder(tmp_path, monkeypatch, capsys):
    code, out, err = run_in_process(monkeypatch, capsys, "demo", "--steps", "20", "--samples", "4",
                                    "--log-dir", str(tmp_path / "runs"))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert re.fullmatch(r"judged accuracy: before \d+% -> after \d+%", lines[-2])
    assert lines[-1].startswith("log folder: ")
    folder = Path(lines[-1].split(": ", 1)[1])
    assert folder.parent.parent == tmp_path / "runs" and folder.name == "star-demo"
    assert folder.is_dir() and (folder / "comparison.png").is_file()
    assert (folder / "textual_inversion_loss.csv").read_text().startswith("step,epoch,epoch_step,loss,learn_rate,val_loss\n")
    assert (tmp_path / "runs" / "embeddings" / "star-demo.pt").is_file()
    assert len(list((tmp_path / "runs" / "datasets" / "star").glob("*.png"))) == 12

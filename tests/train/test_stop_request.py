"""A caller in another thread asks a running fit to stop: it saves and ends as Ctrl-C does."""

from __future__ import annotations

import threading

from train_helpers import settings

from oneword.embeddings.formats import load_embedding_file
from oneword.models.tiny import build_tiny
from oneword.train import events
from oneword.train.loop import fit, setup


def test_a_stop_request_from_another_thread_saves_like_ctrl_c(tmp_path, monkeypatch):
    monkeypatch.setattr("oneword.train.loop.PROGRESS_EVERY", 1)
    run = setup(settings(tmp_path), build_tiny("sd1", seed=0))
    requested = threading.Event()
    seen = []

    def listener(event):
        seen.append(event)
        if isinstance(event, events.Progress) and event.step == 4:
            requested.set()

    result = {}
    worker = threading.Thread(target=lambda: result.update(finished=fit(run, listener, stop=requested.is_set)))
    worker.start()
    worker.join()
    finished = result["finished"]
    assert (finished.reason, finished.step) == ("interrupted", 4)
    assert load_embedding_file(finished.embedding_path).step == 4
    assert finished.embedding_path.with_name("zqx.pt.optim").is_file()
    assert "--resume" in finished.message
    assert isinstance(seen[-1], events.Finished)

"""The toy model's 64 px previews in the Train tab's gallery: shown at most 4x their size, each caption whole (the
page is the only place that shows it), the gallery no taller than its row; every picture of the app below its label
and buttons."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from oneword.ui.jobs import JobState


class _Finished:
    """A job that has ended with three previews, step 250 the best."""

    def __init__(self, previews: list[tuple[int, Path]]) -> None:
        self._state = JobState(status="finished", name="zq", step=2500, total_steps=2500, previews=previews,
                               best_step=250, message="trained 2500 steps", version=1)

    def state(self) -> JobState:
        return self._state

    def join(self, timeout: float | None = None) -> None:
        """Nothing runs."""


def test_small_previews_are_not_blown_up_and_their_captions_are_whole(page, server, workspace):
    images = workspace.root / "textual_inversion" / "2026-01-02" / "zq" / "images"
    images.mkdir(parents=True)
    previews = []
    for step in (25, 250, 2500):
        Image.new("RGB", (64, 64), (step % 256, 90, 200)).save(images / f"zq-{step}.png")
        previews.append((step, images / f"zq-{step}.png"))
    server.jobs.current = _Finished(previews)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.reload()
    page.get_by_role("tab", name="Train", exact=True).first.click()
    page.locator("#train-previews img").nth(2).wait_for()
    sizes = page.eval_on_selector_all("#train-previews .thumbnail-item img", "els => els.map(e => "
                                      "[e.getBoundingClientRect().width, e.getBoundingClientRect().height])")
    assert len(sizes) == 3 and all(0 < w <= 4 * 64 and 0 < h <= 4 * 64 for w, h in sizes), sizes
    captions = page.locator("#train-previews .caption-label")
    assert captions.all_inner_texts() == ["step 25", "step 250 ★ best", "step 2500"]
    cut = page.eval_on_selector_all("#train-previews .caption-label",
                                    "els => els.filter(e => e.scrollWidth > e.clientWidth).length")
    assert cut == 0
    # the gallery is as tall as its one row of pictures (Gradio's 450 px at least would leave an empty band)
    rows, wrap = page.eval_on_selector("#train-previews .grid-wrap", "e => [e.querySelector('.grid-container')"
                                       ".getBoundingClientRect().height, e.getBoundingClientRect().height]")
    assert rows <= 4 * 64 + 8 and wrap <= rows + 2 * 16, (rows, wrap)


def test_every_gallery_of_the_app_keeps_its_cells_in_bounds(tmp_path):
    import gradio as gr

    from oneword.ui import galleries
    from oneword.ui.app import build_app
    from oneword.ui.jobs import Jobs
    from oneword.ui.paths import Workspace

    app = build_app(Workspace.at(tmp_path), Jobs(lambda *a, **k: None))
    shown = {b.elem_id: (list(b.elem_classes), b.fit_columns, b.object_fit) for b in app.blocks.values()
             if isinstance(b, gr.Gallery)}
    assert set(shown) == {"prepare-flagged", "train-previews", "generate-images", "runs-previews"}
    assert all(v == ([galleries.CLASS], False, "contain") for v in shown.values()), shown
    pictures = {b.elem_id: list(b.elem_classes) for b in app.blocks.values() if isinstance(b, gr.Image)}
    assert pictures == {"runs-loss": [galleries.PICTURE_CLASS], "compare-grid": [galleries.PICTURE_CLASS]}

"""The Train tab's curves reach Gradio with a numeric step axis from the first draw: the page keeps the axes of the
first table a plot receives (before any measurement: an empty one) and only replaces the data afterwards, so an
untyped empty table made the validation loss's two points two categories with no line between them."""

from __future__ import annotations

import gradio as gr
import pytest

from oneword.ui import charts
from oneword.ui.jobs import JobState


def _drawn(frame, y: str):
    """What Gradio's line plot sends the page for `frame`."""
    return gr.LinePlot(x="step", y=y, color="series").postprocess(frame)


@pytest.mark.parametrize("points", [0, 1, 2])
def test_the_curves_have_a_numeric_step_axis_however_few_points_they_have(points):
    state = JobState()
    state.val_loss = [(50 * (i + 1), 0.3 - 0.01 * i) for i in range(points)]
    state.train_loss = [(i + 1, 0.5, 0.5) for i in range(points)]
    state.scores = [(50 * (i + 1), "fake", 0.5) for i in range(points)]
    for frame, y in ((charts.validation_frame(state), "loss"), (charts.loss_frame(state), "loss"),
                     (charts.scores_frame(state), "score")):
        plot = _drawn(frame, y)
        assert (plot.mark, plot.datatypes) == ("line", {"step": "quantitative", y: "quantitative",
                                                        "series": "nominal"})
    assert _drawn(charts.validation_frame(state), "loss").data == [
        [50 * (i + 1), pytest.approx(0.3 - 0.01 * i), "val_loss"] for i in range(points)]

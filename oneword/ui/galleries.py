"""The UI's picture galleries (previews, generated images, flagged pictures): cells at most MAX_CELL_PX wide, so the
toy model's 64 px pictures show at most 4x their size instead of stretched across the page, each caption whole."""

from __future__ import annotations

import gradio as gr

MAX_CELL_PX = 256
"""The widest a gallery cell gets: 4x the toy model's 64 px (an SD picture is shown smaller; a click opens it)."""
CLASS = "oneword-gallery"
CSS = f"""
.{CLASS} .grid-container {{
  grid-template-columns: repeat(auto-fill, minmax(100px, {MAX_CELL_PX}px)) !important;
  grid-template-rows: none !important;
}}
.{CLASS} .thumbnail-item {{ max-width: {MAX_CELL_PX}px; }}
.{CLASS} .caption-label {{ max-width: calc(100% - 8px) !important; white-space: normal !important; }}
"""
"""Gradio's grid stretches its columns to the page and cuts a caption at 80% of its cell; this keeps both in bounds
(the server passes it to the page)."""


def gallery(label: str, elem_id: str) -> gr.Gallery:
    """A gallery of pictures with captions, sized by CSS."""
    return gr.Gallery(label=label, elem_id=elem_id, elem_classes=[CLASS], columns=8, fit_columns=False,
                      object_fit="contain", height="auto")

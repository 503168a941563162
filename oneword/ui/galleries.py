"""The UI's pictures: galleries (previews, generated images, flagged pictures) with cells at most MAX_CELL_PX wide, so
the toy model's 64 px pictures show at most 4x their size instead of stretched across the page, each caption whole
and the gallery no taller than its rows; and single pictures (loss.png, Compare's grid) that their label and buttons
do not cover."""

from __future__ import annotations

import gradio as gr

MAX_CELL_PX = 256
"""The widest a gallery cell gets: 4x the toy model's 64 px (an SD picture is shown smaller; a click opens it)."""
CLASS = "oneword-gallery"
PICTURE_CLASS = "oneword-picture"
CSS = f"""
.{CLASS} .grid-container {{
  grid-template-columns: repeat(auto-fill, minmax(100px, {MAX_CELL_PX}px)) !important;
  grid-template-rows: none !important;
}}
.{CLASS} .thumbnail-item {{ max-width: {MAX_CELL_PX}px; }}
.{CLASS} .caption-label {{ max-width: calc(100% - 8px) !important; white-space: normal !important; }}
.{CLASS} .grid-wrap.fixed-height {{ min-height: 0 !important; }}
.{PICTURE_CLASS} .image-frame {{ padding-top: var(--size-9); }}
"""
"""Gradio's grid stretches its columns to the page, cuts a caption at 80% of its cell and keeps a gallery at least
450 px tall on a wide window (one row of 64 px previews above an empty band); its label and buttons float over the
top of a single picture, where a plot has its highest tick and its legend and Compare's grid its column labels.
This keeps all of them in bounds (the server passes it to the page)."""


def gallery(label: str, elem_id: str) -> gr.Gallery:
    """A gallery of pictures with captions, sized by CSS."""
    return gr.Gallery(label=label, elem_id=elem_id, elem_classes=[CLASS], columns=8, fit_columns=False,
                      object_fit="contain", height="auto")


def picture(label: str, elem_id: str) -> gr.Image:
    """One picture shown from a file, below its label and its buttons (full screen, download)."""
    return gr.Image(label=label, type="filepath", elem_id=elem_id, elem_classes=[PICTURE_CLASS],
                    buttons=["fullscreen", "download"], interactive=False)

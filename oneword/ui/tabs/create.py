"""The Create tab: a new embedding (A1111's Create embedding) and a new hypernetwork (Create hypernetwork)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from oneword.embeddings.create import FORMATS, CreateEmbeddingConfig, check_create, create_embedding_file
from oneword.errors import OnewordError
from oneword.hypernetworks import create as hyper
from oneword.hypernetworks.hypernetwork import ACTIVATIONS
from oneword.train.config import TrainConfig
from oneword.ui.fields import FieldSpec, field_docs, form_specs
from oneword.ui.models import ModelCache
from oneword.ui.paths import BUNDLED_MODELS, Workspace
from oneword.ui.widgets import message, settings_from, widgets

WEIGHT_INITS = ("Normal", "XavierUniform", "XavierNormal", "KaimingUniform", "KaimingNormal")
MODEL = FieldSpec("model", "choice", "toy", field_docs(TrainConfig)["model"], BUNDLED_MODELS)


def embedding_specs() -> list[FieldSpec]:
    """CreateEmbeddingConfig's fields, then the model."""
    return [*form_specs(CreateEmbeddingConfig, choices={"format": FORMATS}, paths=("embeddings_dir",)), MODEL]


def hypernetwork_specs() -> list[FieldSpec]:
    """CreateHypernetworkConfig's fields, then the model."""
    choices = {"format": hyper.FORMATS, "activation": tuple(ACTIVATIONS), "weight_init": WEIGHT_INITS}
    return [*form_specs(hyper.CreateHypernetworkConfig, choices=choices, paths=("hypernetwork_dir",)), MODEL]


def create_embedding(workspace: Workspace, models: ModelCache, specs: list[FieldSpec], values: list[Any]) -> str:
    """Write EMBEDDINGS_DIR/NAME.pt from the form; the message names the file."""
    try:
        settings = settings_from(specs, values, workspace, special={"model": workspace.model})
        model = settings.pop("model")
        config = CreateEmbeddingConfig(**settings)
        check_create(config)
        with models.use(model) as base:
            path, embedding = create_embedding_file(base, config)
    except OnewordError as error:
        return message(str(error), error=True)
    return f"wrote {workspace.relative(path)} ({embedding.n_vectors} vectors, init text {config.init_text!r})"


def create_hypernetwork(workspace: Workspace, models: ModelCache, specs: list[FieldSpec], values: list[Any]) -> str:
    """Write HYPERNETWORK_DIR/NAME.pt from the form; the message names the file."""
    try:
        settings = settings_from(specs, values, workspace, special={"model": workspace.model})
        model = settings.pop("model")
        config = hyper.CreateHypernetworkConfig(**settings)
        hyper.check_create(config)
        with models.use(model) as base:
            path, network = hyper.create_hypernetwork_file(base, config)
    except OnewordError as error:
        return message(str(error), error=True)
    return f"wrote {workspace.relative(path)} (modules {', '.join(map(str, network.widths))})"


def build(workspace: Workspace, models: ModelCache) -> None:
    """The tab's layout and events."""
    e_specs, h_specs = embedding_specs(), hypernetwork_specs()
    with gr.Row():
        with gr.Column():
            gr.Markdown("### New embedding")
            e_fields = widgets(e_specs, "embedding")
            e_button = gr.Button("Create embedding", variant="primary", elem_id="embedding-create")
            e_note = gr.Markdown(elem_id="embedding-message")
        with gr.Column():
            gr.Markdown("### New hypernetwork")
            h_fields = widgets(h_specs, "hypernetwork")
            h_button = gr.Button("Create hypernetwork", variant="primary", elem_id="hypernetwork-create")
            h_note = gr.Markdown(elem_id="hypernetwork-message")
    e_button.click(lambda *v: create_embedding(workspace, models, e_specs, list(v)),
                   [e_fields[s.name] for s in e_specs], e_note)
    h_button.click(lambda *v: create_hypernetwork(workspace, models, h_specs, list(v)),
                   [h_fields[s.name] for s in h_specs], h_note)

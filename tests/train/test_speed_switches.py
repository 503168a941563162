"""The speed switches change how fast a run is, not what it trains: a few steps with every switch on and every one
off reach the same weights within float rounding (torch.compile is left out: minutes to compile on a CPU)."""

from __future__ import annotations

import torch
from train_helpers import settings, write_images

from oneword.embeddings.formats import load_embedding_file
from oneword.hypernetworks.formats import load_hypernetwork
from oneword.lora.read import read_lora
from oneword.models.tiny import build_tiny
from oneword.train.loop import setup, train

SWITCHES = ("channels_last", "flash_attention", "fused_optimizer", "half_precision", "cache_conditioning")


def _all(on: bool) -> dict:
    return {**{name: on for name in SWITCHES}, "gradient_checkpointing": on}


def test_an_embedding_trains_the_same_vectors_with_every_switch_on_and_off(tmp_path):
    write_images(tmp_path / "data")
    vectors = []
    for on in (True, False):
        finished = train(settings(tmp_path / str(on), data=tmp_path / "data", max_steps=6, save_every=0,
                                  validate_every=3, **_all(on)), build_tiny("sd1", seed=0))
        vectors.append(load_embedding_file(finished.embedding_path).vectors["*"])
    start = setup(settings(tmp_path / "start", data=tmp_path / "data"), build_tiny("sd1", seed=0))
    assert (vectors[0] - start.trainable.parameters()[0].detach()).abs().max() > 1e-3  # training moved them
    torch.testing.assert_close(vectors[0], vectors[1], rtol=1e-4, atol=1e-6)


def test_a_hypernetwork_trains_the_same_modules_with_every_switch_on_and_off(tmp_path):
    write_images(tmp_path / "data")
    weights = []
    for name, switches in (("on", _all(True)), ("off", _all(False)), ("start", {})):
        config = settings(tmp_path / name, data=tmp_path / "data", kind="hypernetwork", learn_rate="0.001",
                          template="hypernetwork", hypernetwork_dir=tmp_path / name / "hn", max_steps=6,
                          save_every=0, validate_every=3, **switches)
        if name == "start":  # the modules as created (create-hypernetwork's seeded defaults), before any step
            weights.append([p.detach() for p in setup(config, build_tiny("sd1", seed=0)).trainable.parameters()])
        else:
            weights.append(load_hypernetwork(train(config, build_tiny("sd1", seed=0)).embedding_path).parameters())
    on, off, start = weights
    moved = max(float((a - b).abs().max()) for a, b in zip(on, start))
    apart = max(float((a - b).abs().max()) for a, b in zip(on, off))
    # Adam divides each gradient by its own running size, so rounding-level differences in near-zero gradients
    # (channels-last convolutions, the fused kernel's order of operations) move those weights by a small part of
    # a step: measured 1.3% of the run's largest movement; a real difference would be of its order.
    assert moved > 1e-3 and apart < 0.05 * moved, (apart, moved)


def test_cached_conditioning_runs_the_text_encoder_once_per_prompt(tmp_path):
    write_images(tmp_path / "data")
    calls = {}
    for on in (True, False):
        model = build_tiny("sd1", seed=0)
        calls[on] = 0

        def count(module, args, output, on=on):
            calls[on] += 1

        model.encoders[0].model.register_forward_hook(count)
        config = settings(tmp_path / str(on), data=tmp_path / "data", kind="hypernetwork", learn_rate="0.001",
                          template="none", hypernetwork_dir=tmp_path / str(on) / "hn", max_steps=6,
                          batch_size=1, save_every=0, validate_every=0, cache_conditioning=on)
        train(config, model)
    # The `none` template's one prompt ("picture"): encoded once, against once per step.
    assert (calls[True], calls[False]) == (1, 6)


def test_a_lora_trains_the_same_layers_with_every_switch_on_and_off(tmp_path):
    write_images(tmp_path / "data")
    weights = []
    for name, switches in (("on", _all(True)), ("off", _all(False)), ("start", {})):
        config = settings(tmp_path / name, data=tmp_path / "data", kind="lora", learn_rate="0.01",
                          text_encoder_lr="0.005", lora_dir=tmp_path / name / "lora", max_steps=6, save_every=0,
                          validate_every=3, save_precision="fp32", **switches)
        if name == "start":  # the new layers (up zeros), before any step
            layers = setup(config, build_tiny("sd1", seed=0)).trainable.layers
        else:
            layers = read_lora(train(config, build_tiny("sd1", seed=0)).embedding_path).layers
        weights.append({f"{key}.{part}": getattr(layer, part).detach() for key, layer in layers.items()
                        for part in ("down", "up")})
    on, off, start = weights
    assert on.keys() == off.keys() == start.keys()
    moved = max(float((on[k] - start[k]).abs().max()) for k in on)
    apart = max(float((on[k] - off[k]).abs().max()) for k in on)
    assert moved > 1e-3 and apart < 0.05 * moved, (apart, moved)  # as the hypernetwork's, by Adam's scaling

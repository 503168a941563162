"""The most a LoRA file may hold before it is refused unread: shared by the reader (oneword/lora/read.py) and the
header-only description of `oneword inspect` (oneword/inspect/summary.py), which must refuse the same files."""

MAX_TENSORS = 20_000
"""Most tensors a LoRA file may hold: a LyCORIS file over every layer of SDXL's UNet and both text encoders (LoHa
with Tucker cores, seven tensors and an alpha a layer) has about 12,000; a real SDXL LoCon a few thousand."""
MAX_HEADER_BYTES = 16 << 20
"""Largest safetensors header read: the names and shapes of MAX_TENSORS tensors and kohya's training metadata (its
tag counts included) take a few MB."""
MAX_LAYER_NUMBERS = 1 << 26
"""Most numbers a layer's weight change may have, whatever model it is fitted to (a model's own layer bounds it
further): SDXL's largest weight, an up block's 3x3 convolution of 2560 -> 1280 channels, has 29.5 million."""

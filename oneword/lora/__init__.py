"""LoRA: low-rank changes to the weights of the UNet's and the text encoders' layers, in kohya's file layout."""

"""Preparing a dataset: read pictures safely, crop, split, flip, caption (`oneword preprocess`) and check them."""

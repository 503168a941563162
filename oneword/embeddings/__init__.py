"""Textual Inversion embeddings: the in-memory form, every file format people have, folders of them, new ones."""

"""Base models: the kinds oneword knows, loading them from disk, and the small built-in ones."""
